"""create_app(settings): the one place the exchange is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from exchange import problems
from exchange.context import Clock, Exchange, utc_now
from exchange.listings.routes import ROUTES as LISTING_ROUTES
from exchange.log import configure_logging, log
from exchange.metrics import Metrics
from exchange.orders.routes import ROUTES as ORDER_ROUTES
from exchange.orders.sweep import sweep
from exchange.participants.routes import ROUTES as PARTICIPANT_ROUTES
from exchange.rulebook import store
from exchange.rulebook.files import read_rule_dir
from exchange.rulebook.routes import ROUTES as RULE_ROUTES
from exchange.settings import Settings
from exchange.settlement.routes import ROUTES as SETTLEMENT_ROUTES
from exchange.web.console import ROUTES as CONSOLE_ROUTES
from exchange.web.engine import static_files, template_config
from exchange.web.routes import ROUTES as WEB_ROUTES

REQUEST_ID_HEADER = "x-request-id"


@get("/health", summary="Liveness and database reachability", include_in_schema=True)
async def health(exchange: NamedDependency[Exchange]) -> dict[str, Any]:
    async with exchange.db.read() as session:
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
    return {"status": "ok", "database": exchange.db.dialect, "rules_version": rules.version, "rules_hash": rules.hash}


def request_log_middleware(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Bind a request id to every log line of the request, log one line when it ends, and count
    it for /metrics by route template. Only method, path and status are logged: never headers,
    bodies or query strings."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return _logged(app, metrics)

    return wrap


def _logged(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            log.info(
                "request.completed",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            metrics.observe(scope["method"], str(scope.get("path_template") or "unmatched"), status, elapsed)
            structlog.contextvars.clear_contextvars()

    return middleware


def create_app(settings: Settings, *, clock: Clock = utc_now) -> Litestar:
    exchange = Exchange(settings, clock)
    metrics = Metrics()

    @get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response[bytes]:
        body, content_type = await metrics.render(exchange)
        return Response(content=body, media_type=content_type)

    async def load_initial_rules(app: Litestar) -> None:
        """First start: the shipped (or EXCHANGE_RULES_DIR) files become rule-set version 1.
        The signing key is loaded first: a key file others can read stops the start."""
        exchange.ledger.signer()
        async with exchange.db.write() as session:
            if await store.ensure_initial(session, exchange.ledger, read_rule_dir(settings.rules_path), exchange.clock()):
                log.info("rules.initialised", rules_dir=str(settings.rules_path))

    async def sign_heads(app: Litestar) -> None:
        """Heads are signed with each batch of appends; this signs one for entries that have
        waited longer than the interval with no append after them."""
        # Waking four times per interval keeps a waiting entry's head within 1.25 intervals.
        interval = settings.ledger_head_interval_ms / 4000

        ticks = [0]

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    async with exchange.db.read() as session:
                        head = await exchange.ledger.latest_head(session)
                        size = await exchange.ledger.size(session)
                    if head is None or head.size < size:
                        async with exchange.db.write() as session:
                            await exchange.ledger.sign_head(session, exchange.clock(), only_if_stale=True)
                except Exception:  # keep signing later; one failure must not stop the loop
                    log.exception("ledger.head_signing_failed")
                ticks[0] += 1
                if ticks[0] % 4 == 0:
                    try:
                        done = await sweep(exchange.db, exchange.ledger, exchange.rule_cache, exchange.clock())
                        if any(done.values()):
                            log.info("trading.swept", **done)
                    except Exception:
                        log.exception("trading.sweep_failed")

        app.state.head_signer = asyncio.create_task(loop())

    async def close(app: Litestar) -> None:
        task = app.state.get("head_signer")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await exchange.dispose()

    def provide_exchange(state: State) -> Exchange:
        return exchange

    return Litestar(
        route_handlers=[health, *PARTICIPANT_ROUTES, *RULE_ROUTES, *LISTING_ROUTES, *SETTLEMENT_ROUTES, *ORDER_ROUTES, *WEB_ROUTES, *CONSOLE_ROUTES, metrics_endpoint, static_files()],
        template_config=template_config(),
        dependencies={"exchange": Provide(provide_exchange, sync_to_thread=False)},
        exception_handlers=problems.EXCEPTION_HANDLERS,
        middleware=[request_log_middleware(metrics)],
        on_startup=[load_initial_rules, sign_heads],
        on_shutdown=[close],
        openapi_config=OpenAPIConfig(
            title="Data exchange",
            version="0.1.0",
            description="Catalogue, rules and trading of data products. Errors are RFC 9457 problem+json.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        request_max_body_size=settings.body_bytes_max,
        logging_config=None,
        debug=False,
    )


def asgi() -> Litestar:
    """The ASGI entry point for servers (`uvicorn --factory exchange.app:asgi`)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
