"""What every benchmark shares: the machine-readable RESULT line `benchmarks/run.py` collects, the
command line that reproduces a figure, a fresh PostgreSQL database of the benchmark's own, and a
served `exchange serve` process.

A benchmark prints its human output as it likes and, for each figure, one line

    RESULT {"name": "...", "value": 123.4, "unit": "orders/s", "aim": "≥ 300,000", "met": true,
            "database": "postgresql", "size": "1,000,000 orders", "command": "...", "note": "..."}

(JSON after the word RESULT). `met` is null for figures without an aim."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # runnable without installing

RESULT_PREFIX = "RESULT "
# A server only: each benchmark makes (and empties) a database of its own on it, exchange_bench_<name>.
BENCH_POSTGRES_SERVER = os.environ.get("EXCHANGE_BENCH_POSTGRES_SERVER", "postgresql://postgres@127.0.0.1:5432")
EXCHANGE_BIN = ROOT / ".venv" / "bin" / "exchange"


def command() -> str:
    """The command line that reproduced this run, from the repository root."""
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return shlex.join([python, script, *sys.argv[1:]])


def header() -> None:
    """The first lines of a benchmark's output: its command and the machine."""
    print(f"$ {command()}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    sys.stdout.flush()


def aim_text(op: str, bound: float, unit: str = "") -> str:
    number = f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:,}"
    return f"{op} {number}{' ' + unit if unit else ''}"


def meets(value: float, op: str, bound: float) -> bool:
    return {"≥": value >= bound, "≤": value <= bound, "<": value < bound, "=": value == bound}[op]


def result(
    name: str,
    value: float,
    unit: str,
    *,
    aim: tuple[str, float] | None = None,
    database: str = "",
    size: str = "",
    note: str = "",
) -> dict[str, Any]:
    """Print one figure as a RESULT line; `aim` is (op, bound) with op one of ≥ ≤ < =."""
    record = {
        "name": name,
        "value": value,
        "unit": unit,
        "aim": aim_text(*aim) if aim else "",
        "met": meets(value, *aim) if aim else None,
        "database": database,
        "size": size,
        "command": command(),
        "note": note,
    }
    print(RESULT_PREFIX + json.dumps(record, ensure_ascii=False), flush=True)
    return record


# ── PostgreSQL ──


def postgres_url(name: str) -> str:
    if not name.startswith("exchange_bench_"):
        raise ValueError(f"benchmark databases are named exchange_bench_*: {name}")
    return f"{BENCH_POSTGRES_SERVER.rstrip('/')}/{name}"


async def fresh_postgres(name: str) -> str:
    """Create the benchmark database `name` if needed and empty it; its asyncpg URL."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from exchange.settings import normalise_database_url

    url = normalise_database_url(postgres_url(name))
    admin = create_async_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        # Whatever a crashed earlier run left connected would block the schema drop.
        await connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name}
        )
        exists = (await connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).first()
        if exists is None:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        await connection.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


def postgres_version() -> str:
    """`PostgreSQL 15.20` of the benchmark server, or why it is unknown."""
    try:
        import asyncpg  # type: ignore[import-untyped]

        async def ask() -> str:
            connection = await asyncpg.connect(postgres_url("exchange_bench_probe").rsplit("/", 1)[0] + "/postgres", timeout=5)
            try:
                return str(await connection.fetchval("SHOW server_version"))
            finally:
                await connection.close()

        return "PostgreSQL " + asyncio.run(ask()).split(" ")[0]
    except Exception as error:  # only shown in a header
        return f"PostgreSQL unreachable ({type(error).__name__})"


# ── a served process ──


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, deadline_s: float, process: subprocess.Popen[bytes] | None = None, interval_s: float = 0.01) -> float:
    """Poll `url` until it answers 200; the time it took. Raises when the process dies first."""
    started = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        if time.perf_counter() - started > deadline_s:
            raise TimeoutError(f"{url} did not answer 200 within {deadline_s} s")
        time.sleep(interval_s)


def exchange_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of an `exchange` command on `database_url`, with no EXCHANGE_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_SIGNING_KEY_FILE": str(workdir / "signing.key"),
        "EXCHANGE_OPERATOR_KEY_FILE": str(workdir / "operator.key"),
        "EXCHANGE_LOG_LEVEL": "warning",
        **extra,
    }
    return env


@contextlib.contextmanager
def served(argv: list[str], env: dict[str, str], ready_url: str, log: Path, deadline_s: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends (SIGTERM, then SIGKILL after 30 s)."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        try:
            wait_http(ready_url, deadline_s, process)
        except Exception:
            sys.stderr.write(log.read_text(errors="replace")[-3000:])
            raise
        yield process
    finally:
        stop(process)


@contextlib.contextmanager
def one_exchange(database: str, workdir: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    """A fresh PostgreSQL database `database`, migrated and bootstrapped, and one `exchange serve`
    on it until the block ends: (the database's URL, the environment, the port)."""
    url = asyncio.run(fresh_postgres(database))
    env = exchange_env(url, workdir)
    run_exchange(["migrate"], env)
    run_exchange(["bootstrap"], env)
    port = free_port()
    with served([str(EXCHANGE_BIN), "serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/health", workdir / "serve.log"):
        yield url, env, port


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_exchange(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([str(EXCHANGE_BIN), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"exchange {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
