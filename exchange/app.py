"""create_app(settings): the one place the exchange is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import unquote_to_bytes

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Litestar, Request, Response, get
from litestar._openapi.schema_generation.plugins import StructSchemaPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from exchange import hostile, problems
from exchange.context import Clock, Exchange, utc_now
from exchange.listings.routes import ROUTES as LISTING_ROUTES
from exchange.log import configure_logging, log
from exchange.metrics import Metrics
from exchange.orders.entry import order_entry
from exchange.orders.routes import ROUTES as ORDER_ROUTES
from exchange.orders.sweep import sweep
from exchange.participants.routes import ROUTES as PARTICIPANT_ROUTES
from exchange.rulebook import store
from exchange.rulebook.files import read_rule_dir
from exchange.rulebook.routes import ROUTES as RULE_ROUTES
from exchange.settings import Settings
from exchange.settlement.routes import ROUTES as SETTLEMENT_ROUTES
from exchange.tables import LedgerState
from exchange.web.console import ROUTES as CONSOLE_ROUTES
from exchange.web.engine import static_files, template_config
from exchange.web.routes import ROUTES as WEB_ROUTES

REQUEST_ID_HEADER = "x-request-id"


@get("/health", summary="Liveness and database reachability", include_in_schema=True)
async def health(exchange: NamedDependency[Exchange]) -> dict[str, Any]:
    async with exchange.db.read() as session:
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
    return {"status": "ok", "database": exchange.db.dialect, "rules_version": rules.version, "rules_hash": rules.hash}


class _StrictStructSchema(StructSchemaPlugin):
    """Struct schemas as strict as msgspec decodes them: structs that refuse unknown fields say so
    (`additionalProperties: false`), and the constraints Litestar drops from list items and from
    dict keys and values are put back, so the document never promises a body the server refuses."""

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Any:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType):
            if info.forbid_unknown_fields:
                schema.additional_properties = False
            for field in info.fields:
                _tighten((schema.properties or {}).get(field.encode_name), field.type)
        return schema


_COLLECTIONS = {msgspec.inspect.ListType: OpenAPIType.ARRAY, msgspec.inspect.DictType: OpenAPIType.OBJECT}


def _tighten(schema: Any, info: msgspec.inspect.Type) -> None:
    if not isinstance(schema, Schema):
        return
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            for option in schema.one_of or [schema]:
                if isinstance(option, Schema) and option.type == _COLLECTIONS.get(type(member)):
                    _tighten(option, member)
    elif isinstance(info, msgspec.inspect.ListType):
        _scalar(schema.items, info.item_type)
    elif isinstance(info, msgspec.inspect.DictType):
        schema.min_properties, schema.max_properties = info.min_length, info.max_length
        _scalar(schema.additional_properties, info.value_type)
        names = Schema(type=OpenAPIType.STRING)
        _scalar(names, info.key_type)
        if names != Schema(type=OpenAPIType.STRING):
            schema.property_names = names


def _scalar(schema: Any, info: msgspec.inspect.Type) -> None:
    if not isinstance(schema, Schema):
        return
    if isinstance(info, msgspec.inspect.StrType):
        schema.min_length, schema.max_length, schema.pattern = info.min_length, info.max_length, info.pattern
    elif isinstance(info, msgspec.inspect.IntType):
        schema.minimum, schema.maximum = info.ge, info.le
        schema.exclusive_minimum, schema.exclusive_maximum = info.gt, info.lt


async def refuse_hostile_input(request: Request[Any, Any, Any]) -> None:
    """What no handler should see, refused before Litestar decodes it, naming the field:
    - a query that is not UTF-8, and U+0000 in the path, the query or a JSON body (PostgreSQL
      cannot store it where SQLite can: it was a 500 on one database only);
    - a JSON route's body sent as another media type (415; a body without Content-Type is taken as JSON);
    - a body msgspec gives up on outside its DecodeError (nested too deep, invalid UTF-8 in a
      string: both were 500s), and a member named twice (parsers disagree on which one counts);
    - a body that only lax conversion accepts: Litestar converts with strict=False, which takes
      "100", "1e2" and 100.0 as 100 fen."""
    for pair in request.scope.get("query_string", b"").split(b"&"):
        try:
            unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            _refuse(unquote_to_bytes(pair.partition(b"=")[0]).decode("utf-8", "replace"), "is not valid UTF-8")
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in f"{name}{value}":
            _refuse(name, "contains the character U+0000")
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None or getattr(data.kwarg_definition, "media_type", None) is not RequestEncodingType.JSON:
        return
    body = await request.body()
    if not body:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(status_code=415, detail=f"Send the body as application/json, not {media_type}.")
    try:
        decoded = await request.json()
    except SerializationException as error:
        # An escaped lone surrogate is JSON syntax msgspec refuses as "truncated": say where it is.
        try:
            _refuse_not_text(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            pass
        raise ValidationException(str(error)) from None
    except (RecursionError, UnicodeDecodeError) as error:
        raise ValidationException("JSON is malformed: " + ("nested too deeply" if isinstance(error, RecursionError) else "not valid UTF-8")) from None
    if not hostile.plain_members(decoded, body):
        # A member named twice (or only a string that looks like a member name), or deep
        # nesting: the standard parser, which sees every pair and has its own depth limit, decides.
        try:
            json.loads(body, object_pairs_hook=_unique_members)
        except (RecursionError, json.JSONDecodeError) as error:  # where the two parsers' limits differ
            raise ValidationException(f"JSON is malformed: {'nested too deeply' if isinstance(error, RecursionError) else error}") from None
    _refuse_not_text(decoded)
    try:
        msgspec.convert(decoded, data.annotation, strict=True)
    except msgspec.ValidationError as error:
        where = re.search(r"`\$\.?([^`]*)`$", str(error))
        _refuse(where.group(1) if where and where.group(1) else "data", str(error).split(" - ", 1)[0])


def _refuse_not_text(decoded: Any) -> None:
    """Refuse a string or member name holding U+0000 or a lone surrogate, naming where it is."""
    found = hostile.first_not_text(decoded)
    if found is not None:
        where, character = found
        _refuse(where or "data", "contains the character U+0000" if character == "\x00" else "contains a lone surrogate, which is not text")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            _refuse(key, "is given twice in one object")
        seen.add(key)
    return dict(pairs)


def _refuse(field: str, reason: str) -> NoReturn:
    raise ValidationException(f"{field}: {reason}", extra=[{"key": field, "message": reason}])


_HEAD_STATE = sa.select(LedgerState.size, LedgerState.head_size, LedgerState.head_timestamp_ms)


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
    exchange.on_retry = metrics.retried
    if exchange.desk is not None:
        exchange.desk.on_batch = metrics.batched

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
        # Waking four times per interval keeps a waiting entry's head within 1.25 intervals; the
        # sweep (lapsed orders, contracts due, bills) rides on the same loop, every sweep_interval_ms.
        interval = settings.ledger_head_interval_ms / 4000

        last_sweep = [asyncio.get_running_loop().time()]

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    async with exchange.db.read() as session:
                        state = (await session.execute(_HEAD_STATE)).one()
                    # Only then the ledger's lock: under load the appends keep the head fresh, and
                    # every process taking the lock four times an interval queued behind them.
                    if exchange.ledger.head_due(state.size, state.head_size, state.head_timestamp_ms, exchange.clock()):
                        async with exchange.db.write() as session:
                            await exchange.ledger.sign_head(session, exchange.clock(), only_if_stale=True)
                except Exception:  # keep signing later; one failure must not stop the loop
                    log.exception("ledger.head_signing_failed")
                now = asyncio.get_running_loop().time()
                if settings.sweep_interval_ms and (now - last_sweep[0]) * 1000 >= settings.sweep_interval_ms:
                    last_sweep[0] = now
                    try:
                        done = await sweep(exchange.db, exchange.ledger, exchange.rule_cache, exchange.clock())
                        if any(done.values()):
                            log.info("trading.swept", **done)
                    except Exception:
                        log.exception("trading.sweep_failed")

        app.state.head_signer = asyncio.create_task(loop())

    async def share_rate_limits(app: Litestar) -> None:
        """Several processes serve one PostgreSQL exchange: each shares its participants' request
        spending with the others every interval (exchange/ratelimit.py). SQLite's embedded
        exchange is one process."""
        if exchange.db.dialect != "postgresql" or not settings.rate_share_interval_ms:
            return

        async def loop() -> None:
            while True:
                await asyncio.sleep(settings.rate_share_interval_ms / 1000)
                try:
                    await exchange.share_rate_limits()
                except Exception:  # share later; one failure must not stop the loop
                    log.exception("ratelimit.share_failed")

        app.state.rate_sharer = asyncio.create_task(loop())

    async def close(app: Litestar) -> None:
        for name in ("head_signer", "rate_sharer"):
            task = app.state.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await exchange.dispose()

    def provide_exchange(state: State) -> Exchange:
        return exchange

    return Litestar(
        route_handlers=[
            health,
            *problems.documented([*PARTICIPANT_ROUTES, *RULE_ROUTES, *LISTING_ROUTES, *SETTLEMENT_ROUTES, *ORDER_ROUTES]),
            *WEB_ROUTES,
            *CONSOLE_ROUTES,
            metrics_endpoint,
            static_files(),
        ],
        template_config=template_config(),
        dependencies={"exchange": Provide(provide_exchange, sync_to_thread=False)},
        exception_handlers=problems.EXCEPTION_HANDLERS,
        before_request=refuse_hostile_input,
        plugins=[_StrictStructSchema()],
        middleware=[request_log_middleware(metrics), order_entry(exchange, settings.body_bytes_max)],
        on_startup=[load_initial_rules, sign_heads, share_rate_limits],
        on_shutdown=[close],
        openapi_config=OpenAPIConfig(
            title="Data exchange",
            version="0.1.0",
            description=(
                "Catalogue, rules and trading of data products. Errors are RFC 9457 problem+json. "
                "Bodies are application/json. Refused with 400: text holding U+0000 or a lone surrogate, an object naming "
                "a member twice, and an integer written with a fraction or exponent (100.0 for 100 fen)."
            ),
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            # Every route reads `Authorization: Bearer <API key>` when given; public ones work without.
            components=Components(security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="A participant's API key")}),
            security=[{"apiKey": []}, {}],
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
