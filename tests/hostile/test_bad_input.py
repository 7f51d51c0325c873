"""Hostile requests at the HTTP edge, on both databases: each gets a clear 4xx problem+json that
names the field where there is one, never a 5xx, and nothing is written (checked by reading
participants, listings, orders, the ledger, accounts and the rule set back through the API).
Text in Chinese and with emoji is accepted where it is valid, and comes back unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import Api, listing_body

PROBLEM = "application/problem+json"
NESTING = 10_000


@dataclass
class World:
    api: Api
    vendor: str
    buyer_id: str
    buyer: str
    listing: dict[str, Any]
    rules: dict[str, str]

    def key(self, who: str) -> str:
        return {"operator": self.api.operator_key, "vendor": self.vendor, "buyer": self.buyer}[who]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    who: str
    body: Callable[[World], dict[str, Any]]


ROUTES = {
    "participants": Route("POST", "/v1/participants", "operator", lambda w: {"name": "敌意测试 hostile", "roles": ["buyer"]}),
    "listings": Route("POST", "/v1/listings", "vendor", lambda w: listing_body()),
    "orders": Route("POST", "/v1/orders", "buyer", lambda w: {"listing_id": w.listing["id"], "plan_id": w.listing["plans"][0]["id"]}),
    "deposits": Route(
        "POST", "/v1/accounts/deposits", "operator",
        lambda w: {"participant_id": w.buyer_id, "amount": 100, "currency": "CNY", "rail": "bank", "reference": "hostile-1"},
    ),
    "journals": Route(
        "POST", "/v1/ledger/journals", "operator",
        lambda w: {"transfers": [{"id": "hostile-1", "kind": "fee", "debit_account": f"{w.buyer_id}:available:CNY",
                                  "credit_account": "exchange:fees:CNY", "amount": 1, "currency": "CNY"}]},
    ),
    "rules": Route("PUT", "/v1/rules", "operator", lambda w: {"files": {"listing.toml": w.rules["listing.toml"] + "\n# hostile\n"}, "reason": "hostile"}),
}


@pytest.fixture
async def world(api: Api) -> AsyncIterator[World]:
    _, vendor = await api.participant("vendor", qualifications=["data-merchant"], name="Vendor")
    buyer_id, buyer = await api.participant("buyer", name="Buyer")
    deposit = {"participant_id": buyer_id, "amount": 10_000_000, "currency": "CNY", "rail": "bank", "reference": "seed"}
    assert (await api.request("POST", "/v1/accounts/deposits", api.operator_key, json=deposit)).status_code == 201
    listing = await api.listed(vendor)
    rules = (await api.request("GET", "/v1/rules")).json()["files"]
    created = World(api, vendor, buyer_id, buyer, listing, rules)
    before = await snapshot(created)
    yield created
    assert await snapshot(created) == before, "a refused request wrote something"


async def snapshot(world: World) -> dict[str, Any]:
    """Everything the routes under test could write, read back through the API."""
    api, key = world.api, world.api.operator_key

    async def read(path: str, **params: Any) -> Any:
        response = await api.request("GET", path, key, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    rules = await read("/v1/rules")
    return {
        "participants": sorted((p["id"], p["name"], p["status"]) for p in (await read("/v1/participants", limit=100))["items"]),
        "listings": sorted((item["id"], item["revision"], item["status"], item["title"]) for item in (await read("/v1/listings", limit=100))["items"]),
        "orders": sorted(order["id"] for order in (await read("/v1/orders", limit=100))["items"]),
        "ledger": (await read("/v1/ledger/entries"))["size"],
        "accounts": await read("/v1/accounts"),
        "rules": (rules["version"], rules["hash"]),
    }


async def send(world: World, route: Route, body: Any = None, *, raw: bytes | None = None, content_type: str = "application/json") -> Any:
    content = raw if raw is not None else json.dumps(body if body is not None else route.body(world), ensure_ascii=False).encode()
    headers = world.api.auth(world.key(route.who), **({"content-type": content_type} if content_type else {}))
    return await world.api.client.request(route.method, route.path, content=content, headers=headers)


def refused(response: Any, status: int, *, code: str | None = None, field: str | None = None, mentions: str | None = None) -> dict[str, Any]:
    """A problem with `status`; `field` must be named in `errors`, `mentions` in the detail."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    problem = response.json()
    assert problem["status"] == status and problem["type"] == f"urn:exchange:problem:{problem['code']}"
    assert problem["title"] and problem["detail"] and problem["instance"]
    if code is not None:
        assert problem["code"] == code, problem
    if field is not None:
        assert field in [error["field"] for error in problem.get("errors", [])], problem
    if mentions is not None:
        assert mentions in problem["detail"], problem
    return problem  # type: ignore[no-any-return]


