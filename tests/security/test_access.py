"""Access: every route × every kind of caller, with the status each must get.

ROUTES has one row per (method, path template) the app serves; each row holds one or more cases
(a case is the object the path points at, e.g. a listed or a hidden listing) giving, for each of
the nine kinds of caller in `world.CALLERS`, the status it must get. Every cell is checked by a
real request with a realistic body against one scenario (tests/security/world.py). The
completeness test fails when the app has a route without a row (or a row without a route), so
a new route cannot ship without saying who may call it.

How to read a case: `case(403, buyer=200)` means every caller with a valid key gets 403 except the
buyer; callers without a key get 401 (`anonymous=` changes that), a wrong key 401 and a
suspended participant 403, always. The exchange answers 404 for what a caller may not see
(another buyer's contract or order, a vendor's hidden listing), and 401 for a wrong key even on
public routes.

Pages (`page(...)`) are the browser's: they use a session cookie, never the API key. Their rows
give the status of a caller without a session; every caller's Authorization header is sent too
and must change nothing (keys do not apply there). Signed-in sessions are checked in
test_pages_with_a_session.

The scenario is built once per module and database (a new scenario per route would take minutes
on two databases); rows whose permitted call uses its object up (`fresh=True`) get a new object
for each permitted caller, so no row depends on another."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from exchange import auth
from exchange.app import create_app
from exchange.context import Exchange
from exchange.participants import keys as key_module
from exchange.settings import Settings
from tests.conftest import MovableClock, empty_database
from tests.harness import Api, listing_body
from tests.security.world import CALLERS, KEYED, LICENCE, Make, Req, World, as_text, req

WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Case:
    label: str
    expect: dict[str, int]
    make: Make | None = None
    fresh: bool = False
    """The permitted call uses the object up: each permitted caller gets a new one."""
    location: str | None = None
    """Where a redirect must point."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    cases: tuple[Case, ...]
    page: bool = False
    """A browser page: API keys do not apply, every caller gets the answer of one without a session."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def case(keyed: int = 403, *, anonymous: int = 401, make: Make | None = None, fresh: bool = False, label: str = "", **callers: int) -> Case:
    unknown = set(callers) - set(KEYED)
    assert not unknown, unknown
    expect = {"anonymous": anonymous, "wrong_key": 401, "suspended": 403} | {caller: callers.get(caller, keyed) for caller in KEYED}
    return Case(label, expect, make, fresh)


def route(method: str, path: str, *cases: Case) -> Route:
    return Route(method, path, cases)


def page(method: str, path: str, status: int, make: Make | None = None, *, location: str | None = None, label: str = "") -> Route:
    return Route(method, path, (Case(label, dict.fromkeys(CALLERS, status), make, location=location),), page=True)


def public(make: Make | None = None, label: str = "") -> Case:
    return case(200, anonymous=200, make=make, label=label)


def any_key(make: Make | None = None) -> Case:
    return case(200, make=make)


def parties(make: Make) -> Case:
    """A contract's (or negotiation's) parties read it, and so do operators and regulators; to
    anyone else it does not exist."""
    return case(404, buyer=200, vendor=200, operator=200, regulator=200, make=make)


def listed(make: Make | None = None) -> Case:
    return public(make or req(listing_id="listing_id"), label="listed")


def hidden(anonymous: int = 404) -> Case:
    """A suspended listing: its vendor, operators and regulators see it; to anyone else it does not exist."""
    return case(404, anonymous=anonymous, vendor=200, operator=200, regulator=200, make=req(listing_id="hidden_id"), label="hidden")


CONTRACT = req(contract_id="contract_id")
TEXT = "访问测试 access test"
FORM = {"csrf": "not-a-session-token"}
NO_SESSION = "/signin"

ROUTES: tuple[Route, ...] = (
    # ── participants ──
    route("POST", "/v1/participants", case(operator=201, make=req(json={"name": "Registered in the access test", "roles": ["buyer"]}))),
    route("GET", "/v1/participants/me", any_key()),
    route("GET", "/v1/participants", case(operator=200, regulator=200)),
    route("GET", "/v1/participants/{participant_id}", case(buyer=200, operator=200, regulator=200, make=req(participant_id="buyer_id"))),
    route("POST", "/v1/participants/{participant_id}/suspend", case(operator=200, make=World.new_participant, fresh=True)),
    route("POST", "/v1/participants/{participant_id}/reactivate", case(operator=200, make=World.suspended_participant, fresh=True)),
    # ── rules ──
    route("GET", "/v1/rules", public()),
    route("GET", "/v1/rules/history", public()),
    route("POST", "/v1/rules/dry-run", case(operator=200, regulator=200, make=World.dry_run_body)),
    route("PUT", "/v1/rules", case(operator=200, make=World.apply_body)),
    route("PUT", "/v1/rules/shadow", case(operator=200, make=World.apply_body)),
    route("GET", "/v1/rules/shadow/report", case(operator=200, regulator=200)),
    route("POST", "/v1/rules/shadow/promote", case(operator=200, make=World.shadowing, fresh=True)),
    route("POST", "/v1/rules/shadow/drop", case(operator=200, make=World.shadowing, fresh=True)),
    # ── the catalogue ──
    route("POST", "/v1/listings", case(vendor=201, other_vendor=201, make=req(json=lambda w: listing_body(licence=LICENCE)))),
    route("GET", "/v1/listings", public()),
    route("GET", "/v1/listings/{listing_id}", listed(), hidden()),
    route("GET", "/v1/listings/{listing_id}/history", listed(), hidden()),
    route("GET", "/v1/listings/{listing_id}/certificate", listed(), hidden()),
    route("PATCH", "/v1/listings/{listing_id}",
          case(vendor=200, other_vendor=404, make=req(listing_id="draft_id", json={"title": "上海交通出行数据（修订）Shanghai mobility OD matrix, revised"}), label="draft"),
          case(vendor=200, make=req(listing_id="patchable_id", json={"title": "上海交通出行数据（新版）Shanghai mobility OD matrix, new edition"}), label="listed")),
    route("POST", "/v1/listings/{listing_id}/submit", case(vendor=200, other_vendor=404, make=lambda w: w.listing("draft"), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/approve", case(operator=200, make=lambda w: w.listing("submitted"), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/reject", case(operator=200, make=lambda w: w.listing("submitted", {"reason": "the source is not attested"}), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/suspend", case(operator=200, make=lambda w: w.listing("listed", {"reason": "under investigation"}), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/resume", case(operator=200, other_vendor=404, make=lambda w: w.listing("suspended", {"reason": "cleared"}), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/delist", case(operator=200, vendor=200, make=lambda w: w.listing("listed", {"reason": "end of sale"}), fresh=True)),
    route("GET", "/v1/listings/{listing_id}/explain",
          case(403, vendor=200, operator=200, regulator=200, make=req(listing_id="listing_id"), label="listed"), hidden(anonymous=401)),
    route("GET", "/v1/listings/{listing_id}/book", public(req(listing_id="quota_listing_id"))),
    route("GET", "/v1/listings/{listing_id}/trades", public(req(listing_id="quota_listing_id"))),
    route("POST", "/v1/listings/{listing_id}/book/halt", case(operator=200, make=lambda w: w.listing("listed", {"reason": "unusual trading"}), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/book/resume", case(operator=200, make=lambda w: w.listing("halted"), fresh=True)),
    route("POST", "/v1/listings/{listing_id}/notices", case(vendor=201, make=req(listing_id="listing_id", json={"kind": "delay", "message": "今日数据延迟一小时 today's data is an hour late"}))),
    route("GET", "/v1/listings/{listing_id}/notices", case(403, vendor=200, buyer=200, operator=200, regulator=200, make=req(listing_id="listing_id"))),
    # ── money and the ledger ──
    route("POST", "/v1/accounts/deposits", case(operator=201, make=req(json=lambda w: {
        "participant_id": w.other_buyer_id, "amount": 5_000, "currency": "CNY", "rail": "bank", "reference": f"ICBC-ACCESS-{w.n()}"}))),
    route("POST", "/v1/accounts/withdrawals", case(vendor=201, other_vendor=201, buyer=201, other_buyer=201, make=req(json={
        "amount": 100, "currency": "CNY", "rail": "ecny", "destination": "e-CNY wallet 0061 0000 0001"}))),
    route("POST", "/v1/accounts/withdrawals/{withdrawal_id}/confirm", case(operator=200, make=World.withdrawal, fresh=True)),
    route("POST", "/v1/accounts/withdrawals/{withdrawal_id}/cancel", case(buyer=200, operator=200, make=World.withdrawal, fresh=True)),
    route("GET", "/v1/accounts/withdrawals", any_key()),
    route("GET", "/v1/accounts/me", any_key()),
    route("GET", "/v1/accounts/me/transfers", any_key()),
    route("GET", "/v1/accounts", case(operator=200, regulator=200)),
    route("POST", "/v1/ledger/journals", case(operator=201, make=req(json=lambda w: {"transfers": [{
        "id": f"access-hold-{w.n()}", "kind": "hold", "phase": "pending", "debit_account": f"{w.other_vendor_id}:available:CNY",
        "credit_account": f"{w.vendor_id}:available:CNY", "amount": 1, "currency": "CNY"}]}))),
    route("GET", "/v1/ledger/head", public()),
    route("GET", "/v1/ledger/entries", any_key(req(params={"start": 0}))),
    route("GET", "/v1/ledger/proofs/inclusion", public(req(params={"index": 0, "size": 1}))),
    route("GET", "/v1/ledger/proofs/consistency", public(req(params={"first": 1, "second": 2}))),
    route("GET", "/v1/ledger/keys", public()),
    # ── orders, books, auctions ──
    route("POST", "/v1/orders",
          case(buyer=201, other_buyer=201, make=req(json=lambda w: {"listing_id": w.listing_id, "plan_id": w.plan["fixed"], "purpose": "research"}), label="buy"),
          case(vendor=201, make=req(json=lambda w: {"listing_id": w.quota_listing_id, "plan_id": w.plan["quota"], "side": "sell", "quantity": 1, "price": 10_500}),
               label="quota sell")),
    route("GET", "/v1/orders", any_key()),
    route("GET", "/v1/orders/{order_id}", case(404, buyer=200, operator=200, regulator=200, make=req(order_id="order_id"))),
    route("DELETE", "/v1/orders/{order_id}", case(404, buyer=200, operator=200, regulator=403, make=World.open_order, fresh=True)),
    route("GET", "/v1/orders/{order_id}/explain", case(404, buyer=200, operator=200, regulator=200, make=req(order_id="order_id"))),
    route("POST", "/v1/orders/{order_id}/approve", case(404, vendor=200, buyer=403, operator=403, regulator=403, make=World.gated_order, fresh=True)),
    route("POST", "/v1/orders/{order_id}/decline", case(404, vendor=200, buyer=403, operator=403, regulator=403, make=World.gated_order, fresh=True)),
    route("GET", "/v1/approvals", case(vendor=200, other_vendor=200)),
    route("GET", "/v1/surveillance/concentration", case(operator=200, regulator=200)),
    route("POST", "/v1/auctions", case(vendor=201, make=req(json=lambda w: {
        "listing_id": w.listing_id, "plan_id": w.plan["auction_new"], "closes_at": (w.clock() + timedelta(hours=2)).isoformat()}))),
    route("GET", "/v1/auctions/{auction_id}", public(req(auction_id="auction_id"))),
    route("POST", "/v1/auctions/{auction_id}/close", case(vendor=200, operator=200, make=World.due_auction, fresh=True)),
    # ── contracts ──
    route("GET", "/v1/contracts", any_key()),
    route("GET", "/v1/contracts/{contract_id}", parties(CONTRACT)),
    route("POST", "/v1/contracts/{contract_id}/confirm", case(404, buyer=200, vendor=403, operator=403, regulator=403, make=World.contract, fresh=True)),
    route("POST", "/v1/contracts/{contract_id}/dispute", case(404, buyer=200, vendor=200, operator=403, regulator=403, make=World.contract, fresh=True)),
    route("POST", "/v1/contracts/{contract_id}/resolve", case(404, operator=200, buyer=403, vendor=403, regulator=403, make=World.disputed_contract, fresh=True)),
    route("POST", "/v1/contracts/{contract_id}/token", case(404, buyer=200, vendor=403, operator=403, regulator=403, make=CONTRACT)),
    route("GET", "/v1/contracts/{contract_id}/entitlement", case(404, buyer=200, vendor=403, operator=403, regulator=403, make=CONTRACT)),
    route("POST", "/v1/contracts/{contract_id}/terminate", case(404, buyer=200, vendor=200, operator=200, regulator=403, make=World.contract, fresh=True)),
    route("POST", "/v1/contracts/{contract_id}/cancel-renewal", case(404, buyer=200, vendor=403, operator=403, regulator=403, make=World.subscription, fresh=True)),
    route("GET", "/v1/contracts/{contract_id}/explain", parties(CONTRACT)),
    route("POST", "/v1/contracts/{contract_id}/usage", case(404, vendor=200, buyer=403, operator=403, regulator=403, make=World.usage)),
    route("POST", "/v1/contracts/{contract_id}/revenue", case(404, buyer=201, vendor=403, operator=403, regulator=403, make=req(
        contract_id="revenue_id", json={"period": "2026-11", "revenue": 500_000}))),
    route("GET", "/v1/contracts/{contract_id}/bills", parties(req(contract_id="revenue_id"))),
    route("POST", "/v1/contracts/{contract_id}/amendments", case(404, buyer=201, vendor=201, operator=403, regulator=403, make=req(
        contract_id="contract_id", json={"changes": {"purposes": ["research"]}, "reason": "narrower use"}))),
    route("GET", "/v1/contracts/{contract_id}/amendments", parties(CONTRACT)),
    route("POST", "/v1/contracts/{contract_id}/amendments/{amendment_id}/accept",
          case(404, vendor=200, buyer=403, operator=403, regulator=403, make=World.amendment, fresh=True)),
    route("POST", "/v1/contracts/{contract_id}/amendments/{amendment_id}/decline",
          case(404, vendor=200, buyer=403, operator=403, regulator=403, make=World.amendment_of_the_contract, fresh=True)),
    route("POST", "/v1/bills/{bill_id}/dispute", case(404, buyer=200, vendor=200, operator=403, regulator=403, make=World.bill, fresh=True)),
    route("POST", "/v1/bills/{bill_id}/resolve", case(404, operator=200, buyer=403, vendor=403, regulator=403, make=World.disputed_bill, fresh=True)),
    route("GET", "/v1/notices", any_key()),
    # ── negotiations ──
    route("POST", "/v1/negotiations", case(buyer=201, other_buyer=201, make=req(json=lambda w: {
        "listing_id": w.listing_id, "plan_id": w.plan["negotiated"], "purpose": "research", "terms": {"amount": 40_000}}))),
    route("GET", "/v1/negotiations", any_key()),
    route("GET", "/v1/negotiations/{negotiation_id}", parties(req(negotiation_id="negotiation_id"))),
    route("POST", "/v1/negotiations/{negotiation_id}/offers", case(404, buyer=201, vendor=201, operator=403, regulator=403, make=req(
        negotiation_id="negotiation_id", json={"terms": {"amount": 55_000, "duration_days": 180}}))),
    route("POST", "/v1/negotiations/{negotiation_id}/accept", case(404, buyer=200, vendor=403, operator=403, regulator=403, make=World.offered_negotiation, fresh=True)),
    route("POST", "/v1/negotiations/{negotiation_id}/close", case(404, buyer=200, vendor=200, operator=403, regulator=403, make=World.negotiation, fresh=True)),
    # ── outside the API: probes and metrics take no key (put /metrics behind the proxy) ──
    page("GET", "/health", 200),
    page("GET", "/metrics", 200),
    # ── pages: a session cookie, never an API key; these are the answers without a session ──
    page("GET", "/", 200),
    Route("GET", "/listings/{listing_id}", (
        Case("listed", dict.fromkeys(CALLERS, 200), req(listing_id="listing_id")),
        Case("hidden", dict.fromkeys(CALLERS, 404), req(listing_id="hidden_id")),
    ), page=True),
    page("GET", "/listings/{listing_id}/market", 200, req(listing_id="quota_listing_id")),
    page("POST", "/listings/{listing_id}/buy", 401, req(listing_id="listing_id", form=lambda w: {**FORM, "plan_id": w.plan["fixed"]})),
    page("GET", "/signin", 200),
    page("POST", "/signin", 403, req(form=lambda w: {"csrf": "no-cookie-to-match", "api_key": w.keys["wrong_key"]})),
    page("POST", "/signout", 401, req(form=FORM)),
    page("GET", "/lang/{lang}", 302, req(lang=lambda w: "en"), location="/"),
    page("GET", "/account", 302, location=NO_SESSION),
    page("POST", "/contracts/{contract_id}/token", 401, req(contract_id="contract_id", form=FORM)),
    page("GET", "/ledger", 200),
    page("GET", "/ledger/entries/{index}", 401, req(index=lambda w: "0")),
    page("GET", "/vendor", 302, location=NO_SESSION),
    page("GET", "/vendor/listings/{listing_id}", 302, req(listing_id="listing_id"), location=NO_SESSION),
    page("GET", "/vendor/new", 302, location=NO_SESSION),
    page("POST", "/vendor/new", 401, req(form={**FORM, "title": "x", "price_yuan": "100"})),
    page("POST", "/vendor/listings/{listing_id}/submit", 401, req(listing_id="draft_id", form=FORM)),
    page("GET", "/console", 302, location=NO_SESSION),
    page("POST", "/console/listings/{listing_id}/decide", 401, req(listing_id="listing_id", form={**FORM, "decision": "reject", "reason": TEXT})),
    page("GET", "/console/rules", 302, location=NO_SESSION),
    page("POST", "/console/rules", 401, req(form={**FORM, "action": "dry-run"})),
    page("POST", "/console/rules/upload", 401, req(form=FORM, files={"files": ("trading.toml", b"[orders]\nquantity_max = 5\n", "application/toml")})),
    page("POST", "/console/books/{listing_id}", 401, req(listing_id="listing_id", form={**FORM, "action": "halt", "reason": TEXT})),
)


def template(path: str) -> str:
    """Litestar's path with its parameter types dropped: /v1/orders/{order_id:str} -> /v1/orders/{order_id}."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def served_routes() -> set[tuple[str, str]]:
    settings = Settings(database_url="sqlite+aiosqlite:///never-opened.db", operator_key_file="unused", signing_key_file="unused")
    app = create_app(settings)
    served = set()
    for served_route in app.routes:
        path = template(served_route.path)
        if path == "/schema" or path.startswith(("/schema/", "/static/")):
            continue
        for method in getattr(served_route, "methods", {"WEBSOCKET"}):
            if method not in ("HEAD", "OPTIONS"):
                served.add((method, path))
    return served


