"""The catalogue over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.harness import Api, listing_body

PROBLEM = "application/problem+json"


async def test_chinese_listing_is_created_submitted_approved_and_found_by_jiaotong(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    created = await api.request("POST", "/v1/listings", vendor, json=listing_body())
    assert created.status_code == 201, created.text
    listing = created.json()
    assert listing["status"] == "draft"
    assert listing["plans"][0]["id"].startswith("pln_")

    submitted = await api.request("POST", f"/v1/listings/{listing['id']}/submit", vendor)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    checklist = submitted.json()["checklist"]
    assert checklist and all({"item", "kind", "text"} <= set(item) for item in checklist)

    approved = await api.request("POST", f"/v1/listings/{listing['id']}/approve", api.operator_key, json=api.approval(submitted.json()))
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "listed"

    found = await api.request("GET", "/v1/listings", params={"q": "交通"})
    assert found.status_code == 200
    assert [item["id"] for item in found.json()["items"]] == [listing["id"]]
    english = await api.request("GET", "/v1/listings", params={"q": "mobility"})
    assert [item["id"] for item in english.json()["items"]] == [listing["id"]]
    assert (await api.request("GET", "/v1/listings", params={"q": "金融"})).json()["items"] == []


async def test_biometric_listing_without_authorisation_id_is_refused_at_submit_naming_the_rule(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    body = listing_body(
        title="人脸识别门禁样本 Face access samples",
        category="biometric",
        grade="L3",
        personal_data=True,
        attestations={"source": "Collected with signed consent", "consent": "CONSENT-2026-001", "rights": ["holding"]},
    )
    created = await api.request("POST", "/v1/listings", vendor, json=body)
    assert created.status_code == 201, created.text
    refused = await api.request("POST", f"/v1/listings/{created.json()['id']}/submit", vendor)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    problem = refused.json()
    assert problem["code"] == "rule_violated"
    rules = [v["rule"] for v in problem["violations"]]
    assert any("requires_authorisation" in rule for rule in rules), rules
    assert problem["rulebook_hash"]
    # Nothing changed: still a draft, and no submit in its history.
    again = await api.request("GET", f"/v1/listings/{created.json()['id']}", vendor)
    assert again.json()["status"] == "draft"
    history = await api.request("GET", f"/v1/listings/{created.json()['id']}/history", vendor)
    assert [event["action"] for event in history.json()["events"]] == ["create"]


async def test_another_vendor_cannot_change_a_listing(api: Api) -> None:
    _, owner = await api.participant("vendor")
    _, other = await api.participant("vendor")
    listing = await api.listed(owner)
    patched = await api.request("PATCH", f"/v1/listings/{listing['id']}", other, json={"title": "hijacked"})
    assert patched.status_code == 403
    assert patched.json()["code"] == "forbidden"
    delisted = await api.request("POST", f"/v1/listings/{listing['id']}/delist", other)
    assert delisted.status_code == 403
    assert (await api.request("GET", f"/v1/listings/{listing['id']}")).json()["title"] == listing["title"]


async def test_drafts_are_hidden_from_buyers_and_anonymous_callers(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    _, buyer = await api.participant("buyer")
    draft = (await api.request("POST", "/v1/listings", vendor, json=listing_body())).json()
    for key in (buyer, None):
        assert (await api.request("GET", f"/v1/listings/{draft['id']}", key)).status_code == 404
        assert (await api.request("GET", "/v1/listings", key, params={"q": "交通"})).json()["items"] == []
    assert (await api.request("GET", f"/v1/listings/{draft['id']}", vendor)).status_code == 200
    own = await api.request("GET", "/v1/listings", vendor, params={"q": "交通"})
    assert [item["id"] for item in own.json()["items"]] == [draft["id"]]
    everything = await api.request("GET", "/v1/listings", api.operator_key, params={"status": "draft"})
    assert [item["id"] for item in everything.json()["items"]] == [draft["id"]]


async def test_anonymous_callers_search_with_filters_and_cursor_pages(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    prices = [100_00, 500_00, 2_000_00, 9_000_00]
    ids = []
    for index, price in enumerate(prices):
        listing = await api.listed(
            vendor,
            title=f"上海交通数据 {index}",
            plans=[{"kind": "fixed", "price": {"amount": price, "currency": "CNY"}}],
        )
        ids.append(listing["id"])
    await api.listed(vendor, title="Shanghai port throughput 港口吞吐量", category="geospatial", plans=[{"kind": "negotiated"}])

    cheap = await api.request("GET", "/v1/listings", params={"price_max": 500_00, "sort": "price_asc"})
    assert [item["id"] for item in cheap.json()["items"]] == ids[:2]
    negotiated = await api.request("GET", "/v1/listings", params={"plan_kind": "negotiated"})
    assert [item["title"] for item in negotiated.json()["items"]] == ["Shanghai port throughput 港口吞吐量"]
    transport = await api.request("GET", "/v1/listings", params={"category": "transport", "q": "交通"})
    assert len(transport.json()["items"]) == 4

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "price_desc"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.request("GET", "/v1/listings", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert seen[1:] == list(reversed(ids))  # negotiated-only sorts as the highest price

    newest: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.request("GET", "/v1/listings", params=params)).json()
        newest += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(newest) == sorted(seen)


async def test_editing_a_listed_product_makes_a_revision_reviewed_while_the_old_one_stays_on_sale(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    listing = await api.listed(vendor)
    plan_id = listing["plans"][0]["id"]
    edited = await api.request(
        "PATCH",
        f"/v1/listings/{listing['id']}",
        vendor,
        json={"title": "上海交通出行数据 2027 版", "plans": [{"kind": "fixed", "id": plan_id, "price": {"amount": 1_500_000, "currency": "CNY"}}, {"kind": "free"}]},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "listed"
    assert edited.json()["pending_revision"]["status"] == "draft"
    public = (await api.request("GET", f"/v1/listings/{listing['id']}")).json()
    assert public["title"] == listing["title"] and public["pending_revision"] is None

    submitted = await api.request("POST", f"/v1/listings/{listing['id']}/submit", vendor)
    assert submitted.json()["pending_revision"]["status"] == "submitted"
    in_review = await api.request("GET", "/v1/listings", api.operator_key, params={"review": "pending"})
    assert [item["id"] for item in in_review.json()["items"]] == [listing["id"]]
    approved = await api.request("POST", f"/v1/listings/{listing['id']}/approve", api.operator_key, json=api.approval(submitted.json()))
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert result["title"] == "上海交通出行数据 2027 版" and result["revision"] == 2
    assert result["plans"][0]["id"] == plan_id and result["plans"][0]["price"]["amount"] == 1_500_000
    history = (await api.request("GET", f"/v1/listings/{listing['id']}/history", vendor)).json()["events"]
    assert [e["action"] for e in history] == ["create", "submit", "approve", "edit", "submit", "approve"]
    assert all(e["rulebook_hash"] for e in history)
    assert history[2]["details"]["checklist"][0]["evidence"]


async def test_approval_needs_every_checklist_item_passed_with_evidence(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    created = (await api.request("POST", "/v1/listings", vendor, json=listing_body())).json()
    submitted = (await api.request("POST", f"/v1/listings/{created['id']}/submit", vendor)).json()
    answers = api.approval(submitted)
    first = answers["checklist"][0]["item"]
    answers["checklist"] = answers["checklist"][1:]
    refused = await api.request("POST", f"/v1/listings/{created['id']}/approve", api.operator_key, json=answers)
    assert refused.status_code == 422
    assert {"field": f"checklist.{first}", "reason": "not answered"} in refused.json()["errors"]
    failed = api.approval(submitted)
    failed["checklist"][0]["passed"] = False
    refused = await api.request("POST", f"/v1/listings/{created['id']}/approve", api.operator_key, json=failed)
    assert refused.status_code == 422 and "failed" in refused.text
    assert (await api.request("GET", f"/v1/listings/{created['id']}", vendor)).json()["status"] == "submitted"


async def test_operators_reject_suspend_resume_and_vendors_delist_their_own(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    created = (await api.request("POST", "/v1/listings", vendor, json=listing_body())).json()
    await api.request("POST", f"/v1/listings/{created['id']}/submit", vendor)
    rejected = await api.request("POST", f"/v1/listings/{created['id']}/reject", api.operator_key, json={"reason": "schema unclear"})
    assert rejected.json()["status"] == "rejected"
    assert (await api.request("POST", f"/v1/listings/{created['id']}/reject", api.operator_key, json={"reason": "again"})).status_code == 409

    listing = await api.listed(vendor)
    path = f"/v1/listings/{listing['id']}"
    assert (await api.request("POST", f"{path}/suspend", vendor, json={"reason": "x"})).status_code == 403
    assert (await api.request("POST", f"{path}/suspend", api.operator_key, json={"reason": "complaint"})).json()["status"] == "suspended"
    assert (await api.request("GET", path)).status_code == 404
    assert (await api.request("POST", f"{path}/resume", api.operator_key)).json()["status"] == "listed"
    assert (await api.request("POST", f"{path}/delist", vendor, json={"reason": "retired"})).json()["status"] == "delisted"
    history = (await api.request("GET", f"{path}/history", api.operator_key)).json()["events"]
    assert [(e["action"], e["reason"]) for e in history[-3:]] == [("suspend", "complaint"), ("resume", None), ("delist", "retired")]


async def test_buyers_and_regulators_cannot_create_listings(api: Api) -> None:
    _, buyer = await api.participant("buyer")
    _, regulator = await api.participant("regulator")
    for key in (buyer, regulator):
        response = await api.request("POST", "/v1/listings", key, json=listing_body())
        assert response.status_code == 403
        assert response.headers["content-type"].startswith(PROBLEM)
    assert (await api.request("POST", "/v1/listings", None, json=listing_body())).status_code == 401
    assert (await api.request("GET", "/v1/listings", api.operator_key)).json()["items"] == []


async def test_bad_listing_input_names_the_field_and_writes_nothing(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    cases = [
        listing_body(plans=[{"kind": "fixed", "price": {"amount": 1.5, "currency": "CNY"}}]),
        listing_body(plans=[{"kind": "fixed", "price": {"amount": -1, "currency": "CNY"}}]),
        listing_body(plans=[{"kind": "barter"}]),
        listing_body(plans=[]),
        listing_body(colour="red"),
        listing_body(delivery="pigeon"),
        listing_body(title=""),
    ]
    for body in cases:
        response = await api.request("POST", "/v1/listings", vendor, json=body)
        assert response.status_code == 400, (body, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith(PROBLEM)
        assert problem["code"] == "invalid_request"
        assert problem["errors"] and problem["errors"][0]["field"] or "colour" in problem["detail"]
    with_id = listing_body(plans=[{"kind": "free", "id": "pln_x"}])
    response = await api.request("POST", "/v1/listings", vendor, json=with_id)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "plans[0].id"
    assert (await api.request("GET", "/v1/listings", vendor)).json()["items"] == []


async def test_creating_a_listing_honours_idempotency_key(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    headers = {"Idempotency-Key": "listing-1"}
    first = await api.request("POST", "/v1/listings", vendor, json=listing_body(), headers=headers)
    again = await api.request("POST", "/v1/listings", vendor, json=listing_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await api.request("POST", "/v1/listings", vendor, json=listing_body(title="另一个"), headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    everything = await api.request("GET", "/v1/listings", vendor)
    assert len(everything.json()["items"]) == 1
    # Keys belong to their participant: another vendor's same key is a new request.
    _, second_vendor = await api.participant("vendor")
    theirs = await api.request("POST", "/v1/listings", second_vendor, json=listing_body(), headers=headers)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