# ── size and shape ──


async def test_a_body_over_the_size_limit_is_413_on_every_route(world: World) -> None:
    limit = world.api.settings.body_bytes_max
    for route in ROUTES.values():
        body = route.body(world)
        body["padding"] = "x" * limit
        refused(await send(world, route, body), 413, code="request_too_large")
        # The same without a Content-Length: the body arrives in chunks and is cut off all the same.
        status, content_type = await streamed(world, route, json.dumps(body).encode())
        assert (status, content_type) == (413, PROBLEM)


async def streamed(world: World, route: Route, content: bytes) -> tuple[int, str]:
    """Send `content` straight to the app in 64 KiB messages, without a Content-Length."""
    messages = [{"type": "http.request", "body": content[at : at + 65_536], "more_body": at + 65_536 < len(content)} for at in range(0, len(content), 65_536)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Bearer {world.key(route.who)}".encode()), (b"content-type", b"application/json"), (b"host", b"testserver")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": route.method, "scheme": "http",
        "path": route.path, "raw_path": route.path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
    }
    await world.api.client.app(scope, receive, send)  # type: ignore[arg-type]
    start = next(message for message in sent if message["type"] == "http.response.start")
    return start["status"], dict(start["headers"]).get(b"content-type", b"").decode()


async def test_json_nested_10000_deep_is_a_400(world: World) -> None:
    for route in ROUTES.values():
        for raw in (b"[" * NESTING + b"]" * NESTING, b'{"a":' * NESTING + b"1" + b"}" * NESTING):
            refused(await send(world, route, raw=raw), 400, code="invalid_request", mentions="nested too deeply")
    # Deep inside a field that takes any JSON (a listing's schema), too.
    listing = json.dumps(listing_body(schema={"PLACEHOLDER": 1})).encode()
    deep = listing.replace(b'{"PLACEHOLDER": 1}', b'{"a":' * NESTING + b"1" + b"}" * NESTING)
    refused(await send(world, ROUTES["listings"], raw=deep), 400, code="invalid_request", mentions="nested too deeply")


async def test_duplicate_members_are_refused_naming_the_member(world: World) -> None:
    participant = b'{"name": "first", "roles": ["buyer"], "name": "second"}'
    refused(await send(world, ROUTES["participants"], raw=participant), 400, field="name")
    deposit = json.dumps(ROUTES["deposits"].body(world)).encode()[:-1] + b', "amount": 999999}'
    refused(await send(world, ROUTES["deposits"], raw=deposit), 400, field="amount")
    nested = json.dumps(listing_body()).encode().replace(b'"duration_days": 365', b'"duration_days": 365, "duration_days": 1')
    refused(await send(world, ROUTES["listings"], raw=nested), 400, field="duration_days")
    files = json.dumps(ROUTES["rules"].body(world)).encode().replace(b'"files": {', b'"files": {"listing.toml": "", ', 1)
    refused(await send(world, ROUTES["rules"], raw=files), 400, field="listing.toml")


# ── numbers ──

