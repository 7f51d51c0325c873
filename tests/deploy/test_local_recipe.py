"""The local recipe: one PostgreSQL, three app processes and nginx in front (deploy/local/run.sh).
Crossing orders for one listing go through nginx at once to the process that places orders (its
order desk batches them; the others are its backups, and take over when it stops); the book never
over-fills, no buyer's money is spent twice, cancels go to the order process too, reads spread
over the other processes, and the ledger verifies. And issue #7's mixed load (benchmarks/load.py)
through the recipe: no answer is an error, and the books still verify after it."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exchange.db import Database
from exchange.settings import Settings
from exchange.settlement import audit
from tests.conftest import POSTGRES_URL, on_postgres_server
from tests.harness import listing_body

ROOT = Path(__file__).resolve().parent.parent.parent
PROCESSES = 3
BUYERS = 15
UNITS = 50


def _free_base() -> int:
    for _ in range(50):
        base = random.randint(20_000, 60_000)
        try:
            for port in range(base, base + PROCESSES + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


@pytest.fixture
def recipe(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI"):
            pytest.fail("CI requires nginx for the deployment recipe: apt-get install -y nginx")
        pytest.skip("the local recipe needs nginx (apt-get install -y nginx); set CI=true to require it")
    name = f"exchange_recipe_{os.getpid()}"  # per run: two runs at once must not drop each other's database
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    on_postgres_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    base = _free_base()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {"EXCHANGE_DATABASE_URL": url.replace("+asyncpg", ""), "DEPLOY_PORT": str(base), "DEPLOY_PROCESSES": str(PROCESSES),
            "DEPLOY_RUN": str(tmp_path / "run"), "EXCHANGE_LOG_LEVEL": "warning"}
    started = subprocess.run([str(ROOT / "deploy/local/run.sh"), "start"], env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"http://127.0.0.1:{base}", url, tmp_path / "run"
    finally:
        subprocess.run([str(ROOT / "deploy/local/run.sh"), "stop"], env=env, capture_output=True, timeout=60)
        on_postgres_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres_only
def test_three_processes_behind_nginx_share_one_book(recipe: tuple[str, str, Path], clean_database_url: str) -> None:
    url, database_url, run = recipe
    operator = (run / "operator.key").read_text().strip()
    asyncio.run(_trade(url, database_url, operator, run))


async def _trade(url: str, database_url: str, operator: str, run: Path) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        def auth(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        async def participant(role: str) -> tuple[str, str]:
            made = (await client.post("/v1/participants", headers=auth(operator), json={"name": role, "roles": [role]})).json()
            return made["id"], made["api_key"]

        _, vendor = await participant("vendor")
        buyers = [await participant("buyer") for _ in range(BUYERS)]
        body = listing_body(plans=[{"kind": "quota", "unit": "1 GB", "reference_price": {"amount": 10_000, "currency": "CNY"}}])
        listing = (await client.post("/v1/listings", headers=auth(vendor), json=body)).json()
        submitted = (await client.post(f"/v1/listings/{listing['id']}/submit", headers=auth(vendor))).json()
        approval = {"reason": "ok", "checklist": [{"item": i["item"], "passed": True, "evidence": "checked"} for i in submitted["checklist"]]}
        listed = (await client.post(f"/v1/listings/{listing['id']}/approve", headers=auth(operator), json=approval)).json()
        plan = listed["plans"][0]["id"]
        for buyer_id, _ in buyers:
            deposit = {"participant_id": buyer_id, "amount": 150_000, "currency": "CNY", "rail": "bank", "reference": f"r-{buyer_id}"}
            assert (await client.post("/v1/accounts/deposits", headers=auth(operator), json=deposit)).status_code == 201
        sell = await client.post("/v1/orders", headers=auth(vendor), json={"listing_id": listing["id"], "plan_id": plan, "side": "sell", "quantity": UNITS, "price": 10_000})
        assert sell.status_code == 201

        order = {"listing_id": listing["id"], "plan_id": plan, "quantity": 10, "price": 10_000}
        responses = await asyncio.gather(*(client.post("/v1/orders", headers=auth(key), json=order) for _, key in buyers for _ in range(2)))
        accepted = [r.json() for r in responses if r.status_code == 201]
        assert all(r.json()["code"] == "insufficient_funds" for r in responses if r.status_code != 201)
        assert sum(o["filled"] for o in accepted) == UNITS
        assert max(sum(1 for o in accepted if o["participant_id"] == buyer_id) for buyer_id, _ in buyers) == 1
        book = (await client.get(f"/v1/listings/{listing['id']}/book")).json()
        assert book["asks"] == []
        resting = (await client.post("/v1/orders", headers=auth(vendor), json={**order, "side": "sell", "quantity": 1, "price": 11_000})).json()
        cancelled = await client.delete(f"/v1/orders/{resting['id']}", headers=auth(vendor))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text

        for _ in range(3 * PROCESSES):
            assert (await client.get("/v1/listings")).status_code == 200
        conf = (run / "nginx.conf").read_text()
        upstream = conf[conf.index("upstream exchange"):conf.index("upstream orders")]
        ports = [int(line.split(":")[1].split()[0]) for line in upstream.splitlines() if line.strip().startswith("server 127.0.0.1:")]
        placed, cancels, read = [], [], []
        for port in ports:
            samples = [s for f in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics").text) for s in f.samples
                       if s.name == "exchange_http_requests_total"]
            placed.append(sum(s.value for s in samples if s.labels.get("route") == "/v1/orders" and s.labels.get("method") == "POST"))
            cancels.append(sum(s.value for s in samples if s.labels.get("route", "").startswith("/v1/orders/") and s.labels.get("method") == "DELETE"))
            read.append(sum(s.value for s in samples if s.labels.get("route") == "/v1/listings" and s.labels.get("method") == "GET"))
        assert len(ports) == PROCESSES and read[0] == 0 and all(count > 0 for count in read[1:]), read  # reads spread over the others
        # New orders and cancels go to the first process (its order desk batches them); the others are its backups.
        assert placed[0] == 2 + 2 * len(buyers) and not any(placed[1:]), placed
        assert cancels == [1] + [0] * (PROCESSES - 1), cancels

        # The order process runs at the usual CPU priority, the others at a lower one (DEPLOY_READ_NICE).
        niceness = [os.getpriority(os.PRIO_PROCESS, int((run / f"app-{n}.pid").read_text())) for n in range(1, PROCESSES + 1)]
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert niceness == [own] + [min(own + 10, 19)] * (PROCESSES - 1), niceness

        os.kill(int((run / "app-1.pid").read_text()), signal.SIGKILL)
        for _ in range(20):  # as clients do: the same order again, with its key, while nginx answers 502 for the dead process
            again = await client.post("/v1/orders", headers={**auth(vendor), "Idempotency-Key": "after-the-crash"},
                                      json={"listing_id": listing["id"], "plan_id": plan, "side": "sell", "quantity": 1, "price": 10_000})
            if again.status_code != 502:
                break
            await asyncio.sleep(0.2)
        assert again.status_code == 201, again.text  # a backup places it

    await _verify(database_url)


@pytest.mark.postgres_only
def test_the_mixed_load_through_the_recipe_gets_no_error_and_leaves_books_that_verify(recipe: tuple[str, str, Path], clean_database_url: str) -> None:
    """The load of issue #7, short: benchmarks/load.py's mixed load (orders, cancels, searches,
    contract reads) from concurrent clients through nginx. Its speed is a benchmark's business
    (README); here every answer must be a success, each kind must have been served, the order
    desk must have batched, and the ledger must verify with every currency summing to zero."""
    url, database_url, run = recipe
    port = int(url.rsplit(":", 1)[1])
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/load.py"), "--url", url, "--operator-key", str(run / "operator.key"),
         "--database-url", database_url.replace("+asyncpg", ""), "--desk-metrics", f"http://127.0.0.1:{port + 1}/metrics",
         "--seconds", "8", "--warmup", "1", "--concurrency", "24", "--buyers", "48"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "errors: none" in out, out
    served = {m["kind"]: int(m["count"].replace(",", "")) for m in re.finditer(r"^  (?P<kind>\w+)\s+(?P<count>[\d,]+)\s+[\d,]+/s", out, re.M)}
    assert set(served) == {"order", "cancel", "search", "contract"} and min(served.values()) > 0, out
    desk = re.search(r"the order desk: ([\d,]+) batches of ([\d.]+) requests on average; .*; (\d+) failed", out)
    assert desk is not None, out
    assert int(desk[1].replace(",", "")) > 0 and float(desk[2]) > 1 and desk[3] == "0", desk[0]  # concurrent orders share batches
    asyncio.run(_verify(database_url))


async def _verify(database_url: str) -> None:
    db = Database(Settings(database_url=database_url))
    try:
        report = await audit.verify_database(db)
    finally:
        await db.dispose()
    assert report.ok and report.totals == {"CNY": 0}, report.problems
