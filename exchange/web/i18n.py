"""Chinese and English for the pages. Chinese is the default (the exchange's home is
Asia/Shanghai); a `lang` cookie or the browser's Accept-Language picks English."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "exchange": ("数据交易所", "Data Exchange"),
    "catalogue": ("数据产品目录", "Catalogue"),
    "search": ("搜索", "Search"),
    "search_placeholder": ("搜索数据产品，如：交通", "Search data products, e.g. transport"),
    "all_categories": ("全部分类", "All categories"),
    "all_grades": ("全部等级", "All grades"),
    "all_plans": ("全部价格方案", "All price plans"),
    "results": ("条结果", "results"),
    "no_results": ("没有找到数据产品。", "No data products found."),
    "next_page": ("下一页", "Next page"),
    "category": ("分类", "Category"),
    "grade": ("等级", "Grade"),
    "delivery": ("交付方式", "Delivery"),
    "plans": ("价格方案", "Price plans"),
    "licence": ("许可条款", "Licence"),
    "purposes": ("用途", "Purposes"),
    "duration": ("期限（天）", "Duration (days)"),
    "territory": ("地域", "Territory"),
    "onward_transfer": ("可转让", "Onward transfer"),
    "exclusive": ("独家", "Exclusive"),
    "max_licences": ("许可上限", "Licences at most"),
    "book": ("订单簿", "Order book"),
    "bids": ("买盘", "Bids"),
    "asks": ("卖盘", "Asks"),
    "price": ("价格", "Price"),
    "quantity": ("数量", "Quantity"),
    "orders": ("订单", "Orders"),
    "trades": ("最近成交", "Recent trades"),
    "auction": ("拍卖", "Auction"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "api_key": ("API 密钥", "API key"),
    "signed_in_as": ("已登录：", "Signed in as "),
    "bad_key": ("API 密钥无效。", "That API key is not valid."),
    "account": ("我的账户", "My account"),
    "balances": ("余额", "Balances"),
    "available": ("可用", "Available"),
    "escrow": ("托管", "Escrow"),
    "contracts": ("合同", "Contracts"),
    "contract": ("合同", "Contract"),
    "status": ("状态", "Status"),
    "amount": ("金额", "Amount"),
    "signature": ("签名", "Signature"),
    "key_id": ("密钥编号", "Key id"),
    "entitlement": ("数据使用凭证", "Entitlement token"),
    "copy": ("复制", "Copy"),
    "buy": ("购买", "Buy"),
    "bought": ("已购买，合同已签署。", "Bought: the contract is signed."),
    "ledger": ("账本", "Ledger"),
    "signed_head": ("最新签名树头", "Latest signed tree head"),
    "size": ("条目数", "Size"),
    "root": ("根哈希", "Root hash"),
    "entries": ("条目", "Entries"),
    "verify": ("验证", "Verify"),
    "verified": ("已验证", "verified"),
    "verification_failed": ("验证失败", "verification failed"),
    "index": ("序号", "Index"),
    "type": ("类型", "Type"),
    "sign_in_to_see": ("登录后可查看您的账本条目。", "Sign in to see your ledger entries."),
    "language": ("English", "中文"),
    "fen_note": ("金额单位：元", "Amounts in yuan"),
    "listed_by": ("供方", "Vendor"),
    "vendor": ("供方", "Vendor"),
    "free": ("免费", "Free"),
    "negotiated": ("协议定价", "Negotiated"),
    "per_call": ("每次调用", "per call"),
    "reserve": ("保留价", "reserve"),
    "closes": ("截止", "closes"),
    "rights": ("数据权属", "Data rights"),
    "description": ("描述", "Description"),
    "none": ("无", "none"),
    "yes": ("是", "yes"),
    "my_listings": ("我的产品", "My listings"),
    "console": ("审核台", "Review queue"),
    "rules": ("规则", "Rules"),
    "new_listing": ("发布数据产品", "New listing"),
    "title": ("标题", "Title"),
    "schema": ("数据结构", "Schema"),
    "source": ("数据来源", "Source"),
    "consent": ("同意凭证", "Consent"),
    "authorisation_id": ("授权编号", "Authorisation id"),
    "personal_data": ("含个人信息", "Contains personal data"),
    "price_yuan": ("价格（元，0 为免费）", "Price (yuan, 0 for free)"),
    "create": ("创建草稿", "Create draft"),
    "submit": ("提交审核", "Submit for review"),
    "history": ("历史", "History"),
    "rule_failures": ("规则未通过", "Rule failures"),
    "approve": ("批准", "Approve"),
    "reject": ("驳回", "Reject"),
    "reason": ("理由", "Reason"),
    "evidence": ("证据", "Evidence"),
    "passed": ("通过", "passed"),
    "checks": ("规则检查", "Rule checks"),
    "active_rules": ("现行规则", "Rules in force"),
    "dry_run": ("试运行", "Dry run"),
    "apply": ("生效", "Apply"),
    "impact": ("影响", "Impact"),
    "applied": ("新规则已生效。", "The new rules are in force."),
    "nothing_affected": ("没有挂牌产品或订单受影响。", "No listing or order is affected."),
    "halt": ("暂停交易", "Halt trading"),
    "resume": ("恢复交易", "Resume trading"),
    "version": ("版本", "Version"),
    "upload": ("上传规则文件", "Upload rule files"),
    "fees_per_day": ("近 30 天每日交易服务费", "Fees per day, last 30 days"),
    "no": ("否", "no"),
}


def translator(lang: str) -> Callable[[str], str]:
    position = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        pair = STRINGS.get(key)
        return pair[position] if pair else key

    return t


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return str(cookie)
    if accept_language and accept_language.lower().startswith("en"):
        return "en"
    return "zh"
