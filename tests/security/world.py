"""The scenario the access table is checked against: one exchange with every kind of caller and a
real object behind every path parameter (a listed listing with one plan of each kind, a hidden
one, a draft, a settled contract, an open quota order, a negotiation, an auction, a withdrawal,
a bill, a notice, a shadow rule set), plus factories for fresh objects where a permitted call
uses one up (confirming a contract, closing an auction, …)."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from exchange.db import make_engine
from tests.conftest import MovableClock
from tests.harness import Api, listing_body

CALLERS = ("anonymous", "wrong_key", "suspended", "regulator", "other_vendor", "other_buyer", "vendor", "buyer", "operator")
"""Refused callers first: a permitted call that uses its object up comes last (see `fresh`)."""
KEYED = CALLERS[3:]
CNY = "CNY"
LICENCE = {"purposes": ["research", "urban-planning"], "duration_days": 365}  # no licence limit: the scenario buys many


def money(fen: int) -> dict[str, Any]:
    return {"amount": fen, "currency": CNY}


QUOTA = {"kind": "quota", "unit": "10,000 API calls", "reference_price": money(10_000)}
"""On a listing of its own: the circuit breaker compares a listing's trades, whatever their plan."""
PLANS: dict[str, dict[str, Any]] = {
    "fixed": {"kind": "fixed", "price": money(100_000)},
    "subscription": {"kind": "subscription", "price": money(10_000), "period_days": 30},
    "metered": {"kind": "metered", "tiers": [{"up_to": None, "price": money(10)}]},
    "revenue_share": {"kind": "revenue_share", "share_bps": 1_000, "minimum": money(10_000)},
    "negotiated": {"kind": "negotiated"},
    "gated": {"kind": "fixed", "price": money(20_000), "approval_required": True},
    "auction": {"kind": "auction", "reserve_price": money(10_000), "licences": 1},
    "auction_new": {"kind": "auction", "reserve_price": money(10_000), "licences": 1},
    "auction_close": {"kind": "auction", "reserve_price": money(10_000), "licences": 1},
}


@dataclass(frozen=True)
class Req:
    """What one request of a row sends: the path parameters and the body."""

    ids: dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: dict[str, Any] | None = None
    form: dict[str, Any] | None = None
    files: dict[str, Any] | None = None


Make = Callable[["World"], Awaitable[Req]]


def req(*, json: Any = None, params: Any = None, form: Any = None, files: Any = None, **ids: str | Callable[[World], str]) -> Make:
    """A request on the scenario's objects: `ids` name World attributes (or are functions of it);
    bodies may be functions of the World too, for values that must differ per call."""

    async def make(w: World) -> Req:
        def value(v: Any) -> Any:
            return v(w) if callable(v) else v

        return Req(ids={name: getattr(w, v) if isinstance(v, str) else v(w) for name, v in ids.items()},
                   json=value(json), params=value(params), form=value(form), files=value(files))

    return make