AMOUNT_CASES: list[tuple[str, Any, str]] = [
    # (route, body with one bad number, the field it must name)
    ("deposits", {"amount": 10**30}, "amount"),
    ("deposits", {"amount": -1}, "amount"),
    ("deposits", {"amount": 0}, "amount"),
    ("deposits", {"amount": 100.5}, "amount"),
    ("deposits", {"amount": 100.0}, "amount"),
    ("deposits", {"amount": "100"}, "amount"),
    ("deposits", {"amount": "NaN"}, "amount"),
    ("deposits", {"amount": "Infinity"}, "amount"),
    ("deposits", {"amount": "-Infinity"}, "amount"),
    ("deposits", {"amount": "1e309"}, "amount"),
    ("deposits", {"amount": True}, "amount"),
    ("deposits", {"amount": [100]}, "amount"),
    ("journals", {"transfers": [{"id": "t", "kind": "fee", "amount": 10**30}]}, "transfers[0].amount"),
    ("journals", {"transfers": [{"id": "t", "kind": "fee", "amount": 0}]}, "transfers[0].amount"),
    ("journals", {"transfers": [{"id": "t", "kind": "fee", "amount": -1}]}, "transfers[0].amount"),
    ("journals", {"transfers": [{"id": "t", "kind": "fee", "amount": 0.5}]}, "transfers[0].amount"),
    ("orders", {"quantity": 0}, "quantity"),
    ("orders", {"quantity": -1}, "quantity"),
    ("orders", {"quantity": 10**30}, "quantity"),
    ("orders", {"quantity": 1.5}, "quantity"),
    ("orders", {"price": 0}, "price"),
    ("orders", {"price": -1}, "price"),
    ("orders", {"price": 10**30}, "price"),
    ("orders", {"price": "NaN"}, "price"),
    ("orders", {"price": 99.99}, "price"),
    ("listings", {"plans": [{"kind": "fixed", "price": {"amount": 10**30, "currency": "CNY"}}]}, "plans[0].price.amount"),
    ("listings", {"plans": [{"kind": "fixed", "price": {"amount": -1, "currency": "CNY"}}]}, "plans[0].price.amount"),
    ("listings", {"plans": [{"kind": "fixed", "price": {"amount": 12.5, "currency": "CNY"}}]}, "plans[0].price.amount"),
    ("listings", {"plans": [{"kind": "fixed", "price": {"amount": "Infinity", "currency": "CNY"}}]}, "plans[0].price.amount"),
    ("listings", {"plans": [{"kind": "quota", "unit": "1 GB", "reference_price": {"amount": -5, "currency": "CNY"}}]}, "plans[0].reference_price.amount"),
    ("listings", {"licence": {"purposes": ["research"], "duration_days": 0}}, "licence.duration_days"),
    ("listings", {"licence": {"purposes": ["research"], "duration_days": 10**30}}, "licence.duration_days"),
    ("listings", {"licence": {"purposes": ["research"], "duration_days": 365, "max_licences": 0}}, "licence.max_licences"),
]


@pytest.mark.parametrize("batch", ["deposits", "journals", "orders", "listings"])
async def test_out_of_range_and_non_integer_numbers_are_400_naming_the_field(world: World, batch: str) -> None:
    for name, change, field in (case for case in AMOUNT_CASES if case[0] == batch):
        route = ROUTES[name]
        body = {**route.body(world), **change}
        if name == "journals":
            body["transfers"] = [{**route.body(world)["transfers"][0], **change["transfers"][0]}]
        refused(await send(world, route, body), 400, code="invalid_request", field=field)


async def test_number_literals_that_are_not_json_integers_are_400(world: World) -> None:
    route = ROUTES["deposits"]
    valid = json.dumps(route.body(world)).encode()
    # Not JSON at all, and JSON numbers that are not integers as written: fen are never floats.
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e309", b"-1e309", b"0x10", b"1_000", b"+1", b"01", b"1.", b".5", b"10" * 400,
                    b"1e2", b"1E2", b"100.0", b"100.00000000000001", b"1.0e2"):
        raw = valid.replace(b'"amount": 100', b'"amount": ' + literal)
        assert raw != valid
        response = await send(world, route, raw=raw)
        refused(response, 400, code="invalid_request")


# ── media types and encodings ──


async def test_a_json_route_refuses_other_media_types_with_415(world: World) -> None:
    for route in ROUTES.values():
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json"):
            refused(await send(world, route, content_type=content_type), 415, code="unsupported_media_type", mentions=content_type.split(";")[0])
    form = await world.api.client.post("/v1/participants", data={"name": "form", "roles": "buyer"}, headers=world.api.auth(world.api.operator_key))
    refused(form, 415, code="unsupported_media_type")


async def test_json_media_types_with_parameters_are_json(world: World) -> None:
    # Not writing: the bodies are refused by validation after the media type is accepted.
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/problem+json"):
        refused(await send(world, ROUTES["participants"], {"name": ""}, content_type=content_type), 400, field="name")


async def test_invalid_utf8_in_a_json_body_is_a_400(world: World) -> None:
    for route in ROUTES.values():
        valid = json.dumps(route.body(world)).encode()
        for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"caf\xe9"):
            raw = valid.replace(b"{", b'{"x": "' + bad + b'", ', 1)
            refused(await send(world, route, raw=raw), 400, code="invalid_request")
        refused(await send(world, route, raw=b"\xff" + valid), 400, code="invalid_request")
    # An escaped lone surrogate is not text either.
    refused(await send(world, ROUTES["participants"], raw=b'{"name": "\\ud800", "roles": ["buyer"]}'), 400, code="invalid_request")


