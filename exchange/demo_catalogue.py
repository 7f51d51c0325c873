"""The demo catalogue: vendors, buyers and about fifty data products of the kinds a Shanghai
exchange lists, in Chinese and English. Plain data; `exchange.demo` loads it through the same
use cases the API runs, so every listing here must pass the shipped rules."""

from __future__ import annotations

from typing import Any

VENDORS: list[dict[str, Any]] = [
    {"key": "shentong", "name": "上海申通出行数据服务有限公司 Shentong Mobility Data Co.", "qualifications": ["data-merchant"]},
    {"key": "lujiazui", "name": "陆家嘴金融数据科技有限公司 Lujiazui Financial Data Technology", "qualifications": ["data-merchant"]},
    {"key": "ruijin", "name": "瑞金医学数据中心 Ruijin Medical Data Centre", "qualifications": ["data-merchant", "medical-licensed"]},
    {"key": "geomatics", "name": "上海测绘地理信息科技有限公司 Shanghai Geomatics", "qualifications": ["data-merchant"]},
    {"key": "qixin", "name": "企信征信数据有限公司 Qixin Enterprise Data", "qualifications": ["data-merchant"]},
    {"key": "dongfang", "name": "东方零售洞察有限公司 Oriental Retail Insight", "qualifications": ["data-merchant"]},
    {"key": "visage", "name": "视源生物识别技术有限公司 Visage Biometrics", "qualifications": ["data-merchant"]},
    {"key": "publicdata", "name": "上海公共数据授权运营有限公司 Shanghai Public Data Operations", "qualifications": ["data-merchant", "public-data-operator"]},
]

BUYERS: list[dict[str, Any]] = [
    {"key": "bank", "name": "浦东商业银行数据部 Pudong Commercial Bank, data office", "qualifications": []},
    {"key": "planning", "name": "上海城市规划研究院 Shanghai Urban Planning Institute", "qualifications": ["public-data-operator"]},
    {"key": "pharma", "name": "张江生物医药研发有限公司 Zhangjiang Pharma R&D", "qualifications": ["medical-licensed"]},
    {"key": "logistics", "name": "长三角物流科技有限公司 Yangtze Delta Logistics Tech", "qualifications": []},
]


def cny(yuan: int) -> dict[str, Any]:
    """Whole yuan to the wire's integer fen."""
    return {"amount": yuan * 100, "currency": "CNY"}


def cny_fen(fen: int) -> dict[str, Any]:
    return {"amount": fen, "currency": "CNY"}


def fixed(yuan: int) -> dict[str, Any]:
    return {"kind": "fixed", "price": cny(yuan)}


def subscription(yuan: int, period_days: int = 30) -> dict[str, Any]:
    return {"kind": "subscription", "price": cny(yuan), "period_days": period_days}


def metered(*tiers: tuple[int | None, int], monthly_fee: int | None = None, free_calls: int = 0, cap: int | None = None) -> dict[str, Any]:
    """Tiers as (calls up to, fen per call)."""
    plan: dict[str, Any] = {"kind": "metered", "tiers": [{"up_to": up_to, "price": cny_fen(fen)} for up_to, fen in tiers], "free_calls": free_calls}
    if monthly_fee is not None:
        plan["monthly_fee"] = cny(monthly_fee)
    if cap is not None:
        plan["monthly_cap"] = cny(cap)
    return plan


def auction(reserve_yuan: int, licences: int) -> dict[str, Any]:
    return {"kind": "auction", "reserve_price": cny(reserve_yuan), "licences": licences}


def quota(unit: str, reference_yuan: int) -> dict[str, Any]:
    return {"kind": "quota", "unit": unit, "reference_price": cny(reference_yuan)}


def revenue_share(share_bps: int, minimum_yuan: int) -> dict[str, Any]:
    return {"kind": "revenue_share", "share_bps": share_bps, "minimum": cny(minimum_yuan)}


FREE: dict[str, Any] = {"kind": "free"}
NEGOTIATED: dict[str, Any] = {"kind": "negotiated"}

RIGHTS_ALL = ["holding", "use", "operation"]
RIGHTS_OPERATE = ["use", "operation"]

