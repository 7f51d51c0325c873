"""When the database cannot be reached (its connections cut, new ones refused, the server going
down or coming up), a request is answered 503 problem+json with Retry-After, saying how to resend
safely, not a bare 500; and the exchange serves again as soon as the database is back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from exchange.problems import database_unreachable
from tests.conftest import MovableClock
from tests.harness import Api


class Cable:
    """A TCP forwarder between the app and PostgreSQL, on a loop of its own, that the test can
    cut (every connection through it dropped, new ones refused) and mend."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.mend()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    def mend(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def cable(clean_database_url: str) -> Iterator[Cable]:
    url = make_url(clean_database_url)
    made = Cable(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield made
    finally:
        made.close()


@pytest.mark.postgres_only
async def test_a_request_the_database_cannot_serve_is_a_503_to_resend_and_the_exchange_serves_again_once_it_is_back(
    clean_database_url: str, cable: Cable, clock: MovableClock, tmp_path: Path
) -> None:
    from litestar.testing import AsyncTestClient

    from exchange.app import create_app
    from exchange.settings import Settings

    through_cable = make_url(clean_database_url).set(host="127.0.0.1", port=cable.port).render_as_string(hide_password=False)
    settings = Settings(
        database_url=through_cable, operator_key_file=str(tmp_path / "operator.key"), signing_key_file=str(tmp_path / "signing.key"),
        sweep_interval_ms=0, rate_share_interval_ms=0, ledger_head_interval_ms=3_600_000,  # no timers: requests only
    )
    async with AsyncTestClient(app=create_app(settings, clock=clock)) as client:
        api = Api(client, settings)
        await api.start()
        _, buyer = await api.participant("buyer")
        assert (await client.get("/health")).status_code == 200

        cable.cut()
        for method, path, key in (("GET", "/health", None), ("GET", "/v1/participants/me", buyer),
                                  ("POST", "/v1/accounts/deposits", api.operator_key)):
            body = {"participant_id": "par_x", "amount": 100, "currency": "CNY", "rail": "bank", "reference": "r-1"} if method == "POST" else None
            response = await api.request(method, path, key, json=body, headers={"Idempotency-Key": "down-1"} if body else None)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["code"] == "database_unavailable" and "Idempotency-Key" in problem["detail"], problem

        cable.mend()
        assert (await client.get("/health")).status_code == 200  # the pool replaced the connections it lost
        assert (await api.request("GET", "/v1/participants/me", buyer)).status_code == 200


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (sa.exc.InterfaceError("SELECT 1", {}, Exception("the underlying connection is closed"), connection_invalidated=True), True),
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (asyncpg.PostgresError.new({"C": "57P01", "M": "terminating connection due to administrator command", "S": "FATAL"}), True),
        (asyncpg.PostgresError.new({"C": "57P03", "M": "the database system is starting up", "S": "FATAL"}), True),
        (asyncpg.PostgresError.new({"C": "08006", "M": "connection failure", "S": "FATAL"}), True),
        # Not the database's reachability: a statement's own failure, a file, a plain bug.
        (asyncpg.PostgresError.new({"C": "23505", "M": "duplicate key value", "S": "ERROR"}), False),
        (asyncpg.PostgresError.new({"C": "57014", "M": "canceling statement due to statement timeout", "S": "ERROR"}), False),
        (sa.exc.InterfaceError("SELECT 1", {}, Exception("bad parameter"), connection_invalidated=False), False),
        (FileNotFoundError(2, "No such file"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_only_a_lost_or_refused_connection_counts_as_the_database_unreachable(error: BaseException, unreachable: bool) -> None:
    assert (database_unreachable(error) is not None) is unreachable