async def test_invalid_utf8_in_the_path_or_query_is_a_4xx(world: World) -> None:
    api, key = world.api, world.api.operator_key
    for path in ("/v1/listings/%FF%FE", "/v1/participants/%C0%AF", "/v1/orders/%ED%A0%80", "/v1/contracts/%FF"):
        refused(await api.client.get(path, headers=api.auth(key)), 404, code="not_found")
    for query in ("q=%FF", "vendor=%C0%AF", "cursor=%ED%A0%80", "category=caf%E9"):
        refused(await api.client.get(f"/v1/listings?{query}", headers=api.auth(key)), 400, code="invalid_request", field=query.split("=")[0])


async def test_nul_characters_are_refused_naming_the_field_on_both_databases(world: World) -> None:
    api, key = world.api, world.api.operator_key
    refused(await send(world, ROUTES["participants"], {"name": "a\x00b", "roles": ["buyer"]}), 400, field="name")
    refused(await send(world, ROUTES["listings"], listing_body(title="标题\x00")), 400, field="title")
    refused(await send(world, ROUTES["listings"], listing_body(licence={"purposes": ["re\x00search"], "duration_days": 30})), 400, field="licence.purposes[0]")
    refused(await send(world, ROUTES["listings"], listing_body(schema={"col\x00": "x"})), 400, field="schema")
    refused(await send(world, ROUTES["deposits"], {**ROUTES["deposits"].body(world), "reference": "\x00"}), 400, field="reference")
    for path, field in (("/v1/listings/lst%00", "listing_id"), ("/v1/participants/a%00", "participant_id"), ("/v1/contracts/%00", "contract_id")):
        refused(await api.client.get(path, headers=api.auth(key)), 400, field=field)
    for query, field in (("vendor=a%00", "vendor"), ("q=%00", "q"), ("cursor=%00", "cursor")):
        refused(await api.client.get(f"/v1/listings?{query}", headers=api.auth(key)), 400, field=field)
    refused(await api.client.get("/v1/orders?listing_id=%00", headers=api.auth(key)), 400, field="listing_id")
    refused(await api.client.get("/v1/accounts?owner_id=x%00", headers=api.auth(key)), 400, field="owner_id")


# ── fields ──


async def test_unknown_fields_are_refused_naming_them(world: World) -> None:
    for route in ROUTES.values():
        refused(await send(world, route, {**route.body(world), "is_admin": True}), 400, mentions="is_admin")
    nested = listing_body(licence={"purposes": ["research"], "duration_days": 30, "royalty": 5})
    refused(await send(world, ROUTES["listings"], nested), 400, field="licence", mentions="royalty")
    plan = listing_body(plans=[{"kind": "fixed", "price": {"amount": 1, "currency": "CNY", "fx": 1.0}}])
    refused(await send(world, ROUTES["listings"], plan), 400, field="plans[0].price", mentions="fx")
    transfer = ROUTES["journals"].body(world)
    transfer["transfers"][0]["sudo"] = True
    refused(await send(world, ROUTES["journals"], transfer), 400, field="transfers[0]", mentions="sudo")


NULL_CASES = [
    ("participants", "name"),
    ("participants", "roles"),
    ("listings", "title"),
    ("listings", "licence"),
    ("listings", "plans"),
    ("orders", "listing_id"),
    ("orders", "quantity"),
    ("deposits", "amount"),
    ("deposits", "participant_id"),
    ("journals", "transfers"),
    ("rules", "files"),
    ("rules", "reason"),
]


async def test_null_where_a_value_is_required_is_a_400_naming_the_field(world: World) -> None:
    for name, field in NULL_CASES:
        route = ROUTES[name]
        refused(await send(world, route, {**route.body(world), field: None}), 400, code="invalid_request", field=field)
    refused(await send(world, ROUTES["participants"], raw=b"null"), 400, code="invalid_request")
    refused(await send(world, ROUTES["participants"], raw=b"[]"), 400, code="invalid_request")
    refused(await send(world, ROUTES["participants"], raw=b'"participant"'), 400, code="invalid_request")


async def test_very_long_strings_are_refused_naming_the_field(world: World) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("participants", {"name": "名" * 201}, "name"),
        ("participants", {"name": "x" * 100_000}, "name"),
        ("listings", listing_body(title="T" * 10_000), "title"),
        ("listings", listing_body(description="描" * 20_001), "description"),
        ("listings", listing_body(category="c" * 65), "category"),
        ("orders", {"use_case": "u" * 2001}, "use_case"),
        ("deposits", {"reference": "r" * 201}, "reference"),
        ("journals", {"id": "j" * 81}, "id"),
        ("rules", {"reason": "因" * 2001}, "reason"),
        ("rules", {"files": {"x" * 60 + ".toml": "a = 1"}}, "files"),
    ]
    for name, change, field in cases:
        route = ROUTES[name]
        refused(await send(world, route, {**route.body(world), **change}), 400, code="invalid_request", field=field)