SOURCES = {
    "shentong": "Collected by the metro and bus operators under data-sharing contract SH-TR-2026-001; 地铁公交运营方数据共享协议。",
    "lujiazui": "Licensed from exchanges and public filings under redistribution licences LJZ-2026-07; 交易所与公开披露数据再分发许可。",
    "ruijin": "De-identified hospital records under ethics approval RJ-IRB-2026-113; 医院去标识化诊疗数据，伦理审批在案。",
    "geomatics": "Surveyed by the vendor under surveying qualification 甲测资字31100001; 自有测绘资质采集。",
    "qixin": "Aggregated from public registration, court and tax-credit records; 工商、司法、纳税信用公开信息汇总。",
    "dongfang": "Point-of-sale data from partner retailers under contracts DF-POS-2026; 合作零售商收银数据协议。",
    "visage": "Enrolled with written consent at partner venues; 合作场所书面授权采集。",
    "publicdata": "Shanghai public data opened under the authorised-operation agreement SH-PD-2026-02; 公共数据授权运营协议。",
}

CONSENT = "Consent records CR-2026 on file: purpose, scope and withdrawal recorded per data subject; 逐人告知同意记录在案。"


def product(
    vendor: str,
    category: str,
    grade: str,
    delivery: str,
    frequency: str,
    title: str,
    description: str,
    plans: list[dict[str, Any]],
    *,
    purposes: list[str],
    fields: dict[str, str],
    status: str = "listed",
    duration_days: int = 365,
    max_licences: int | None = None,
    exclusive: bool = False,
    personal_data: bool = False,
    authorisation_id: str | None = None,
    rights: list[str] = RIGHTS_ALL,
) -> dict[str, Any]:
    personal = personal_data or category in ("medical", "consumer", "biometric")
    attestations: dict[str, Any] = {"source": SOURCES[vendor], "rights": rights}
    if personal:
        attestations["consent"] = CONSENT
    if authorisation_id is not None:
        attestations["authorisation_id"] = authorisation_id
    licence: dict[str, Any] = {"purposes": purposes, "duration_days": duration_days, "exclusive": exclusive}
    if max_licences is not None:
        licence["max_licences"] = max_licences
    body = {
        "title": title,
        "description": description,
        "category": category,
        "grade": grade,
        "delivery": delivery,
        "update_frequency": frequency,
        "schema": fields,
        "personal_data": personal,
        "attestations": attestations,
        "licence": licence,
        "plans": plans,
    }
    return {"vendor": vendor, "status": status, "body": body}


