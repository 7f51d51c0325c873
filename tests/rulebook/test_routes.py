"""Rule sets over HTTP: read, dry-run, apply without a restart, refuse a broken set whole."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from tests.harness import Api, listing_body


def _without_listable(text: str, grade: str) -> str:
    catalogue = tomllib.loads(text)
    for entry in catalogue["grades"]:
        if entry["code"] == grade:
            entry["listable"] = False
    return tomli_w.dumps(catalogue)


async def _active_files(api: Api) -> dict[str, str]:
    response = await api.request("GET", "/v1/rules")
    assert response.status_code == 200
    return response.json()["files"]  # type: ignore[no-any-return]


async def test_rules_are_published_with_version_hash_and_files(api: Api) -> None:
    rules = (await api.request("GET", "/v1/rules")).json()
    assert rules["version"] == 1 and rules["active"] is True
    assert len(rules["hash"]) == 64
    assert {"catalogue.toml", "listing.toml"} <= set(rules["files"])
    history = (await api.request("GET", "/v1/rules/history")).json()["items"]
    assert [(v["version"], v["created_by"]) for v in history] == [(1, "system")]


async def test_dry_run_of_barring_l3_lists_the_listed_l3_products_and_changes_nothing(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    l3 = await api.listed(vendor, title="医保结算脱敏数据", grade="L3")
    await api.listed(vendor, title="公交线路 L2", grade="L2")
    files = await _active_files(api)
    candidate = {"catalogue.toml": _without_listable(files["catalogue.toml"], "L3")}

    report = await api.request("POST", "/v1/rules/dry-run", api.operator_key, json={"files": candidate})
    assert report.status_code == 200, report.text
    impacts = report.json()["listings"]
    assert [item["listing_id"] for item in impacts] == [l3["id"]]
    assert any("L3" in violation["rule"] for violation in impacts[0]["violations"])
    assert report.json()["changed_files"] == ["catalogue.toml"]
    assert (await api.request("GET", "/v1/rules")).json()["version"] == 1


async def test_applying_takes_effect_at_once_and_is_recorded(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    files = await _active_files(api)
    candidate = {"catalogue.toml": _without_listable(files["catalogue.toml"], "L3")}
    applied = await api.request("PUT", "/v1/rules", api.operator_key, json={"files": candidate, "reason": "pause L3"})
    assert applied.status_code == 200, applied.text
    assert applied.json()["version"] == 2 and applied.json()["active"] is True

    draft = (await api.request("POST", "/v1/listings", vendor, json=listing_body(grade="L3"))).json()
    refused = await api.request("POST", f"/v1/listings/{draft['id']}/submit", vendor)
    assert refused.status_code == 422
    assert refused.json()["rulebook_hash"] == applied.json()["hash"]
    history = (await api.request("GET", "/v1/rules/history")).json()["items"]
    assert [(v["version"], v["reason"], v["active"]) for v in history] == [(2, "pause L3", True), (1, "initial rule set", False)]


async def test_a_broken_rule_file_is_refused_with_file_key_and_reason_and_nothing_changes(api: Api) -> None:
    before = (await api.request("GET", "/v1/rules")).json()
    files = await _active_files(api)
    broken: dict[str, Any] = {
        "catalogue.toml": files["catalogue.toml"].replace("listable = false", 'listable = "no"', 1),
        "listing.toml": "[[[ not toml",
    }
    for method, path, body in (("PUT", "/v1/rules", {"files": broken, "reason": "oops"}), ("POST", "/v1/rules/dry-run", {"files": broken})):
        response = await api.request(method, path, api.operator_key, json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "rulebook_invalid"
        by_file = {error["file"]: error for error in problem["errors"]}
        assert set(by_file) == {"catalogue.toml", "listing.toml"}
        assert "listable" in by_file["catalogue.toml"]["key"]
        assert all(error["reason"] for error in problem["errors"])
    after = (await api.request("GET", "/v1/rules")).json()
    assert (after["version"], after["hash"]) == (before["version"], before["hash"])


async def test_rules_take_effect_at_their_effective_time(api: Api, clock: Any) -> None:
    files = await _active_files(api)
    candidate = {"catalogue.toml": _without_listable(files["catalogue.toml"], "L3")}
    later = clock.now.replace(year=clock.now.year + 1).isoformat()
    applied = await api.request("PUT", "/v1/rules", api.operator_key, json={"files": candidate, "reason": "next year", "effective_at": later})
    assert applied.json()["active"] is False
    assert (await api.request("GET", "/v1/rules")).json()["version"] == 1
    clock.advance(days=400)
    assert (await api.request("GET", "/v1/rules")).json()["version"] == 2


async def test_only_operators_apply_rules(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    files = await _active_files(api)
    response = await api.request("PUT", "/v1/rules", vendor, json={"files": files, "reason": "mine now"})
    assert response.status_code == 403