class World:
    def __init__(self, api: Api, clock: MovableClock) -> None:
        self.api = api
        self.clock = clock
        self.serial = itertools.count(1)
        self.keys: dict[str, str | None] = {}
        self.issued: list[str] = []
        """Every API key the exchange handed out in this scenario."""

    # ── requests ──

    async def call(self, method: str, path: str, key: str | None, *, json: Any = None, params: Any = None, form: Any = None,
                   files: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        sent = {**Api.auth(key), **(headers or {})}
        response = await self.api.client.request(method, path, headers=sent, json=json, params=params, data=form, files=files, follow_redirects=False)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("api_key"), str):
                self.issued.append(body["api_key"])
        return response

    async def ok(self, method: str, path: str, key: str | None, *, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, key, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def n(self) -> int:
        return next(self.serial)

    @property
    def op(self) -> str:
        return self.api.operator_key

    def key(self, caller: str) -> str | None:
        return self.keys[caller]

    # ── the scenario ──

    async def build(self) -> None:
        api = self.api
        self.issued.append(self.op)
        self.operator_id = (await self.ok("GET", "/v1/participants/me", self.op))["id"]
        self.regulator_id, regulator = await api.participant("regulator", name="Regulator")
        self.vendor_id, vendor = await api.participant("vendor", qualifications=["data-merchant"], name="Vendor")
        self.other_vendor_id, other_vendor = await api.participant("vendor", qualifications=["data-merchant"], name="Other vendor")
        self.buyer_id, buyer = await api.participant("buyer", name="Buyer")
        self.other_buyer_id, other_buyer = await api.participant("buyer", name="Other buyer")
        self.issued += [regulator, vendor, other_vendor, buyer, other_buyer]
        suspended = await self.ok("POST", "/v1/participants", self.op, status=201, json={"name": "Suspended", "roles": ["buyer", "vendor"]})
        self.suspended_id = suspended["id"]
        await self.ok("POST", f"/v1/participants/{self.suspended_id}/suspend", self.op)
        self.keys = {
            "anonymous": None, "wrong_key": "exk_" + secrets.token_urlsafe(32), "suspended": suspended["api_key"], "regulator": regulator,
            "other_vendor": other_vendor, "other_buyer": other_buyer, "vendor": vendor, "buyer": buyer, "operator": self.op,
        }
        for participant, fen in ((self.buyer_id, 100_000_000), (self.other_buyer_id, 10_000_000), (self.vendor_id, 1_000_000), (self.other_vendor_id, 1_000_000)):
            await self.deposit(participant, fen)

        # The scenario buys far more than one buyer would in a minute, and mostly as one buyer:
        # lift the order rate limit and the concentration threshold so trading rules never
        # stand between a permitted caller and its answer.
        trading = (await self.ok("GET", "/v1/rules", self.op))["files"]["trading.toml"]
        lifted = trading.replace("rate_per_minute_max = 60", "rate_per_minute_max = 100000").replace(
            "concentration_min_licences = 20", "concentration_min_licences = 1000000000")
        assert "rate_per_minute_max = 100000\n" in lifted and "concentration_min_licences = 1000000000\n" in lifted
        await self.ok("PUT", "/v1/rules", self.op, json={"files": {"trading.toml": lifted}, "reason": "access test: no trading limits in the way"})

        main = await api.listed(vendor, plans=list(PLANS.values()), licence=LICENCE)
        self.listing_id = main["id"]
        self.plan = {name: plan["id"] for name, plan in zip(PLANS, main["plans"], strict=True)}
        quota = await api.listed(vendor, title="上海交通出行 API 调用额度 Mobility API call quota", plans=[QUOTA], licence=LICENCE)
        self.quota_listing_id, self.plan["quota"] = quota["id"], quota["plans"][0]["id"]
        self.hidden_id = (await self.listing("suspended")).ids["listing_id"]
        self.draft_id = (await self.listing("draft")).ids["listing_id"]
        self.patchable_id = (await self.listing("listed")).ids["listing_id"]

        bought = await self.order(buyer, "fixed", purpose="research")
        self.order_id, self.contract_id = bought["id"], bought["contract_ids"][0]
        await self.ok("POST", f"/v1/contracts/{self.contract_id}/confirm", buyer)  # settled: money moved, a certificate in the log
        await self.order(vendor, "quota", side="sell", quantity=100, price=10_000)
        await self.order(buyer, "quota", quantity=1, price=10_000)  # a trade
        self.open_order_id = (await self.order(buyer, "quota", quantity=1, price=9_000))["id"]
        self.pending_order_id = (await self.gated_order()).ids["order_id"]
        self.subscription_id = (await self.order(buyer, "subscription"))["contract_ids"][0]
        self.metered_id = (await self.order(buyer, "metered"))["contract_ids"][0]
        self.revenue_id = (await self.order(buyer, "revenue_share"))["contract_ids"][0]
        self.bill_id = (await self.bill()).ids["bill_id"]
        self.negotiation_id = (await self.offered_negotiation()).ids["negotiation_id"]
        self.auction_id = (await self.ok("POST", "/v1/auctions", vendor, status=201, json={
            "listing_id": self.listing_id, "plan_id": self.plan["auction"], "closes_at": (self.clock() + timedelta(hours=24)).isoformat()}))["id"]
        await self.order(other_buyer, "auction", price=20_000)  # a sealed bid
        self.withdrawal_id = (await self.withdrawal()).ids["withdrawal_id"]
        self.amendment_id = (await self.ok("POST", f"/v1/contracts/{self.contract_id}/amendments", buyer, status=201,
                                           json={"changes": {"territory": "CN-SH"}, "reason": "use in Shanghai only"}))["id"]
        await self.ok("POST", f"/v1/listings/{self.listing_id}/notices", vendor, status=201, json={"kind": "schema_change", "message": "列 trips 改为整数"})
        await self.ok("PUT", "/v1/rules/shadow", self.op, json=await self.rules_files("shadow of the rules in force"))
        self.clock.advance(minutes=10)  # usage and revenue are reported after the purchases

    # ── helpers and factories (each returns the Req a row sends) ──

    async def deposit(self, participant_id: str, fen: int) -> None:
        await self.ok("POST", "/v1/accounts/deposits", self.op, status=201, json={
            "participant_id": participant_id, "amount": fen, "currency": CNY, "rail": "bank", "reference": f"access-{self.n()}"})

    async def order(self, key: str | None, plan: str, **body: Any) -> Any:
        listing_id = self.quota_listing_id if plan == "quota" else self.listing_id
        return await self.ok("POST", "/v1/orders", key, status=201, json={"listing_id": listing_id, "plan_id": self.plan[plan], **body})

    async def rules_files(self, reason: str | None = None) -> dict[str, Any]:
        trading = (await self.ok("GET", "/v1/rules", self.op))["files"]["trading.toml"]
        return {"files": {"trading.toml": trading}} | ({"reason": reason} if reason else {})

    async def apply_body(self) -> Req:
        return Req(json=await self.rules_files("the same rules again"))

    async def dry_run_body(self) -> Req:
        return Req(json=await self.rules_files())

    async def shadowing(self) -> Req:
        await self.ok("PUT", "/v1/rules/shadow", self.op, json=await self.rules_files("a candidate to decide on"))
        return Req()

    async def new_participant(self) -> Req:
        participant_id, key = await self.api.participant("buyer", name=f"Target {self.n()}")
        self.issued.append(key)
        return Req(ids={"participant_id": participant_id})

    async def suspended_participant(self) -> Req:
        made = await self.new_participant()
        await self.ok("POST", f"/v1/participants/{made.ids['participant_id']}/suspend", self.op)
        return made

    async def listing(self, state: str, json: Any = None) -> Req:
        """A fresh listing of the vendor in `state`: draft, submitted, listed, suspended or halted."""
        vendor = self.keys["vendor"]
        created = await self.ok("POST", "/v1/listings", vendor, status=201, json=listing_body(title=f"访问测试数据 Access test data {self.n()}", licence=LICENCE))
        listing_id = created["id"]
        if state != "draft":
            submitted = await self.ok("POST", f"/v1/listings/{listing_id}/submit", vendor)
            if state == "submitted":
                return Req(ids={"listing_id": listing_id}, json=json if json is not None else Api.approval(submitted))
            await self.ok("POST", f"/v1/listings/{listing_id}/approve", self.op, json=Api.approval(submitted))
        if state == "suspended":
            await self.ok("POST", f"/v1/listings/{listing_id}/suspend", self.op, json={"reason": "under investigation"})
        if state == "halted":
            await self.ok("POST", f"/v1/listings/{listing_id}/book/halt", self.op, json={"reason": "unusual trading"})
        return Req(ids={"listing_id": listing_id}, json=json)

    def listing_in(self, state: str, json: Any = None) -> Make:
        return lambda w: w.listing(state, json)

    async def contract(self, plan: str = "fixed") -> Req:
        bought = await self.order(self.keys["buyer"], plan)
        return Req(ids={"contract_id": bought["contract_ids"][0]}, json={"reason": "访问测试 access test"})

    async def subscription(self) -> Req:
        return await self.contract("subscription")

    async def disputed_contract(self) -> Req:
        made = await self.contract()
        await self.ok("POST", f"/v1/contracts/{made.ids['contract_id']}/dispute", self.keys["buyer"], json={"reason": "the data never arrived"})
        return Req(ids=made.ids, json={"outcome": "refund", "reason": "no delivery"})

    async def open_order(self) -> Req:
        return Req(ids={"order_id": (await self.order(self.keys["buyer"], "quota", quantity=1, price=9_000))["id"]})

    async def gated_order(self) -> Req:
        placed = await self.order(self.keys["buyer"], "gated", purpose="research", use_case="城市交通规划研究 transport planning research")
        assert placed["status"] == "pending_approval", placed
        return Req(ids={"order_id": placed["id"]}, json={"reason": "use case outside the licence"})

    async def due_auction(self) -> Req:
        opened = await self.ok("POST", "/v1/auctions", self.keys["vendor"], status=201, json={
            "listing_id": self.listing_id, "plan_id": self.plan["auction_close"], "closes_at": (self.clock() + timedelta(minutes=1)).isoformat()})
        self.clock.advance(minutes=2)  # bids are sealed until the close time
        return Req(ids={"auction_id": opened["id"]})

    async def withdrawal(self) -> Req:
        made = await self.ok("POST", "/v1/accounts/withdrawals", self.keys["buyer"], status=201,
                             json={"amount": 1_000, "currency": CNY, "rail": "bank", "destination": "ICBC 6222 0000 0000 0001"})
        return Req(ids={"withdrawal_id": made["id"]}, json={"reference": f"PAYOUT-{self.n()}"})

    async def bill(self) -> Req:
        revenue = 1_000_000 * self.n()  # each report trues the month up: a new bill with a positive amount
        made = await self.ok("POST", f"/v1/contracts/{self.revenue_id}/revenue", self.keys["buyer"], status=201, json={"period": "2026-11", "revenue": revenue})
        assert made["status"] == "paid" and made["amount"] > 0, made
        return Req(ids={"bill_id": made["id"]}, json={"reason": "revenue was reported gross"})

    async def disputed_bill(self) -> Req:
        made = await self.bill()
        await self.ok("POST", f"/v1/bills/{made.ids['bill_id']}/dispute", self.keys["buyer"], json={"reason": "revenue was reported gross"})
        return Req(ids=made.ids, json={"outcome": "uphold", "reason": "the report stands"})

    async def negotiation(self) -> Req:
        opened = await self.ok("POST", "/v1/negotiations", self.keys["buyer"], status=201, json={
            "listing_id": self.listing_id, "plan_id": self.plan["negotiated"], "purpose": "research", "terms": {"amount": 50_000, "message": "季度数据"}})
        return Req(ids={"negotiation_id": opened["id"]}, json={"reason": "no longer needed"})

    async def offered_negotiation(self) -> Req:
        made = await self.negotiation()
        offered = await self.ok("POST", f"/v1/negotiations/{made.ids['negotiation_id']}/offers", self.keys["vendor"], status=201,
                                json={"terms": {"amount": 60_000}, "expires_at": (self.clock() + timedelta(days=2)).isoformat()})
        return Req(ids=made.ids, json={"seq": offered["steps"][-1]["seq"]})

    async def amendment(self, contract_id: str | None = None) -> Req:
        contract_id = contract_id or (await self.contract()).ids["contract_id"]
        proposed = await self.ok("POST", f"/v1/contracts/{contract_id}/amendments", self.keys["buyer"], status=201,
                                 json={"changes": {"duration_days": 730}, "reason": "a two-year study"})
        return Req(ids={"contract_id": contract_id, "amendment_id": proposed["id"]})

    async def amendment_of_the_contract(self) -> Req:
        return await self.amendment(self.contract_id)

    async def usage(self) -> Req:
        batch = f"batch-{self.n()}"
        at = (self.clock() - timedelta(minutes=1)).isoformat()
        return Req(ids={"contract_id": self.metered_id}, json={"batch_id": batch, "records": [{"record_id": f"{batch}-1", "at": at, "calls": 120}]})

    # ── the database, for the key and regulator tests ──

    async def column(self, table: str, name: str) -> list[Any]:
        engine = make_engine(self.api.settings.database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(sa.text(f'SELECT "{name}" FROM "{table}"'))).scalars())
        finally:
            await engine.dispose()

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, rows sorted, values as they come back from the driver; but
        `rate_buckets`, which counts every caller's requests against its rate limit (shared by the
        app's timer at any moment): the exchange's bookkeeping of requests, not something a
        caller wrote."""
        engine = make_engine(self.api.settings.database_url)
        try:
            async with engine.connect() as connection:
                tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
                out = {}
                for table in sorted(set(tables) - {"rate_buckets"}):
                    rows = (await connection.execute(sa.text(f'SELECT * FROM "{table}"'))).all()
                    out[table] = sorted((tuple(row) for row in rows), key=repr)
                return out
        finally:
            await engine.dispose()


def as_text(value: Any) -> str:
    """A database value as searchable text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
