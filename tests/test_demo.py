"""`exchange demo`: about fifty listings across the categories, judged by the shipped rules like
any other, and the demo participants' keys in a file only its owner reads."""

from __future__ import annotations

import stat
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from exchange.db import Database
from exchange.demo import load_demo
from exchange.demo_catalogue import BIOMETRIC_WITHOUT_AUTHORISATION, LISTINGS, VENDORS
from exchange.listings.schemas import PLAN_KINDS, ListingIn
from exchange.rulebook.evaluate import VendorFacts, check_listing
from exchange.rulebook.load import decode_rulebook
from exchange.rulebook.model import RULE_FILES
from exchange.settings import shipped_rules_dir
from tests.harness import Api

RULEBOOK = decode_rulebook({name: (shipped_rules_dir() / name).read_text(encoding="utf-8") for name in RULE_FILES})
QUALIFICATIONS = {vendor["key"]: frozenset(vendor["qualifications"]) for vendor in VENDORS}


@pytest.mark.parametrize("entry", LISTINGS, ids=[entry["body"]["title"][:24] for entry in LISTINGS])
def test_every_demo_listing_passes_the_shipped_rules(entry: dict[str, Any]) -> None:
    listing = msgspec.convert(entry["body"], ListingIn)
    assert check_listing(RULEBOOK, listing, VendorFacts(qualifications=QUALIFICATIONS[entry["vendor"]])) == []


def test_the_demo_covers_the_catalogue() -> None:
    bodies = [entry["body"] for entry in LISTINGS]
    assert 45 <= len(bodies) <= 60
    assert {body["category"] for body in bodies} == {category.code for category in RULEBOOK.catalogue.categories}
    assert {plan["kind"] for body in bodies for plan in body["plans"]} == set(PLAN_KINDS)
    assert {body["grade"] for body in bodies} == {"L1", "L2", "L3"}
    assert sum("交通" in body["title"] for body in bodies) >= 4


def test_the_refused_sample_breaks_exactly_the_biometric_rule() -> None:
    listing = msgspec.convert(BIOMETRIC_WITHOUT_AUTHORISATION, ListingIn)
    violations = check_listing(RULEBOOK, listing, VendorFacts(qualifications=frozenset({"data-merchant"})))
    assert [violation.rule for violation in violations] == ["catalogue.categories.biometric.requires_authorisation"]


async def test_demo_loads_once_and_its_keys_work(api: Api, tmp_path: Path) -> None:
    keys_file = tmp_path / "demo-keys.json"
    db = Database(api.settings)
    try:
        summary = await load_demo(db, api.settings, keys_file)
        again = await load_demo(db, api.settings, keys_file)
    finally:
        await db.dispose()
    statuses = Counter(entry["status"] for entry in LISTINGS)
    assert f"{len(LISTINGS)} listings" in summary and f"{statuses['listed']} listed" in summary
    assert "already loaded" in again
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keys = msgspec.json.decode(keys_file.read_bytes())

    public: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await api.request("GET", "/v1/listings", params={"limit": 20, **({"cursor": cursor} if cursor else {})})).json()
        public += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert len(public) == statuses["listed"]
    assert {item["status"] for item in public} == {"listed"}
    found = (await api.request("GET", "/v1/listings", params={"q": "交通", "limit": 100})).json()["items"]
    assert len(found) >= 4

    vendor = keys["vendors"]["shentong"]
    me = (await api.request("GET", "/v1/participants/me", vendor["api_key"])).json()
    assert me["id"] == vendor["id"] and me["roles"] == ["vendor"]
    own = (await api.request("GET", "/v1/listings", vendor["api_key"], params={"vendor": vendor["id"], "limit": 100})).json()["items"]
    expected_own = [entry for entry in LISTINGS if entry["vendor"] == "shentong"]
    assert len(own) == len(expected_own)  # a vendor also sees its own drafts and submissions

    pending = (await api.request("GET", "/v1/listings", keys["operator"]["api_key"], params={"review": "pending", "limit": 100})).json()["items"]
    assert len(pending) == statuses["submitted"]
    assert all(item["checklist"] for item in pending)
