"""Contention: three server processes on one PostgreSQL, many clients racing at once on
(a) one quota book: crossing buys and sells, and cancels: no order fills more than its quantity;
(b) one buyer's small balance: buys and withdrawals from every process: exactly as many are
    accepted as the balance covers, the rest refused with 422, never a negative balance;
(c) one Idempotency-Key sent to every process at once: one order, every answer names it; the same
    key with another body: 409;
(d) a rush on one resting sell from every process at once, for several times what it holds: the
    batches that waited for the book's lock see what the first one filled, so it fills exactly once.
No answer is a 5xx, no request fails on a deadlock, and the ledger verifies and sums to zero.

And a real deadlock, provoked on purpose: the victim is run again and commits; with the retry
switched off it fails with SQLSTATE 40P01."""

from __future__ import annotations

import asyncio
import json
import os
import random
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

from exchange.context import Exchange, Unit
from exchange.core import retry
from exchange.migrate import upgrade
from exchange.settings import Settings, normalise_database_url
from tests.conftest import POSTGRES_URL, on_postgres_server, postgres_problem
from tests.harness import Api, listing_body

# On SQLite one writer at a time: nothing races. Under CI conftest stops the run without PostgreSQL.
pytestmark = [pytest.mark.postgres, pytest.mark.postgres_only]

