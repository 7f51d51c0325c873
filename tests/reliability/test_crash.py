"""Crash safety: a real server under concurrent clients (orders, cancels, confirmations, each
with an Idempotency-Key and retried on connection errors) is killed with SIGKILL several times
mid-load and restarted. Afterwards every acknowledged order exists exactly once, nothing settled
twice, every book matches its stored orders and trades, the ledger verifies and balances to
zero, and the heads clients saw before the crashes are consistent with the final one."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from exchange.db import Database
from exchange.settings import Settings, normalise_database_url, shipped_rules_dir
from exchange.settlement import audit
from tests.conftest import POSTGRES_URL, on_postgres_server
from tests.harness import listing_body
from tests.settlement.test_ledger import rfc9162_verify_consistency

pytestmark = pytest.mark.slow

BUYERS = 6
CLIENTS = 8
KILLS = 3
RUN_SECONDS = 9.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, folder: Path) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        self.env |= {"EXCHANGE_DATABASE_URL": url, "EXCHANGE_SIGNING_KEY_FILE": str(folder / "signing.key"),
                     "EXCHANGE_OPERATOR_KEY_FILE": str(folder / "operator.key"), "EXCHANGE_PORT": str(self.port),
                     "EXCHANGE_LOG_LEVEL": "warning", "EXCHANGE_LEDGER_HEAD_INTERVAL_MS": "200"}
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "exchange.cli", *args], env=self.env, cwd=self.folder, check=True, capture_output=True, timeout=120)

    async def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve"], env=self.env, cwd=self.folder,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(f"{self.base}/health", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert self.process.poll() is None and time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


statuses: dict[str, int] = {}


async def call(client: httpx.AsyncClient, method: str, path: str, key: str, json: Any = None, idempotency: str | None = None) -> httpx.Response:
    """Retry on connection errors (the server may be down), with the same Idempotency-Key."""
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency:
        headers["Idempotency-Key"] = idempotency
    for _ in range(400):
        try:
            response = await client.request(method, path, headers=headers, json=json, timeout=10)
            label = f"{method} {path.split('/')[2]} {response.status_code} {response.json().get('code', '') if response.status_code >= 400 else ''}"
            statuses[label] = statuses.get(label, 0) + 1
            return response
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{method} {path} never got an answer")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/crash.db"
        return
    name = f"exchange_crash_{os.getpid()}"  # per run: two runs at once must not drop each other's database
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    on_postgres_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    yield url.replace("+asyncpg", "")
    on_postgres_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # runs of the suite would pile them up


def test_sigkill_mid_load_loses_nothing_and_doubles_nothing(database: str, tmp_path: Path) -> None:
    server = Server(database, tmp_path)
    server.cli("migrate")
    server.cli("bootstrap")
    # The load is heavier than the shipped per-participant limits allow: lift them for the run.
    rules = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), rules)
    trading = (rules / "trading.toml").read_text(encoding="utf-8")
    (rules / "trading.toml").write_text(
        trading.replace("rate_per_minute_max = 60", "rate_per_minute_max = 100000").replace("requests_per_minute = 1200", "requests_per_minute = 1000000")
        .replace("circuit_breaker_bps = 1000", "circuit_breaker_bps = 100000"),
        encoding="utf-8")
    server.cli("rules", "apply", str(rules), "--reason", "load test")
    try:
        asyncio.run(_scenario(server, database))
    finally:
        server.stop()


async def _scenario(server: Server, database: str) -> None:
    operator = (server.folder / "operator.key").read_text().strip()
    await server.start()
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=server.base) as client:
        async def participant(role: str) -> tuple[str, str]:
            made = (await call(client, "POST", "/v1/participants", operator, {"name": role, "roles": [role]}, str(uuid.uuid4()))).json()
            return made["id"], made["api_key"]

        _, vendor = await participant("vendor")
        buyers = [await participant("buyer") for _ in range(BUYERS)]
        body = listing_body(plans=[{"kind": "quota", "unit": "1 GB", "reference_price": {"amount": 10_000, "currency": "CNY"}},
                                   {"kind": "fixed", "price": {"amount": 50_000, "currency": "CNY"}}])
        listing = (await call(client, "POST", "/v1/listings", vendor, body, str(uuid.uuid4()))).json()
        submitted = (await call(client, "POST", f"/v1/listings/{listing['id']}/submit", vendor)).json()
        approval = {"reason": "ok", "checklist": [{"item": i["item"], "passed": True, "evidence": "checked"} for i in submitted["checklist"]]}
        listed = (await call(client, "POST", f"/v1/listings/{listing['id']}/approve", operator, approval)).json()
        quota, fixed = listed["plans"][0]["id"], listed["plans"][1]["id"]
        for buyer_id, _ in buyers:
            deposit = {"participant_id": buyer_id, "amount": 5_000_000, "currency": "CNY", "rail": "bank", "reference": f"d-{buyer_id}"}
            assert (await call(client, "POST", "/v1/accounts/deposits", operator, deposit, str(uuid.uuid4()))).status_code == 201

        acknowledged: dict[str, str] = {}  # idempotency key -> order id
        contracts: set[str] = set()
        heads: list[dict[str, Any]] = []
        stop = asyncio.Event()

        async def trader(n: int) -> None:
            while not stop.is_set():
                action = rng.random()
                if action < 0.15:
                    key = str(uuid.uuid4())
                    order = {"listing_id": listing["id"], "plan_id": quota, "side": "sell", "quantity": rng.randint(1, 20), "price": rng.randint(9_000, 11_000)}
                    response = await call(client, "POST", "/v1/orders", vendor, order, key)
                    if response.status_code == 201:
                        acknowledged[key] = response.json()["id"]
                elif action < 0.65:
                    buyer = buyers[rng.randrange(BUYERS)][1]
                    key = str(uuid.uuid4())
                    order = {"listing_id": listing["id"], "plan_id": quota, "quantity": rng.randint(1, 15), "price": rng.randint(9_000, 11_000),
                             "time_in_force": rng.choice(["gtc", "ioc"])}
                    response = await call(client, "POST", "/v1/orders", buyer, order, key)
                    if response.status_code == 201:
                        acknowledged[key] = response.json()["id"]
                        contracts.update(response.json()["contract_ids"])
                        if rng.random() < 0.2:  # a client whose answer got lost sends the same request again
                            again = await call(client, "POST", "/v1/orders", buyer, order, key)
                            assert again.status_code == 201 and again.json()["id"] == acknowledged[key]
                elif action < 0.75:
                    buyer = buyers[rng.randrange(BUYERS)][1]
                    key = str(uuid.uuid4())
                    response = await call(client, "POST", "/v1/orders", buyer, {"listing_id": listing["id"], "plan_id": fixed}, key)
                    if response.status_code == 201:
                        acknowledged[key] = response.json()["id"]
                        contracts.update(response.json()["contract_ids"])
                elif action < 0.85 and acknowledged:
                    order_id = rng.choice(list(acknowledged.values()))
                    owner = vendor if rng.random() < 0.5 else buyers[rng.randrange(BUYERS)][1]
                    await call(client, "DELETE", f"/v1/orders/{order_id}", owner)  # 200, 404 or 409: all fine
                elif contracts:
                    contract = rng.choice(sorted(contracts))
                    detail = await call(client, "GET", f"/v1/contracts/{contract}", operator)
                    assert detail.status_code == 200, f"an acknowledged contract is not there: {detail.status_code} {detail.text[:200]}"
                    buyer_id = detail.json()["contract"]["buyer_id"]
                    buyer_key = next(k for i, k in buyers if i == buyer_id)
                    await call(client, "POST", f"/v1/contracts/{contract}/confirm", buyer_key)  # pays; again is 409
                if n == 0 and rng.random() < 0.2:
                    try:
                        head = await client.get("/v1/ledger/head", timeout=2)
                        if head.status_code == 200:
                            heads.append(head.json())
                    except httpx.TransportError:
                        pass

        async def killer() -> None:
            for _ in range(KILLS):
                await asyncio.sleep(RUN_SECONDS / (KILLS + 1))
                server.kill()
                await asyncio.sleep(0.3)
                await server.start()
            await asyncio.sleep(RUN_SECONDS / (KILLS + 1))
            stop.set()

        await asyncio.gather(killer(), *(trader(n) for n in range(CLIENTS)))
        assert len(acknowledged) > 20 and len(heads) >= 2, (len(acknowledged), len(heads), sorted(statuses.items())[:12])

        # Every acknowledged order exists, once: the orders in the database are exactly those acknowledged.
        engine = create_async_engine(normalise_database_url(database))
        async with engine.connect() as connection:
            stored = {row[0] for row in (await connection.execute(sa.text("SELECT id FROM orders WHERE status != 'rejected'"))).all()}
            settles = (await connection.execute(sa.text("SELECT transfer_id FROM ledger_entries WHERE transfer_id LIKE '%.settle'"))).scalars().all()
            settled = (await connection.execute(sa.text("SELECT count(*) FROM contracts WHERE status = 'settled'"))).scalar_one()
            rows = (await connection.execute(sa.text(
                "SELECT o.id, o.quantity, o.remaining, o.side, o.status, o.price FROM orders o WHERE o.plan_kind = 'quota' AND o.status != 'rejected'"))).all()
            traded = dict((await connection.execute(sa.text(
                "SELECT order_id, sum(q) FROM (SELECT buy_order_id AS order_id, quantity AS q FROM trades "
                "UNION ALL SELECT sell_order_id, quantity FROM trades WHERE sell_order_id IS NOT NULL) t GROUP BY order_id"))).all())
        await engine.dispose()
        assert stored == set(acknowledged.values()), (len(stored), len(set(acknowledged.values())))
        assert len(settles) == len(set(settles)) == settled  # nothing settled twice

        # The book after the restarts is the book the stored orders and trades imply.
        for order_id, quantity, remaining, _, status, _ in rows:
            assert quantity - remaining == int(traded.get(order_id, 0)), order_id
            assert status != "open" or remaining > 0
        book = (await call(client, "GET", f"/v1/listings/{listing['id']}/book?levels=100", operator)).json()
        resting = {"buy": {}, "sell": {}}  # type: dict[str, dict[int, int]]
        for _, _, remaining, side, status, price in rows:
            if status == "open":
                resting[side][price] = resting[side].get(price, 0) + remaining
        # The book shows at most 100 levels a side: the best ones (a fast run rests more than that).
        best_bids = dict(sorted(resting["buy"].items(), reverse=True)[:100])
        best_asks = dict(sorted(resting["sell"].items())[:100])
        assert {level["price"]: level["quantity"] for level in book["bids"]} == best_bids
        assert {level["price"]: level["quantity"] for level in book["asks"]} == best_asks
        if book["bids"] and book["asks"]:
            assert book["bids"][0]["price"] < book["asks"][0]["price"]  # never crossed at rest

        # Heads seen before the crashes are consistent with the final head.
        final = None
        for _ in range(50):
            final = (await call(client, "GET", "/v1/ledger/head", operator)).json()
            if final["size"] >= max(h["size"] for h in heads):
                break
            await asyncio.sleep(0.2)
        assert final is not None
        for head in heads:
            if head["size"] == final["size"]:
                assert head["root_hash"] == final["root_hash"]
                continue
            proof = (await call(client, "GET", f"/v1/ledger/proofs/consistency?first={head['size']}&second={final['size']}", operator)).json()
            assert rfc9162_verify_consistency(head["size"], final["size"], bytes.fromhex(head["root_hash"]),
                                              bytes.fromhex(final["root_hash"]), [bytes.fromhex(p) for p in proof["path"]])

    db = Database(Settings(database_url=database))
    try:
        report = await audit.verify_database(db)
    finally:
        await db.dispose()
    assert report.ok and report.totals == {"CNY": 0}, report.problems
