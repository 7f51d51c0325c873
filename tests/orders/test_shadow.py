"""Shadow rules: a candidate set judges live orders on the side without refusing any; its
divergences are reported; promoting it makes it the rule, and then it refuses."""

from __future__ import annotations

from exchange.settings import shipped_rules_dir
from tests.harness import Api
from tests.orders.conftest import Market, money

BARRED = """

[[access]]
id = "transport-barred"
categories = ["transport"]
grades = []
qualifications_any = ["transport-clearance"]
purposes_any = []
"""


async def test_a_shadow_set_that_bars_a_category_reports_then_refuses_once_promoted(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)})  # a transport listing
    _, buyer = await market.buyer(1_000_000)
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8") + BARRED
    started = await api.request("PUT", "/v1/rules/shadow", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "bar transport data"})
    assert started.status_code == 200, started.text
    assert (await api.request("PUT", "/v1/rules/shadow", buyer, json={"files": {"trading.toml": trading}, "reason": "x"})).status_code == 403
    broken = await api.request("PUT", "/v1/rules/shadow", api.operator_key, json={"files": {"trading.toml": "[[access]]\nid = 1"}, "reason": "typo"})
    assert broken.status_code == 422 and broken.json()["code"] == "rulebook_invalid"

    orders = [await market.order(buyer, listing) for _ in range(2)]
    assert all(o.status_code == 201 for o in orders)  # the shadow refuses nothing
    report = (await api.request("GET", "/v1/rules/shadow/report", api.operator_key)).json()
    assert report["shadow"]["status"] == "shadowing" and report["shadow"]["judged"] == 2
    assert [d["order_id"] for d in report["divergences"]] == [o.json()["id"] for o in orders]
    divergence = report["divergences"][0]
    assert divergence["active_outcome"] == "accepted" and divergence["shadow_outcome"] == "refused"
    assert divergence["shadow_violations"][0]["rule"] == "trading.access.transport-barred.qualifications_any"

    promoted = await api.request("POST", "/v1/rules/shadow/promote", api.operator_key)
    assert promoted.status_code == 200 and promoted.json()["active"] is True
    refused = await market.order(buyer, listing)
    assert refused.status_code == 422 and refused.json()["violations"][0]["rule"] == "trading.access.transport-barred.qualifications_any"
    assert (await api.request("POST", "/v1/rules/shadow/drop", api.operator_key)).status_code == 409  # nothing is in shadow now
    assert (await api.request("GET", "/v1/rules/shadow/report", api.operator_key)).json()["shadow"]["status"] == "promoted"