LISTINGS: list[dict[str, Any]] = [
    # ── transport 交通出行 ──
    product("shentong", "transport", "L2", "api", "hourly", "上海交通出行数据 地铁公交OD矩阵 Shanghai transit OD matrix",
            "全市地铁与公交刷卡出行起讫点矩阵，按小时汇总。Hourly origin-destination matrix of metro and bus trips across Shanghai.",
            [subscription(12_000), metered((100_000, 5), (None, 3), monthly_fee=2_000)], purposes=["research", "urban-planning"],
            fields={"origin": "station id", "destination": "station id", "hour": "ISO hour", "trips": "integer"}),
    product("shentong", "transport", "L1", "file", "monthly", "地铁客流月报 Metro ridership monthly report",
            "各线路各车站月度进出站客流统计，含节假日对比。Monthly entries and exits by line and station, with holiday comparisons.",
            [FREE, fixed(800)], purposes=["research", "commercial-analysis"], fields={"line": "text", "station": "text", "month": "YYYY-MM", "entries": "integer", "exits": "integer"}),
    product("shentong", "transport", "L2", "api", "realtime", "实时道路交通拥堵指数 Real-time road congestion index",
            "主要道路五分钟粒度拥堵指数与平均车速。Five-minute congestion index and mean speed for arterial roads.",
            [metered((1_000_000, 2), (None, 1), free_calls=10_000)], purposes=["navigation", "logistics"], fields={"road_id": "text", "ts": "timestamp", "index": "0-10", "speed_kmh": "number"}),
    product("shentong", "transport", "L3", "compute", "daily", "交通出行轨迹隐私计算服务 Trip trajectories in a privacy-computing sandbox",
            "去标识化出行轨迹仅在隐私计算环境中可用，原始数据不出域。De-identified trajectories usable only inside the compute sandbox; raw data never leaves.",
            [subscription(50_000, 90), NEGOTIATED], purposes=["research", "urban-planning"], personal_data=True, max_licences=20,
            fields={"trip_id": "hash", "points": "list of (lat, lon, ts)", "mode": "text"}),
    product("shentong", "transport", "L2", "file", "daily", "长三角高速公路货车流量 Yangtze Delta expressway truck flows",
            "长三角高速公路收费站货车分车型日流量。Daily truck counts by vehicle class at expressway toll gates in the Yangtze River Delta.",
            [fixed(20_000), quota("一个月的全网数据 one month of network data", 1_800)], purposes=["logistics", "commercial-analysis"],
            fields={"gate_id": "text", "date": "date", "class": "1-6", "count": "integer"}),
    product("shentong", "transport", "L1", "api", "realtime", "公交到站预测 Bus arrival predictions",
            "全市公交线路实时到站预测接口。Real-time bus arrival predictions for every city route.",
            [metered((None, 1), free_calls=100_000)], purposes=["navigation"], fields={"route": "text", "stop": "text", "eta_s": "integer"}),
    product("shentong", "transport", "L2", "report", "quarterly", "网约车出行需求季度报告 Ride-hailing demand quarterly report",
            "按区县与时段分析网约车需求与供给缺口。Ride-hailing demand and supply gaps by district and time of day.",
            [fixed(6_000)], purposes=["research", "commercial-analysis"], fields={"district": "text", "slot": "text", "demand": "integer", "supply": "integer"},
            status="submitted"),
    # ── finance 金融 ──
    product("lujiazui", "finance", "L2", "api", "realtime", "A股逐笔成交行情 China A-share tick data",
            "沪深两市逐笔成交与十档行情推送。Tick-by-tick trades and ten-level quotes for Shanghai and Shenzhen listed shares.",
            [subscription(30_000), metered((None, 2), monthly_fee=5_000)], purposes=["trading", "research"],
            fields={"symbol": "text", "ts": "timestamp", "price": "fen", "volume": "integer"}),
    product("lujiazui", "finance", "L2", "file", "daily", "债券估值日频数据 Daily bond valuations",
            "银行间与交易所债券的日终估值、久期与凸性。End-of-day valuations, duration and convexity for interbank and exchange bonds.",
            [subscription(18_000)], purposes=["risk-management", "research"], fields={"isin": "text", "date": "date", "clean_price": "number", "duration": "number"}),
    product("lujiazui", "finance", "L3", "api", "daily", "小微企业信用评分 SME credit scores",
            "基于经营流水的小微企业信用评分，仅供授信审批。Credit scores for small businesses from operating cash flows, for lending decisions only.",
            [metered((50_000, 200), (None, 120)), revenue_share(300, 10_000)], purposes=["credit-assessment"], max_licences=30,
            fields={"uscc": "unified social credit code", "score": "300-900", "band": "A-E"}),
    product("lujiazui", "finance", "L2", "report", "monthly", "长三角产业景气指数 Yangtze Delta industry sentiment index",
            "二十个行业的月度景气指数与解读。Monthly sentiment index for twenty industries with commentary.",
            [FREE, subscription(500)], purposes=["research"], fields={"industry": "text", "month": "YYYY-MM", "index": "number"}),
    product("lujiazui", "finance", "L3", "compute", "daily", "反洗钱可疑交易特征库 AML suspicious-pattern features",
            "可疑交易模式特征，在联合建模环境中使用。Suspicious-transaction pattern features, usable in a federated-modelling environment.",
            [NEGOTIATED], purposes=["risk-management"], max_licences=10, fields={"pattern_id": "text", "features": "vector"}),
    product("lujiazui", "finance", "L2", "file", "yearly", "上市公司ESG评级 Listed-company ESG ratings",
            "A股上市公司年度环境、社会与治理评级。Annual environmental, social and governance ratings of A-share companies.",
            [fixed(25_000), auction(40_000, 3)], purposes=["research", "investment"], max_licences=50,
            fields={"symbol": "text", "year": "integer", "e": "A-D", "s": "A-D", "g": "A-D"}),
    product("lujiazui", "finance", "L2", "api", "daily", "汇率与利率曲线 FX and yield curves",
            "人民币汇率中间价与国债收益率曲线。CNY central parity rates and government bond yield curves.",
            [metered((None, 1), free_calls=5_000)], purposes=["research", "risk-management"], fields={"curve": "text", "tenor": "text", "rate_bp": "integer"},
            status="draft"),
    # ── medical 医疗健康 ──
    product("ruijin", "medical", "L3", "compute", "monthly", "糖尿病队列随访数据 Diabetes cohort follow-up",
            "十年随访的二型糖尿病去标识化队列，仅在隐私计算环境中分析。A ten-year de-identified type 2 diabetes cohort, analysed only in the compute sandbox.",
            [subscription(80_000, 180), NEGOTIATED], purposes=["research", "public-health"], max_licences=10,
            fields={"patient": "pseudonym", "visit": "date", "hba1c": "number", "medication": "ATC code"}),
    product("ruijin", "medical", "L3", "file", "quarterly", "医学影像标注集（胸部CT）Annotated chest CT images",
            "经专家标注的去标识化胸部CT影像，用于算法训练。De-identified chest CT scans annotated by radiologists, for model training.",
            [auction(200_000, 2)], purposes=["research"], exclusive=False, max_licences=2,
            fields={"study": "pseudonym", "image": "DICOM", "label": "nodule classes"}),
    product("ruijin", "medical", "L2", "report", "monthly", "门诊疾病谱月报 Outpatient disease spectrum monthly",
            "按科室与病种汇总的门诊量统计，不含个人信息。Outpatient counts by department and diagnosis, aggregated without personal detail.",
            [subscription(1_500)], purposes=["public-health", "research"], fields={"department": "text", "icd10": "code", "visits": "integer"}),
    product("ruijin", "medical", "L3", "api", "daily", "药品不良反应监测 Adverse drug reaction signals",
            "药品不良反应报告的信号检测结果。Signal-detection results from adverse drug reaction reports.",
            [metered((10_000, 500), (None, 300))], purposes=["research", "public-health"], max_licences=20,
            fields={"drug": "ATC code", "reaction": "MedDRA term", "signal": "number"}),
    product("ruijin", "medical", "L3", "compute", "monthly", "罕见病基因组变异库 Rare-disease genomic variants",
            "罕见病患者基因组变异汇总，仅联合分析。Genomic variants from rare-disease patients, for federated analysis only.",
            [NEGOTIATED], purposes=["research"], max_licences=5, fields={"variant": "HGVS", "phenotype": "HPO term", "count": "integer"},
            status="submitted"),
    # ── geospatial 地理空间 ──
    product("geomatics", "geospatial", "L1", "file", "yearly", "上海市行政区划边界 Shanghai administrative boundaries",
            "区、街道、居委三级行政区划矢量边界。Vector boundaries of districts, sub-districts and neighbourhood committees.",
            [FREE], purposes=["research", "urban-planning", "commercial-analysis"], fields={"code": "text", "level": "1-3", "geometry": "GeoJSON"}),
    product("geomatics", "geospatial", "L2", "file", "quarterly", "高精度建筑物轮廓 High-precision building footprints",
            "全市建筑物轮廓与层高，精度0.5米。Building footprints and heights across the city at 0.5 m accuracy.",
            [fixed(60_000), subscription(12_000, 90)], purposes=["urban-planning", "insurance"], fields={"building_id": "text", "floors": "integer", "geometry": "GeoJSON"}),
    product("geomatics", "geospatial", "L2", "api", "daily", "兴趣点POI数据 Points of interest",
            "餐饮、零售、医疗等两百万兴趣点，含营业状态。Two million points of interest with category and opening status.",
            [metered((200_000, 3), (None, 2), free_calls=2_000)], purposes=["commercial-analysis", "navigation"],
            fields={"poi_id": "text", "name": "text", "category": "text", "lat": "number", "lon": "number"}),
    product("geomatics", "geospatial", "L3", "file", "yearly", "地下管网三维模型 Underground utility network 3D model",
            "供水、燃气、电力地下管线三维模型。3D model of underground water, gas and power lines.",
            [fixed(300_000)], purposes=["urban-planning"], max_licences=5, fields={"segment": "text", "utility": "text", "depth_m": "number", "geometry": "3D"}),
    product("geomatics", "geospatial", "L2", "report", "monthly", "城市热岛遥感监测 Urban heat island monitoring",
            "卫星遥感地表温度月度反演与热岛分析。Monthly land-surface temperature from satellite imagery, with heat-island analysis.",
            [subscription(2_000), FREE], purposes=["research", "urban-planning"], fields={"grid": "100 m cell", "month": "YYYY-MM", "lst_c": "number"}),
    product("geomatics", "geospatial", "L2", "api", "realtime", "交通路网地图匹配服务 Road-network map matching",
            "将车辆轨迹匹配到交通路网的接口。Snaps vehicle traces to the road network.",
            [metered((None, 1))], purposes=["navigation", "logistics"], fields={"trace": "list of points", "matched": "road ids"},
            status="draft"),
    # ── enterprise 企业经营 ──
    product("qixin", "enterprise", "L1", "api", "daily", "企业工商登记信息 Company registration records",
            "全国企业工商登记、股东与变更信息。Registration, shareholder and change records of companies nationwide.",
            [metered((100_000, 10), (None, 5), free_calls=1_000), subscription(3_000)], purposes=["kyc", "commercial-analysis"],
            fields={"uscc": "text", "name": "text", "registered_capital": "fen", "status": "text"}),
    product("qixin", "enterprise", "L2", "api", "daily", "企业司法风险 Corporate litigation risk",
            "企业涉诉、被执行与失信记录。Lawsuits, enforcement and dishonesty records of companies.",
            [metered((None, 20))], purposes=["kyc", "risk-management"], fields={"uscc": "text", "case_no": "text", "role": "text"}),
    product("qixin", "enterprise", "L2", "file", "monthly", "供应链关系图谱 Supply-chain relationship graph",
            "上市公司上下游供应链关系图谱。Supplier and customer relationships of listed companies as a graph.",
            [fixed(45_000), revenue_share(500, 5_000)], purposes=["research", "risk-management"], fields={"from": "uscc", "to": "uscc", "relation": "text", "weight": "number"}),
    product("qixin", "enterprise", "L2", "report", "quarterly", "专精特新企业名录 Specialised SME directory",
            "专精特新中小企业名录与经营分析。Directory of specialised and innovative SMEs with operating analysis.",
            [fixed(5_000)], purposes=["research", "investment"], fields={"uscc": "text", "industry": "text", "level": "text"}),
    product("qixin", "enterprise", "L3", "api", "daily", "企业用电景气指数 Enterprise electricity-use index",
            "基于用电数据的企业开工与景气指数。Operating and sentiment index for companies from electricity use.",
            [subscription(20_000), quota("一万次查询 10,000 queries", 2_500)], purposes=["credit-assessment", "research"], max_licences=40,
            fields={"uscc": "text", "month": "YYYY-MM", "index": "number"}),
    product("qixin", "enterprise", "L2", "file", "weekly", "招投标公告结构化数据 Structured public tenders",
            "全国招投标公告的结构化数据。Structured data from public tender and award notices nationwide.",
            [subscription(1_200, 7)], purposes=["commercial-analysis"], fields={"notice_id": "text", "buyer": "text", "amount": "fen", "winner": "text"},
            status="submitted"),
    # ── consumer 消费 ──
    product("dongfang", "consumer", "L2", "report", "monthly", "商圈客流与消费报告 Shopping-district footfall and spend",
            "重点商圈客流、客单价与品类结构月报。Monthly footfall, basket size and category mix for major shopping districts.",
            [subscription(3_500)], purposes=["commercial-analysis"], fields={"district": "text", "month": "YYYY-MM", "footfall": "integer", "avg_basket": "fen"}),
    product("dongfang", "consumer", "L3", "compute", "daily", "会员消费行为特征 Loyalty-member purchase features",
            "会员消费行为特征，仅在隐私计算环境中用于联合营销建模。Loyalty-member purchase features for joint marketing models inside the compute sandbox.",
            [metered((None, 50)), revenue_share(800, 20_000)], purposes=["marketing"], max_licences=15,
            fields={"member": "pseudonym", "features": "vector", "segment": "text"}),
    product("dongfang", "consumer", "L2", "file", "weekly", "快消品零售价格指数 FMCG retail price index",
            "三千种快消品周度零售价格与促销。Weekly retail prices and promotions for three thousand consumer goods.",
            [fixed(9_000), subscription(2_500)], purposes=["commercial-analysis", "research"], fields={"sku": "text", "week": "YYYY-Www", "price": "fen", "promo": "boolean"}),
    product("dongfang", "consumer", "L2", "api", "daily", "餐饮外卖热度 Food-delivery popularity",
            "餐饮品类外卖订单热度指数。Order-popularity index for food-delivery categories.",
            [metered((None, 5), free_calls=500)], purposes=["commercial-analysis"], fields={"cuisine": "text", "date": "date", "index": "number"},
            status="submitted"),
    product("dongfang", "consumer", "L2", "report", "quarterly", "新能源汽车消费者画像 EV buyer profiles",
            "新能源汽车购买人群年龄、收入区间与偏好汇总。Aggregated age bands, income ranges and preferences of EV buyers.",
            [fixed(15_000)], purposes=["marketing", "research"], fields={"segment": "text", "age_band": "text", "share": "percent"},
            status="draft"),
    # ── biometric 生物特征 ──
    product("visage", "biometric", "L3", "compute", "monthly", "人脸活体检测训练集 Face liveness training set",
            "经书面授权采集的活体与攻击样本，仅在隐私计算环境中训练模型。Live and spoof samples collected with written consent, for training inside the sandbox only.",
            [auction(500_000, 1), NEGOTIATED], purposes=["model-training"], exclusive=True, max_licences=1, authorisation_id="SH-BIO-2026-0042",
            fields={"subject": "pseudonym", "sample": "image", "label": "live/spoof"}),
    product("visage", "biometric", "L3", "api", "realtime", "声纹核验服务 Voiceprint verification",
            "基于授权声纹模板的一比一核验接口，不返回原始特征。One-to-one voiceprint verification against enrolled templates; raw features are never returned.",
            [metered((100_000, 30), (None, 20), monthly_fee=10_000)], purposes=["identity-verification"], max_licences=10, authorisation_id="SH-BIO-2026-0057",
            fields={"request": "audio hash", "match": "boolean", "score": "number"}),
    product("visage", "biometric", "L3", "compute", "static", "步态识别研究数据集 Gait recognition research set",
            "志愿者步态视频特征，用于学术研究。Gait features from volunteers' video, for academic research.",
            [fixed(80_000)], purposes=["research"], max_licences=5, authorisation_id="SH-BIO-2026-0061",
            fields={"subject": "pseudonym", "features": "vector"}),
    # ── public 公共数据 ──
    product("publicdata", "public", "L1", "api", "daily", "上海公共交通运营统计 Shanghai public transport statistics",
            "公共数据开放：公交、地铁、轮渡运营里程与客运量。Open public data: service kilometres and passengers of buses, metro and ferries.",
            [FREE], purposes=["research", "urban-planning", "public-service"], fields={"mode": "text", "date": "date", "km": "number", "passengers": "integer"}),
    product("publicdata", "public", "L2", "api", "daily", "企业纳税信用等级 Company tax-credit grades",
            "公共数据授权运营：企业纳税信用等级查询。Authorised public data: tax-credit grades of companies.",
            [metered((None, 10)), subscription(2_000)], purposes=["credit-assessment", "kyc"], fields={"uscc": "text", "year": "integer", "grade": "A-D"}),
    product("publicdata", "public", "L2", "file", "monthly", "不动产登记统计 Real-estate registration statistics",
            "按区县汇总的不动产登记量与面积。Property registrations and floor area by district.",
            [fixed(3_000)], purposes=["research", "urban-planning"], fields={"district": "text", "month": "YYYY-MM", "registrations": "integer", "area_m2": "number"}),
    product("publicdata", "public", "L3", "compute", "daily", "社保缴纳核验 Social-insurance payment verification",
            "公共数据授权运营：在隐私计算环境中核验社保缴纳状态。Authorised public data: verifies social-insurance payment status inside the sandbox.",
            [metered((None, 100))], purposes=["credit-assessment"], personal_data=True, max_licences=20,
            fields={"person": "hashed id", "months_paid": "integer", "verified": "boolean"}),
    product("publicdata", "public", "L1", "file", "yearly", "上海统计年鉴 Shanghai statistical yearbook",
            "上海统计年鉴全部表格的机器可读版本。Machine-readable tables of the Shanghai Statistical Yearbook.",
            [FREE], purposes=["research", "public-service"], fields={"table": "text", "year": "integer", "values": "CSV"}),
    product("publicdata", "public", "L2", "api", "hourly", "空气质量与气象观测 Air quality and weather observations",
            "全市监测站点逐小时空气质量与气象数据。Hourly air quality and weather from every monitoring station.",
            [metered((None, 1), free_calls=50_000)], purposes=["research", "public-health"], fields={"station": "text", "hour": "ISO hour", "pm25": "number", "temp_c": "number"},
            status="submitted"),
    product("publicdata", "public", "L2", "file", "daily", "交通违法统计 Traffic violation statistics",
            "按路段与类型汇总的交通违法统计，不含个人信息。Traffic violations by road segment and type, without personal detail.",
            [fixed(2_000), subscription(600)], purposes=["research", "urban-planning"], fields={"segment": "text", "type": "text", "date": "date", "count": "integer"}),
    product("publicdata", "public", "L2", "api", "realtime", "公共停车场空位 Public car-park availability",
            "公共停车场实时空余车位。Real-time free spaces in public car parks.",
            [metered((None, 1))], purposes=["navigation"], fields={"car_park": "text", "ts": "timestamp", "free": "integer"},
            status="draft"),
    # ── more of the exchange's staples ──
    product("shentong", "transport", "L2", "file", "daily", "共享单车骑行热力 Shared-bike trip heatmap",
            "五百米网格共享单车骑行起终点热力。Shared-bike trip origins and destinations on a 500 m grid.",
            [subscription(2_800), quota("一个月的网格数据 one month of grid data", 300)], purposes=["urban-planning", "commercial-analysis"],
            fields={"grid": "500 m cell", "date": "date", "starts": "integer", "ends": "integer"}),
    product("lujiazui", "finance", "L2", "api", "realtime", "期货主力合约行情 Futures front-month quotes",
            "上海期货交易所主力合约实时行情。Real-time quotes of front-month contracts on the Shanghai Futures Exchange.",
            [subscription(8_000), metered((None, 1), monthly_fee=1_000)], purposes=["trading", "research"],
            fields={"contract": "text", "ts": "timestamp", "last": "fen", "open_interest": "integer"}),
    product("geomatics", "geospatial", "L2", "file", "static", "长江口航道水深图 Yangtze estuary channel depths",
            "长江口深水航道多波束测深成果。Multibeam soundings of the Yangtze estuary deep-water channel.",
            [fixed(35_000)], purposes=["navigation", "research"], fields={"point": "lat/lon", "depth_m": "number", "survey_date": "date"}),
    product("qixin", "enterprise", "L2", "api", "daily", "企业知识产权 Company patents and trademarks",
            "企业专利、商标与软件著作权信息。Patents, trademarks and software copyrights held by companies.",
            [metered((None, 8), free_calls=1_000)], purposes=["research", "investment"], fields={"uscc": "text", "kind": "text", "number": "text", "granted": "date"}),
    product("dongfang", "consumer", "L1", "report", "yearly", "上海消费趋势白皮书 Shanghai consumer trends white paper",
            "年度消费趋势白皮书，汇总数据不含个人信息。Annual consumer trends white paper; aggregates only.",
            [FREE], purposes=["research", "marketing"], fields={"chapter": "text", "indicator": "text", "value": "number"}),
]

# A listing the shipped rules refuse at submit: biometric data without an authorisation id.
BIOMETRIC_WITHOUT_AUTHORISATION: dict[str, Any] = product(
    "visage", "biometric", "L3", "file", "static", "人脸照片集（无授权）Face photo set without authorisation",
    "未取得专项授权的人脸照片集，提交时应被规则拒绝。Face photos without a specific authorisation: the rules refuse it at submit.",
    [fixed(10_000)], purposes=["research"], fields={"subject": "pseudonym", "photo": "image"},
)["body"]