async def test_chinese_and_emoji_are_accepted_where_valid_and_come_back_unchanged(api: Api) -> None:
    _, vendor = await api.participant("vendor", qualifications=["data-merchant"])
    for name in ("数据交易所 测试员", "🚀" * 200, "Zoë e\u0301 ﬁ 𠮷野家", "👩‍👩‍👧 家庭"):
        created = await api.request("POST", "/v1/participants", api.operator_key, json={"name": name, "roles": ["buyer"]})
        assert created.status_code == 201, created.text
        read = await api.request("GET", f"/v1/participants/{created.json()['id']}", api.operator_key)
        assert read.json()["name"] == name
    # 200 characters is the limit however many bytes they take: the 201st is refused.
    refused(await api.request("POST", "/v1/participants", api.operator_key, json={"name": "🚀" * 201, "roles": ["buyer"]}), 400, field="name")
    title = "上海地铁客流 🚇 OD 矩阵"
    description = "每小时汇总 📊，含换乘站。" * 500
    created = await api.request("POST", "/v1/listings", vendor, json=listing_body(title=title, description=description, schema={"站点": "文本 🏷️"}))
    assert created.status_code == 201, created.text
    read = (await api.request("GET", f"/v1/listings/{created.json()['id']}", vendor)).json()
    assert (read["title"], read["description"], read["schema"]) == (title, description, {"站点": "文本 🏷️"})
    found = (await api.request("GET", "/v1/listings", vendor, params={"q": "地铁"})).json()
    assert found["items"] is not None  # searching in Chinese answers, whatever it finds


# ── query parameters ──


async def test_listing_search_parameters_out_of_range_are_400_naming_the_parameter(world: World) -> None:
    api, key = world.api, world.api.operator_key
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": 10**9}, "limit"),
        ({"limit": 10**30}, "limit"),
        ({"limit": "NaN"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": ""}, "limit"),
        ({"q": "x" * 10_000}, "q"),
        ({"q": "数" * 3_000}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"price_min": -1}, "price_min"),
        ({"price_max": 10**30}, "price_max"),
        ({"cursor": "c" * 501}, "cursor"),
        ({"sort": "chaos"}, "sort"),
        ({"status": "everything"}, "status"),
        ({"delivery": "pigeon"}, "delivery"),
        ({"plan_kind": "fixed|free"}, "plan_kind"),
        ({"review": "true"}, "review"),
    ]
    for params, field in cases:
        refused(await api.request("GET", "/v1/listings", key, params=params), 400, code="invalid_request", field=field)
    for cursor in ("garbage", "eyJ0b3RhbGx5IjogImZha2UifQ==", "9" * 500, "🚀", "' OR 1=1 --"):
        refused(await api.request("GET", "/v1/listings", key, params={"cursor": cursor}), 422, code="invalid_input", field="cursor")


async def test_listing_search_tolerates_hostile_but_valid_queries(world: World) -> None:
    api, key = world.api, world.api.operator_key
    for q in ('"' * 200, "AND OR NOT ( ) * ^ : -", "'; DROP TABLE listings; --", "%_\\", "地铁 OR 🚇", "\t\n\r", " " * 200):
        response = await api.request("GET", "/v1/listings", key, params={"q": q, "limit": 100})
        assert response.status_code == 200, (q, response.text)
    assert (await api.request("GET", "/v1/listings", key, params={"limit": 100})).json()["items"]


async def test_a_cursor_that_is_not_an_id_of_the_listed_kind_is_a_400(world: World) -> None:
    api, key = world.api, world.api.operator_key
    for path, kind in (("/v1/orders", "ord"), ("/v1/contracts", "ctr"), ("/v1/participants", "par")):
        for garbage in ("zzz", f"{kind}_", "ord_01m89k5n96ykr487hvy3mjn1mp" if kind != "ord" else "ctr_01m89k5n96ykr487hvy3mjn1mp", "' OR 1=1 --"):
            refused(await api.client.get(path, params={"cursor": garbage}, headers=api.auth(key)), 400, code="invalid_request", field="cursor")
        listed = await api.client.get(path, params={"cursor": f"{kind}_01m89k5n96ykr487hvy3mjn1mp"}, headers=api.auth(key))
        assert listed.status_code == 200, listed.text