# ── the scenario ──


@pytest.fixture(scope="module")
async def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    await empty_database(database_url)
    folder = tmp_path_factory.mktemp("access")
    clock = MovableClock()
    # The background signer and sweeper would close due auctions behind the test's back; an
    # hour's interval keeps them asleep. Heads are still signed with appends.
    settings = Settings(database_url=database_url, operator_key_file=str(folder / "operator.key"),
                        signing_key_file=str(folder / "signing.key"), ledger_head_interval_ms=3_600_000)
    async with AsyncTestClient(app=create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        api = Api(client, settings)
        await api.start()
        built = World(api, clock)
        await built.build()
        yield built


async def send(w: World, route: Route, made: Req, caller: str) -> httpx.Response:
    path = route.path.format(**made.ids)
    assert "{" not in path, path
    w.api.client.cookies.clear()
    return await w.call(route.method, path, w.key(caller), json=made.json, params=made.params, form=made.form, files=made.files)


async def check(w: World, route: Route, one: Case, callers: tuple[str, ...] = CALLERS) -> list[str]:
    made = await one.make(w) if one.make else Req()
    used = False
    failures = []
    for caller in callers:
        if used and one.fresh:
            made, used = (await one.make(w) if one.make else Req()), False
        response = await send(w, route, made, caller)
        want = one.expect[caller]
        where = f"{route.id}{f' ({one.label})' if one.label else ''} as {caller}"
        if response.status_code != want:
            failures.append(f"{where}: {response.status_code}, expected {want}: {response.text[:300]}")
        elif one.location is not None and response.headers.get("location") != one.location:
            failures.append(f"{where}: redirects to {response.headers.get('location')!r}, expected {one.location!r}")
        used = used or 200 <= response.status_code < 300
    return failures


# ── the table ──


def test_every_route_has_a_row() -> None:
    rows = [(r.method, r.path) for r in ROUTES]
    assert len(rows) == len(set(rows)), "a route has two rows"
    served = served_routes()
    missing = sorted(served - set(rows))
    stale = sorted(set(rows) - served)
    assert not missing, "routes without a row in tests/security/test_access.py ROUTES (say who may call them):\n" + "\n".join(f"{m} {p}" for m, p in missing)
    assert not stale, "rows for routes the app does not serve:\n" + "\n".join(f"{m} {p}" for m, p in stale)


def test_regulators_are_refused_every_write_in_the_table() -> None:
    """Regulators read; they write nothing. The one write-method route they may call is the rules
    dry run, which changes nothing (test_regulators_write_nothing checks the database)."""
    allowed = {("POST", "/v1/rules/dry-run")}
    wrong = [(r.id, c.label, c.expect["regulator"]) for r in ROUTES if r.method in WRITES and r.path.startswith("/v1") and (r.method, r.path) not in allowed
             for c in r.cases if c.expect["regulator"] not in (403, 404)]
    assert not wrong


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_route(world: World, route: Route) -> None:
    failures = []
    for one in route.cases:
        failures += await check(world, route, one)
    assert not failures, "\n".join(failures)


# ── regulators, keys, visibility ──


async def test_regulators_write_nothing(world: World) -> None:
    """The regulator's key on every write route: refused (403, or 404 where the object is hidden
    from it), and the database is the same afterwards, row for row."""
    writes = [(r, c) for r in ROUTES if r.method in WRITES and r.path.startswith("/v1") for c in r.cases]
    assert len(writes) >= 45
    made = [(r, c, await c.make(world) if c.make else Req()) for r, c in writes]
    before = await world.dump()
    answers = [(r, c, await send(world, r, m, "regulator")) for r, c, m in made]
    after = await world.dump()
    wrong = [(r.id, c.label, a.status_code, a.text[:200]) for r, c, a in answers
             if a.status_code != (200 if (r.method, r.path) == ("POST", "/v1/rules/dry-run") else c.expect["regulator"])]
    assert not wrong
    assert all(a.status_code in (403, 404) for r, _, a in answers if r.path != "/v1/rules/dry-run")
    changed = [table for table in before if before[table] != after.get(table)]  # rate_buckets is left out of dump()
    assert not changed, f"a regulator's requests changed {changed}"


async def test_keys_are_stored_only_as_their_sha256(world: World) -> None:
    # A key issued here too, so that the test stands alone (the table's rows issue more when run first).
    await world.ok("POST", "/v1/participants", world.op, status=201, json={"name": f"Key holder {world.n()}", "roles": ["buyer"]})
    dump = await world.dump()
    stored = set(await world.column("api_keys", "key_hash"))
    issued = sorted(set(world.issued))
    assert len(issued) >= 8
    assert all(hashlib.sha256(key.encode()).hexdigest() in stored for key in issued)
    text = "\n".join(as_text(value) for rows in dump.values() for row in rows for value in row)
    leaks = [key[:8] + "…" for key in issued if any(key[i:i + 16] in text for i in range(len(key) - 15))]
    assert not leaks, f"API key text (or 16 characters of it) is stored in the database: {leaks}"


async def test_keys_are_compared_in_constant_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is looked up by its hash and then compared with hmac.compare_digest: observed on a
    request, and read in the source as a last resort (the lookup must not compare key text)."""
    seen: list[tuple[str, str]] = []
    real = key_module.hmac.compare_digest

    class Spy:
        @staticmethod
        def compare_digest(a: Any, b: Any) -> bool:
            seen.append((a, b))
            return real(a, b)

    monkeypatch.setattr(key_module, "hmac", Spy)
    key = world.key("buyer")
    assert key is not None
    assert (await world.call("GET", "/v1/participants/me", key)).status_code == 200
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert seen == [(digest, digest)]
    assert "compare_digest" in inspect.getsource(key_module.key_matches)
    assert "key_matches(" in inspect.getsource(auth.caller_of)
    for looks_up in (auth.authenticate, auth.caller_of, Exchange.unit):
        source = inspect.getsource(looks_up)
        assert not re.search(r"\bkey\s*==|==\s*key\b", source), looks_up


async def test_ledger_entries_show_participants_only_their_own_records(world: World) -> None:
    """Operators and regulators read every entry; a participant reads the transfers of its own
    accounts, the public records (rule sets, registration certificates) and the transaction
    certificates of its own contracts, and nothing of anyone else's trades."""
    size = (await world.ok("GET", "/v1/ledger/entries", world.op))["size"]
    for caller in KEYED:
        entries = (await world.ok("GET", "/v1/ledger/entries", world.key(caller), params={"start": 0, "end": size}))["entries"]
        if caller in ("operator", "regulator"):
            assert len(entries) == size
            continue
        me = getattr(world, f"{caller}_id")
        for entry in entries:
            if entry["type"] == "transfer":
                assert me in (entry["debit"].split(":")[0], entry["credit"].split(":")[0]), (caller, entry)
            elif entry["type"] == "certificate" and entry["certificate"]["type"] == "transaction_certificate":
                certificate = entry["certificate"]
                assert me in (certificate["buyer_id"], certificate["vendor_id"]), (caller, certificate)
        kinds = {e["type"] for e in entries}
        assert "rules" in kinds and "certificate" in kinds  # public records stay public


async def test_hidden_listings_stay_out_of_search(world: World) -> None:
    for caller in ("anonymous", *KEYED):
        found = set()
        for params in ({"status": "suspended"}, {"status": "draft"}, {"review": "pending"}, {"vendor": world.vendor_id, "limit": 100}):
            found |= {item["id"] for item in (await world.ok("GET", "/v1/listings", world.key(caller), params=params))["items"]}
        insider = caller in ("vendor", "operator", "regulator")
        assert (world.hidden_id in found) == insider, caller
        assert (world.draft_id in found) == insider, caller


# ── pages with a session ──


async def sign_in(w: World, caller: str) -> str:
    """Sign in through the form; the client keeps the session cookie. Returns the session's CSRF token."""
    client = w.api.client
    client.cookies.clear()
    form = await client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    signed = await client.post("/signin", data={"csrf": token.group(1), "api_key": w.key(caller)}, follow_redirects=False)
    assert signed.status_code in (302, 303) and signed.headers["location"] == "/account", signed.text
    account = await client.get("/account")
    csrf = re.search(r'name="csrf" value="([^"]+)"', account.text)
    assert account.status_code == 200 and csrf is not None
    return csrf.group(1)


async def test_pages_with_a_session(world: World) -> None:
    """Signed in, the console is the operator's and /vendor the vendor's; a regulator's session,
    like its key, writes nothing; a suspended participant cannot sign in."""
    client = world.api.client
    halt_target = (await world.listing("listed")).ids["listing_id"]
    review_target = (await world.listing("submitted")).ids["listing_id"]
    try:
        for caller in ("buyer", "vendor", "regulator", "operator"):
            csrf = await sign_in(world, caller)
            pages = {"/console": "operator", "/console/rules": "operator", "/vendor": "vendor", "/vendor/new": "vendor"}
            for path, role in pages.items():
                got = (await client.get(path, follow_redirects=False)).status_code
                assert got == (200 if caller == role else 403), (caller, path, got)
            before = await world.dump() if caller == "regulator" else None
            posts = [
                ("/vendor/new", {"title": "上海交通出行数据 Web form listing", "description": "全市地铁出行起讫点矩阵 hourly OD matrix from the web form",
                                 "category": "transport", "grade": "L2", "delivery": "api", "schema": "origin, destination, trips",
                                 "source": "contract SH-TR-2026-001", "right_holding": "on", "right_use": "on", "purposes": "research",
                                 "duration_days": "365", "price_yuan": "100"}, "vendor", 302),
                ("/console/rules", {"action": "dry-run"}, "operator", 200),
                (f"/console/listings/{review_target}/decide", {"decision": "reject", "reason": "needs a better source"}, "operator", 302),
                (f"/console/books/{halt_target}", {"action": "halt", "reason": "unusual trading"}, "operator", 302),
            ]
            for path, form, role, ok in posts:
                got = (await client.post(path, data={"csrf": csrf, **form}, follow_redirects=False)).status_code
                assert got == (ok if caller == role else 403), (caller, path, got)
                stale = (await client.post(path, data={"csrf": "stale", **form}, follow_redirects=False)).status_code
                assert stale == 403, (caller, path, "without the session's CSRF token", stale)
            if before is not None:
                after = await world.dump()
                assert [t for t in before if before[t] != after.get(t)] == [], "a regulator's session changed the database"
        client.cookies.clear()
        form = await client.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        refused = await client.post("/signin", data={"csrf": token.group(1), "api_key": world.key("suspended")}, follow_redirects=False)
        assert refused.headers["location"] == "/signin?error=true"
    finally:
        client.cookies.clear()