PROCESSES = 3
PRICE = 10_000
SELLS, SELL_QUANTITY = 6, 10
BUYERS, ORDERS_PER_BUYER = 10, 4
SPENDS, WITHDRAWALS, AFFORDABLE = 24, 6, 5
SAME_KEY = 12
RUSH_QUANTITY, RUSH_BUY = 30, 5  # one resting sell; every buyer sends a buy to each process at once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Servers:
    def __init__(self, url: str, folder: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        # Warnings only: retried transactions are logged at warning, failed requests at error.
        self.env |= {"EXCHANGE_DATABASE_URL": url, "EXCHANGE_SIGNING_KEY_FILE": str(folder / "signing.key"),
                     "EXCHANGE_OPERATOR_KEY_FILE": str(folder / "operator.key"), "EXCHANGE_LOG_LEVEL": "warning"}
        self.folder = folder
        self.ports = [_free_port() for _ in range(PROCESSES)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.logs = [folder / f"server-{n}.log" for n in range(PROCESSES)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for port, log in zip(self.ports, self.logs, strict=True):
            with log.open("wb") as stderr:
                self.processes.append(subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                                                       env=self.env, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=stderr))
        deadline = time.monotonic() + 60  # three at once, on a busy machine
        for url, process, log in zip(self.urls, self.processes, self.logs, strict=True):
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "a server did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)

    def events(self) -> list[dict[str, Any]]:
        lines = [line for log in self.logs for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
        return [json.loads(line) for line in lines]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "exchange.cli", *args], env=self.env, cwd=self.folder,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A migrated database of its own, named per run: the shared test database is emptied by
    other tests, and two runs at once must not drop each other's."""
    problem = postgres_problem()
    if problem is not None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({problem}); set CI=true to require it")
    name = f"exchange_contention_{uuid.uuid4().hex[:12]}"
    server = POSTGRES_URL.rsplit("/", 1)[0]
    on_postgres_server(f"CREATE DATABASE {name}")
    try:
        upgrade(f"{server}/{name}")
        yield f"{server}/{name}"
    finally:
        on_postgres_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def servers(fresh_database: str, tmp_path: Path) -> Iterator[Servers]:
    running = Servers(fresh_database, tmp_path)
    try:
        running.start()  # all three at once on an empty database: one stores the rules
        yield running
    finally:
        running.stop()


class Clients:
    """One HTTP client per process; every answer is kept to check for 5xx afterwards."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
        self.answers: list[tuple[str, str, int, str]] = []

    async def send(self, n: int, method: str, path: str, key: str, body: Any = None, idempotency: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} | ({"Idempotency-Key": idempotency} if idempotency else {})
        response = await self.clients[n % PROCESSES].request(method, path, headers=headers, json=body)
        self.answers.append((method, path, response.status_code, response.text[:300]))
        return response

    async def ok(self, n: int, method: str, path: str, key: str, body: Any = None) -> Any:
        response = await self.send(n, method, path, key, body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def test_racing_clients_on_three_processes(servers: Servers, fresh_database: str) -> None:
    started = time.monotonic()
    helper = Api(None, Settings(database_url=fresh_database, signing_key_file=str(servers.folder / "signing.key")))  # type: ignore[arg-type]
    _, operator = await helper.participant("operator")
    http = Clients(servers.urls)
    try:
        await _race(http, operator, fresh_database)
    finally:
        await http.close()

    fivexx = [answer for answer in http.answers if answer[2] >= 500]
    assert not fivexx, fivexx[:5]
    events = servers.events()
    failed = [e for e in events if e.get("event") == "request.failed" or ("deadlock" in json.dumps(e) and e.get("event") != "db.transaction_retried")]
    assert not failed, failed[:3]
    verified = servers.cli("ledger", "verify")
    assert verified.returncode == 0 and "totals: CNY 0" in verified.stdout, verified.stdout + verified.stderr
    retried = [e for e in events if e.get("event") == "db.transaction_retried"]
    print(f"{len(http.answers)} requests in {time.monotonic() - started:.1f} s; transactions retried: "
          f"{[(e['sqlstate'], e['attempt']) for e in retried]}")


async def _race(http: Clients, operator: str, database_url: str) -> None:
    started = time.monotonic()
    rng = random.Random(20261124)

    async def participant(n: int, role: str) -> tuple[str, str]:
        made = await http.ok(n, "POST", "/v1/participants", operator, {"name": f"{role} {n}", "roles": [role]})
        return made["id"], made["api_key"]

    async def quota_listing(vendor: str) -> tuple[str, str]:
        body = listing_body(plans=[{"kind": "quota", "unit": "10,000 calls", "reference_price": {"amount": PRICE, "currency": "CNY"}}])
        listing = await http.ok(0, "POST", "/v1/listings", vendor, body)
        submitted = await http.ok(1, "POST", f"/v1/listings/{listing['id']}/submit", vendor)
        approval = {"reason": "ok", "checklist": [{"item": i["item"], "passed": True, "evidence": "checked"} for i in submitted["checklist"]]}
        listed = await http.ok(2, "POST", f"/v1/listings/{listing['id']}/approve", operator, approval)
        return listing["id"], listed["plans"][0]["id"]

    async def deposit(n: int, participant_id: str, amount: int) -> None:
        await http.ok(n, "POST", "/v1/accounts/deposits", operator, {"participant_id": participant_id, "amount": amount, "currency": "CNY",
                                                                      "rail": "bank", "reference": f"d-{participant_id}-{amount}"})

    (_, vendor), (_, other_vendor) = await asyncio.gather(participant(0, "vendor"), participant(1, "vendor"))
    buyers = list(await asyncio.gather(*(participant(n, "buyer") for n in range(BUYERS))))
    (spender_id, spender), (repeater_id, repeater) = await asyncio.gather(participant(1, "buyer"), participant(2, "buyer"))
    (book, plan), (quiet_book, quiet_plan) = await asyncio.gather(quota_listing(vendor), quota_listing(other_vendor))
    await asyncio.gather(*(deposit(n, buyer_id, 5_000_000) for n, (buyer_id, _) in enumerate([*buyers, (repeater_id, repeater)])))

    # (b) What one buy of 10 units holds (price and fee): a probe, cancelled at once. Then the
    # spender gets enough for AFFORDABLE of them and half of one more.
    await deposit(0, spender_id, 20 * PRICE)
    spend = {"listing_id": quiet_book, "plan_id": quiet_plan, "side": "buy", "quantity": 10, "price": PRICE}
    probe = await http.ok(0, "POST", "/v1/orders", spender, spend)
    await http.ok(1, "DELETE", f"/v1/orders/{probe['id']}", spender)
    held = probe["held"]
    assert held >= 10 * PRICE  # the price, and the buyer's fee if the rules charge one
    balance = AFFORDABLE * held + held // 2
    await deposit(2, spender_id, balance - 20 * PRICE)

    # (a) The vendor's sells and the buyers' buys and cancels, interleaved on all processes.
    placed: list[dict[str, Any]] = []

    async def seller() -> None:
        for n in range(SELLS):
            await asyncio.sleep(rng.random() * 0.05)
            placed.append(await http.ok(n, "POST", "/v1/orders", vendor,
                                        {"listing_id": book, "plan_id": plan, "side": "sell", "quantity": SELL_QUANTITY, "price": PRICE}))

    async def buyer(n: int, key: str) -> None:
        mine: list[str] = []
        for j in range(ORDERS_PER_BUYER):
            await asyncio.sleep(rng.random() * 0.05)
            order = {"listing_id": book, "plan_id": plan, "side": "buy", "quantity": rng.randint(1, 8), "price": PRICE,
                     "time_in_force": rng.choice(["gtc", "gtc", "ioc"])}
            placed.append(await http.ok(n + j, "POST", "/v1/orders", key, order))
            mine.append(placed[-1]["id"])
            if j == 2:  # cancel the first through another process: 200, or 409 once it filled
                cancelled = await http.send(n + j + 1, "DELETE", f"/v1/orders/{mine[0]}", key)
                assert cancelled.status_code in (200, 409), cancelled.text

    # (b) AFFORDABLE buys or withdrawals of `held` each fit; the rest must be refused.
    async def spending(n: int) -> httpx.Response:
        if n < WITHDRAWALS:
            return await http.send(n, "POST", "/v1/accounts/withdrawals", spender,
                                   {"amount": held, "currency": "CNY", "rail": "bank", "destination": "ICBC 6222 0000 0000"})
        return await http.send(n, "POST", "/v1/orders", spender, spend)

    # (c) One key and one body on every process at once; then one key, two bodies.
    same = {"listing_id": book, "plan_id": plan, "side": "buy", "quantity": 3, "price": PRICE}
    bodies = [same | {"quantity": 2}, same | {"quantity": 5}]

    async def repeated() -> list[httpx.Response]:
        return list(await asyncio.gather(*(http.send(n, "POST", "/v1/orders", repeater, same, "same-key-1") for n in range(SAME_KEY))))

    async def conflicting() -> list[httpx.Response]:
        return list(await asyncio.gather(*(http.send(n, "POST", "/v1/orders", repeater, bodies[n % 2], "same-key-2") for n in range(SAME_KEY))))

    racing = time.monotonic()
    _, _, spent, again, conflicted = await asyncio.gather(
        seller(),
        asyncio.gather(*(buyer(n, key) for n, (_, key) in enumerate(buyers))),
        asyncio.gather(*(spending(n) for n in range(SPENDS + WITHDRAWALS))),
        repeated(),
        conflicting(),
    )
    print(f"set-up {racing - started:.1f} s, race {time.monotonic() - racing:.1f} s")

    # (a) No over-fill: every order's trades add up to what it says it filled, never more than its quantity.
    for order in placed:
        assert order["filled"] + order["remaining"] == order["quantity"] and order["remaining"] >= 0, order
    engine = create_async_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text(
                "SELECT id, side, status, quantity, remaining FROM orders WHERE listing_id = :book AND status != 'rejected'"), {"book": book})).all()
            traded = dict((await connection.execute(sa.text(
                "SELECT order_id, sum(q) FROM (SELECT buy_order_id AS order_id, quantity AS q FROM trades UNION ALL "
                "SELECT sell_order_id, quantity FROM trades WHERE sell_order_id IS NOT NULL) t GROUP BY order_id"))).all())
            repeats = (await connection.execute(sa.text("SELECT count(*) FROM orders WHERE participant_id = :p"), {"p": repeater_id})).scalar_one()
    finally:
        await engine.dispose()
    assert len(rows) == SELLS + BUYERS * ORDERS_PER_BUYER + 2
    for order_id, side, status, quantity, remaining in rows:
        filled = int(traded.get(order_id, 0))
        assert 0 <= filled <= quantity and remaining == quantity - filled, (order_id, side, quantity, remaining, filled)
        assert (status == "filled") == (remaining == 0), (order_id, status, remaining)
    sold = sum(int(traded.get(order_id, 0)) for order_id, side, *_ in rows if side == "sell")
    assert 0 < sold <= SELLS * SELL_QUANTITY
    depth = await http.ok(0, "GET", f"/v1/listings/{book}/book?levels=100", operator)
    assert not (depth["bids"] and depth["asks"]), depth  # one price: a book at rest never has both sides

    # (b) Exactly what the balance covers was accepted, whichever process took it; never below zero.
    accepted = [r for r in spent if r.status_code == 201]
    refused = [r for r in spent if r.status_code != 201]
    assert len(accepted) == AFFORDABLE, [r.status_code for r in spent]
    assert all(r.status_code == 422 and r.json()["code"] == "insufficient_funds" for r in refused), [r.text for r in refused[:3]]
    assert all(r.json().get("held", held) == held for r in accepted)
    balances = (await http.ok(1, "GET", "/v1/accounts/me", spender))["balances"]
    assert balances == [{"currency": "CNY", "available": balance - AFFORDABLE * held, "escrow": AFFORDABLE * held}], balances
    accounts = await http.ok(2, "GET", "/v1/accounts", operator)
    assert accounts["totals"] == {"CNY": 0}
    assert all(a["balance"] >= 0 for a in accounts["accounts"] if a["owner_id"] != "exchange"), accounts

    # (c) One order per key; every answer to the same body names it, the other body gets 409.
    assert all(r.status_code == 201 for r in again), [r.text for r in again if r.status_code != 201][:3]
    assert len({r.json()["id"] for r in again}) == 1
    assert [r.headers.get("Idempotent-Replayed") for r in again].count(None) == 1
    first = [r for r in conflicted if r.status_code == 201 and r.headers.get("Idempotent-Replayed") is None]
    assert len(first) == 1, [(r.status_code, r.text[:80]) for r in conflicted]
    winner = first[0].json()
    for n, response in enumerate(conflicted):
        if bodies[n % 2]["quantity"] == winner["quantity"]:
            assert response.status_code == 201 and response.json()["id"] == winner["id"], response.text
        else:
            assert response.status_code == 409 and response.json()["code"] == "idempotency_key_reused", response.text
    assert repeats == 2

    await _rush(http, operator, vendor, [key for _, key in buyers], quota_listing, database_url)


async def _rush(http: Clients, operator: str, vendor: str, buyers: list[str], quota_listing: Any, database_url: str) -> None:
    """(d) Each process's order desk takes its share of the rush in a batch; the batches that wait
    for the book's lock while another fills the sell must read it again after the lock."""
    book, plan = await quota_listing(vendor)
    sell = await http.ok(0, "POST", "/v1/orders", vendor, {"listing_id": book, "plan_id": plan, "side": "sell", "quantity": RUSH_QUANTITY, "price": PRICE})
    rush = {"listing_id": book, "plan_id": plan, "side": "buy", "quantity": RUSH_BUY, "price": PRICE, "time_in_force": "ioc"}
    rushed = await asyncio.gather(*(http.send(n, "POST", "/v1/orders", key, rush) for key in buyers for n in range(PROCESSES)))
    assert all(r.status_code == 201 for r in rushed), [r.text for r in rushed if r.status_code != 201][:3]
    assert len(rushed) * RUSH_BUY > 2 * RUSH_QUANTITY
    assert sum(r.json()["filled"] for r in rushed) == RUSH_QUANTITY, sorted(r.json()["filled"] for r in rushed)
    engine = create_async_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            traded = (await connection.execute(sa.text("SELECT coalesce(sum(quantity), 0) FROM trades WHERE sell_order_id = :sell"), {"sell": sell["id"]})).scalar_one()
            stored = (await connection.execute(sa.text("SELECT status, remaining FROM orders WHERE id = :sell"), {"sell": sell["id"]})).one()
    finally:
        await engine.dispose()
    assert (traded, tuple(stored)) == (RUSH_QUANTITY, ("filled", 0)), (traded, stored)
    book_now = await http.ok(1, "GET", f"/v1/listings/{book}/book?levels=100", operator)
    assert book_now["asks"] == [] and book_now["bids"] == [], book_now  # ioc buys never rest


class _Anonymous:
    headers: dict[str, str] = {}


async def _opposite_locks(exchange: Exchange) -> tuple[list[Any], list[str]]:
    """Two transactions take two locks in opposite order, each waiting on its first attempt until
    the other holds its first lock: PostgreSQL sees a deadlock and aborts one of them."""
    holding = {"a": asyncio.Event(), "b": asyncio.Event()}
    runs: list[str] = []

    def locking(name: str, other: str, first: int, second: int) -> Any:
        async def action(unit: Unit) -> str:
            runs.append(name)
            await unit.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": first})
            if runs.count(name) == 1:
                holding[name].set()
                await holding[other].wait()
            await unit.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": second})
            return name

        return action

    request: Any = _Anonymous()
    results = await asyncio.gather(exchange.write(request, locking("a", "b", 7_001, 7_002)),
                                   exchange.write(request, locking("b", "a", 7_002, 7_001)), return_exceptions=True)
    return list(results), runs


async def test_a_real_deadlock_is_run_again_and_without_the_retry_it_fails(fresh_database: str, tmp_path: Path) -> None:
    exchange = Exchange(Settings(database_url=fresh_database, signing_key_file=str(tmp_path / "signing.key")))
    retried: list[str] = []
    exchange.on_retry = retried.append
    try:
        results, runs = await _opposite_locks(exchange)
        assert results == ["a", "b"] and len(runs) == 3 and retried == ["40P01"], (results, runs)

        exchange.transaction_attempts = 1  # the retry switched off: the deadlock victim's request fails
        results, runs = await _opposite_locks(exchange)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1 and len(runs) == 2 and retry.retryable(failures[0]) == "40P01", results
    finally:
        await exchange.dispose()
