"""The main journeys in headless Chromium: search in Chinese, sign in, buy, see the signed
contract, verify a ledger entry in the browser (and see a forged one fail)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from tests.web.conftest import Site

SCREENSHOTS = Path(os.environ.get("EXCHANGE_SCREENSHOTS_DIR", "")) if os.environ.get("EXCHANGE_SCREENSHOTS_DIR") else None


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, site: Site, key: str) -> None:
    page.goto(f"{site.url}/signin")
    page.fill("#api-key", key)
    page.click("#sign-in")
    page.wait_for_url(f"{site.url}/account")


def test_search_in_chinese_finds_transport_data(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    page.fill("#q", "交通")
    page.click("#search-button")
    titles = page.locator(".result .title").all_inner_texts()
    assert len(titles) >= 4 and all("交通" in title or "交通" in page.content() for title in titles)
    assert "数据产品目录" in page.content()  # Chinese by default
    shot(page, "catalogue")
    page.click("#lang-switch")
    assert "Catalogue" in page.content()


def test_sign_in_buy_and_see_the_signed_contract(page: Any, site: Site) -> None:
    page.goto(site.url + "/signin")
    page.fill("#api-key", "exk_not_a_real_key")
    page.click("#sign-in")
    page.locator("#signin-error").wait_for(timeout=10_000)  # refused, and said so

    buyer = site.keys["buyers"]["logistics"]
    sign_in(page, site, buyer["api_key"])
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["exs"]["httpOnly"] and cookies["exs"]["sameSite"] == "Lax"
    fixed = site.api("GET", "/v1/listings", params={"plan_kind": "fixed", "category": "finance", "limit": 1}).json()["items"][0]
    page.goto(f"{site.url}/listings/{fixed['id']}")
    shot(page, "listing")
    page.locator("button.buy").first.click()
    page.wait_for_url(f"{site.url}/account?bought=*")
    page.locator("#bought").wait_for(timeout=10_000)
    contract = page.locator("details.contract").first
    contract.click()
    signature = contract.locator(".signature").inner_text()
    assert len(base64.b64decode(signature)) == 64  # an Ed25519 signature
    shot(page, "account")


def test_a_quota_listing_shows_its_book_and_trades(page: Any, site: Site) -> None:
    quota = site.api("GET", "/v1/listings", params={"plan_kind": "quota", "limit": 1}).json()["items"][0]
    vendor_key = next(v["api_key"] for v in site.keys["vendors"].values() if v["id"] == quota["vendor_id"])
    plan = next(p for p in quota["plans"] if p["kind"] == "quota")
    reference = plan["reference_price"]["amount"]
    buyer_key = site.keys["buyers"]["bank"]["api_key"]
    for price in (reference, reference + reference // 20):
        assert site.api("POST", "/v1/orders", vendor_key, json={"listing_id": quota["id"], "plan_id": plan["id"], "side": "sell", "quantity": 20, "price": price}).status_code == 201
    for quantity in (5, 7, 3):
        site.api("POST", "/v1/orders", buyer_key, json={"listing_id": quota["id"], "plan_id": plan["id"], "quantity": quantity, "price": reference})
    page.goto(f"{site.url}/listings/{quota['id']}")
    assert page.locator("#market .asks tbody tr").count() >= 1
    assert page.locator("#market .trades tbody tr").count() == 3
    assert page.locator("#market svg.chart").count() == 1
    site.api("POST", "/v1/orders", buyer_key, json={"listing_id": quota["id"], "plan_id": plan["id"], "quantity": 1, "price": reference})
    page.wait_for_function("document.querySelectorAll('#market .trades tbody tr').length === 4", timeout=10_000)  # refreshed live
    shot(page, "book")


def test_ledger_entries_verify_in_the_browser_and_forgeries_fail(page: Any, site: Site) -> None:
    regulator = site.keys["regulator"]["api_key"]
    sign_in(page, site, regulator)
    page.goto(f"{site.url}/ledger")
    first = page.locator("#entries tbody tr").first
    index = first.get_attribute("data-index")
    first.locator("button.verify").click()
    result = first.locator(".result")
    result.filter(has_text="—").wait_for(timeout=10_000)
    assert result.inner_text().startswith("已验证"), result.inner_text()
    shot(page, "ledger")

    def forge(route: Any) -> None:
        entry = json.loads(route.fetch().text())
        raw = base64.b64decode(entry["canonical"]).replace(b'"v":1', b'"v":2')
        entry["canonical"] = base64.b64encode(raw).decode()
        route.fulfill(json=entry)

    page.route(f"**/ledger/entries/{index}", forge)
    page.reload()
    row = page.locator(f"#entries tbody tr[data-index='{index}']")
    row.locator("button.verify").click()
    forged = row.locator(".result")
    forged.filter(has_text="—").wait_for(timeout=10_000)
    assert forged.inner_text().startswith("验证失败"), forged.inner_text()
