"""Participants and authentication over HTTP."""

from tests.harness import Api, listing_body


async def test_operator_registers_a_participant_whose_key_works_once_shown(api: Api) -> None:
    response = await api.request(
        "POST",
        "/v1/participants",
        api.operator_key,
        json={"name": "上海数商", "roles": ["vendor", "buyer"], "qualifications": ["data-merchant"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["api_key"].startswith("exk_")
    me = await api.request("GET", "/v1/participants/me", created["api_key"])
    assert me.status_code == 200
    assert me.json()["id"] == created["id"]
    assert me.json()["roles"] == ["buyer", "vendor"]
    assert me.json()["qualifications"] == ["data-merchant"]
    assert "api_key" not in me.json()


async def test_only_operators_register_participants(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    _, regulator = await api.participant("regulator")
    body = {"name": "x", "roles": ["buyer"]}
    assert (await api.request("POST", "/v1/participants", vendor, json=body)).status_code == 403
    assert (await api.request("POST", "/v1/participants", regulator, json=body)).status_code == 403
    assert (await api.request("POST", "/v1/participants", None, json=body)).status_code == 401


async def test_unknown_role_is_refused_naming_the_field(api: Api) -> None:
    response = await api.request("POST", "/v1/participants", api.operator_key, json={"name": "x", "roles": ["king"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("roles")


async def test_a_wrong_or_malformed_key_is_refused_even_on_public_routes(api: Api) -> None:
    for header in ("Bearer exk_wrong", "Basic abc", "Bearer ", "Bearer " + "x" * 500):
        response = await api.client.get("/v1/listings", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["code"] == "not_authenticated"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_suspended_participants_are_refused_until_reactivated(api: Api) -> None:
    vendor_id, vendor = await api.participant("vendor")
    suspended = await api.request("POST", f"/v1/participants/{vendor_id}/suspend", api.operator_key)
    assert suspended.json()["status"] == "suspended"
    for method, path in (("GET", "/v1/participants/me"), ("GET", "/v1/listings")):
        refused = await api.request(method, path, vendor)
        assert refused.status_code == 403 and refused.json()["code"] == "participant_suspended"
    assert (await api.request("POST", "/v1/listings", vendor, json=listing_body())).status_code == 403
    await api.request("POST", f"/v1/participants/{vendor_id}/reactivate", api.operator_key)
    assert (await api.request("GET", "/v1/participants/me", vendor)).status_code == 200


async def test_regulators_read_everything_and_write_nothing(api: Api) -> None:
    _, regulator = await api.participant("regulator")
    vendor_id, vendor = await api.participant("vendor")
    draft = (await api.request("POST", "/v1/listings", vendor, json=listing_body())).json()
    assert (await api.request("GET", f"/v1/listings/{draft['id']}", regulator)).status_code == 200
    assert (await api.request("GET", f"/v1/participants/{vendor_id}", regulator)).status_code == 200
    assert (await api.request("GET", "/v1/participants", regulator)).status_code == 200
    writes = [
        ("POST", f"/v1/participants/{vendor_id}/suspend", None),
        ("POST", f"/v1/listings/{draft['id']}/submit", None),
        ("POST", f"/v1/listings/{draft['id']}/approve", {"reason": "x", "checklist": []}),
        ("POST", f"/v1/listings/{draft['id']}/reject", {"reason": "x"}),
        ("PATCH", f"/v1/listings/{draft['id']}", {"title": "x"}),
        ("PUT", "/v1/rules", {"files": {"listing.toml": ""}, "reason": "x"}),
    ]
    for method, path, body in writes:
        response = await api.request(method, path, regulator, json=body)
        assert response.status_code == 403, (method, path, response.text)


async def test_registering_honours_idempotency_key(api: Api) -> None:
    headers = {"Idempotency-Key": "register-acme"}
    body = {"name": "Acme", "roles": ["buyer"]}
    first = await api.request("POST", "/v1/participants", api.operator_key, json=body, headers=headers)
    again = await api.request("POST", "/v1/participants", api.operator_key, json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and first.json()["api_key"]
    assert again.json() == {**first.json(), "api_key": None}  # the same participant; its key is shown once
    changed = await api.request("POST", "/v1/participants", api.operator_key, json={**body, "name": "Other"}, headers=headers)
    assert changed.status_code == 409
    listing = await api.request("GET", "/v1/participants", api.operator_key, params={"role": "buyer"})
    assert [p["name"] for p in listing.json()["items"]] == ["Acme"]


async def test_a_name_that_looks_like_json_members_is_only_text(api: Api) -> None:
    # The duplicate-member check counts member-name endings (`":`) in the raw body; a string
    # holding some sends the body to the exact, slower check, which must let it through.
    raw = b'{"name": "say \\"hi\\": \\"x\\":", "roles": ["buyer"]}'
    response = await api.client.request("POST", "/v1/participants", content=raw, headers={**api.auth(api.operator_key), "content-type": "application/json"})
    assert response.status_code == 201, response.text
    assert (await api.request("GET", "/v1/participants/me", response.json()["api_key"])).json()["name"] == 'say "hi": "x":'
    twice = b'{"name": "say \\"hi\\":", "roles": ["buyer"], "name": "again"}'
    refused = await api.client.request("POST", "/v1/participants", content=twice, headers={**api.auth(api.operator_key), "content-type": "application/json"})
    assert refused.status_code == 400 and [e["field"] for e in refused.json()["errors"]] == ["name"], refused.text
