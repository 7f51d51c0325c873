"""The vendor's and the operator's journeys in the browser: create and submit a listing (and
see a rule refuse one), approve it from the review queue, buy it, and change a rule after
reading its dry run."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Site
from tests.web.test_journeys import shot, sign_in


def fill_listing(page: Any, title: str, grade: str = "L2") -> None:
    page.goto(page.url.split("/vendor")[0] + "/vendor/new")
    page.fill("#f-title", title)
    page.fill("#f-description", "浏览器测试创建的交通数据产品，按日更新。A transport product created by the browser journey.")
    page.select_option("#f-category", "transport")
    page.select_option("#f-grade", grade)
    page.fill("#f-schema", "station, date, trips")
    page.fill("#f-source", "Metro operator contract SH-TR-2026-009")
    page.fill("#f-price", "888")
    page.click("#create-listing")
    page.wait_for_url("**/vendor/listings/*")


def test_create_submit_approve_buy(page: Any, site: Site, browser: Any) -> None:
    vendor = site.keys["vendors"]["shentong"]
    sign_in(page, site, vendor["api_key"])
    page.goto(f"{site.url}/vendor")
    fill_listing(page, "浏览器核心数据 Core data from the browser", grade="L4")
    page.click("#submit-listing")
    page.locator("#rule-failures").wait_for()
    assert "catalogue.grades.L4.listable" in page.locator("#rule-failures").inner_text()

    fill_listing(page, "浏览器交通数据 Transport data from the browser")
    listing_url = page.url
    listing_id = listing_url.rsplit("/", 1)[-1]
    page.click("#submit-listing")
    page.wait_for_load_state()
    assert page.locator("#listing-status").inner_text() == "submitted"
    shot(page, "vendor")

    operator = browser.new_context(locale="zh-CN").new_page()
    sign_in(operator, site, site.keys["operator"]["api_key"])
    operator.goto(f"{site.url}/console")
    review = operator.locator(f"section.review[data-listing='{listing_id}']")
    for field in review.locator("input.evidence").all():
        field.fill("核验合同 SH-TR-2026-009 / contract checked")
    assert operator.locator("#fees-chart rect").count() == 30
    shot(operator, "console")
    review.locator("button.approve").click()
    operator.wait_for_url(f"{site.url}/console")
    assert operator.locator(f"section.review[data-listing='{listing_id}']").count() == 0
    assert site.api("GET", f"/v1/listings/{listing_id}").json()["status"] == "listed"
    operator.context.close()

    buyer = browser.new_context(locale="zh-CN").new_page()
    sign_in(buyer, site, site.keys["buyers"]["planning"]["api_key"])
    buyer.goto(f"{site.url}/listings/{listing_id}")
    buyer.locator("button.buy").first.click()
    buyer.locator("#bought").wait_for()
    assert "浏览器交通数据" in buyer.locator("details.contract").first.inner_text()
    buyer.context.close()


def test_a_rule_change_is_dry_run_then_applied(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["operator"]["api_key"])
    page.goto(f"{site.url}/console/rules")
    shot(page, "rules")
    catalogue = page.locator("#file-catalogue-toml")
    text = catalogue.input_value()
    barred = text.replace('code = "L3"\nname_zh = "敏感级"\nname_en = "Sensitive"\nlistable = true', 'code = "L3"\nname_zh = "敏感级"\nname_en = "Sensitive"\nlistable = false')
    assert barred != text
    catalogue.fill(barred)
    page.click("#dry-run")
    impact = page.locator("#impact")
    impact.wait_for()
    assert "-listable = true" in impact.inner_text() and "+listable = false" in impact.inner_text()
    affected = page.locator(".affected-listing").count()
    assert affected >= 10  # the demo's listed L3 products
    page.fill("#rules-reason", "L3 paused for review")
    page.click("#apply")
    page.wait_for_url("**/console/rules?applied=1")
    assert "L3 paused for review" in page.locator("#rules-history").inner_text()
    active = site.api("GET", "/v1/rules").json()
    assert "listable = false" in active["files"]["catalogue.toml"].split('code = "L3"')[1].split("[[grades]]")[0]


def test_an_uploaded_rule_file_is_dry_run(page: Any, site: Site, tmp_path: Any) -> None:
    sign_in(page, site, site.keys["operator"]["api_key"])
    page.goto(f"{site.url}/console/rules")
    listing = page.locator("#file-listing-toml").input_value()
    upload = tmp_path / "listing.toml"
    upload.write_text(listing.replace("title_length_max = 120", "title_length_max = 10"), encoding="utf-8")
    page.set_input_files("#upload-files", str(upload))
    page.click("#upload")
    impact = page.locator("#impact")
    impact.wait_for()
    assert "+title_length_max = 10" in impact.inner_text()
    assert "listing.title_length_max" in impact.inner_text()
    assert page.locator("#file-listing-toml").input_value().count("title_length_max = 10") == 1
