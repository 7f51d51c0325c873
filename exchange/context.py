"""What a request works with: the database, the rule cache, the clock. One per app, no globals."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import sqlalchemy as sa
from litestar import Request, Response
from litestar.params import HeaderParameter
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import BY_KEY, CALLER_WIDTH, Caller, bearer_key, caller_of, require
from exchange.core import retry
from exchange.core.canonical import canonical_bytes
from exchange.core.errors import IdempotencyConflict, InvalidInput
from exchange.db import Database, retrying
from exchange.listings.cache import PageCache
from exchange.listings.schemas import ListingPage
from exchange.participants.keys import key_hash
from exchange.ratelimit import RateLimiter, too_many
from exchange.rulebook import store
from exchange.rulebook.store import ActiveRules, RulebookCache
from exchange.settings import Settings
from exchange.settlement.ledger import Ledger
from exchange.tables import CatalogueState, IdempotencyRecord

if TYPE_CHECKING:
    from exchange.orders.desk import OrderDesk

Clock = Callable[[], datetime]
T = TypeVar("T")
IDEMPOTENCY_KEY_MAX = 200

# The caller, the rule set in force and the catalogue version, in one round trip: every request
# with a key needs the first two (the rules for its rate limit), a catalogue search the third,
# and a short read is mostly round trips.
CATALOGUE_VERSION = sa.select(CatalogueState.version).where(CatalogueState.id == 1).scalar_subquery()
_CALLER_AND_RULES = BY_KEY.add_columns(store.ACTIVE_VERSION.scalar_subquery(), CATALOGUE_VERSION)
_RULES_AND_CATALOGUE = sa.select(store.ACTIVE_VERSION.scalar_subquery(), CATALOGUE_VERSION)

# Every process's spending added to one bucket per participant, refilled at the rule's rate as
# time passes; rows in key order, so two processes sharing at once cannot deadlock.
_SHARE_SPENDING = sa.text(
    "INSERT INTO rate_buckets AS b (participant_id, tokens, at_ms) "
    "SELECT key, CAST(:limit AS double precision) - spent, CAST(:at_ms AS bigint) "
    "FROM unnest(CAST(:keys AS text[]), CAST(:spent AS integer[])) AS u(key, spent) ORDER BY key "
    "ON CONFLICT (participant_id) DO UPDATE SET "
    "tokens = LEAST(CAST(:limit AS double precision), b.tokens + GREATEST(0, excluded.at_ms - b.at_ms) * CAST(:limit AS double precision) / 60000) "
    "- (CAST(:limit AS double precision) - excluded.tokens), "
    "at_ms = GREATEST(b.at_ms, excluded.at_ms) "
    "RETURNING participant_id, tokens"
)

# Declared once so every creating POST documents and reads the header the same way.
IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Unit:
    """One request's unit of work: an open transaction (for a lookup on PostgreSQL, a session
    opened only if the request asks for one), the caller, and the time it started."""

    def __init__(
        self,
        exchange: Exchange,
        session: AsyncSession | None,
        caller: Caller | None,
        now: datetime,
        rules_version: int | None = None,
        catalogue_version: int | None = None,
    ) -> None:
        self.exchange = exchange
        self._session = session
        self._lean = session is None
        self.caller = caller
        self.now = now
        self._rules_version = rules_version
        self._rules: ActiveRules | None = None
        self._catalogue_version = catalogue_version

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.exchange.db.lookup_session()
        return self._session

    async def rows(self, statement: sa.Select[Any], params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of a read-only statement: for a lookup on PostgreSQL without a session
        (`Database.rows`), otherwise in the unit's session."""
        if self._lean:
            found = await self.exchange.db.rows(statement, params)
            if found is not None:
                return found
        return (await self.session.execute(statement, params)).all()

    def identified(self, caller: Caller, rules_version: int | None, catalogue_version: int | None) -> None:
        """The caller, with the versions read with it (the rules' is None when no rule set is
        in force: rules() says so)."""
        self.caller, self._rules_version, self._catalogue_version = caller, rules_version, catalogue_version

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def rules(self) -> ActiveRules:
        if self._rules is None:
            known = self.exchange.rule_cache.get(self._rules_version) if self._rules_version is not None else None
            self._rules = known or await store.active(self.session, self.exchange.rule_cache, self.now, version=self._rules_version)
        return self._rules

    async def catalogue_version(self) -> int:
        """The catalogue version as this request began (see exchange/listings/cache.py)."""
        if self._catalogue_version is None:
            rules_version, self._catalogue_version = (await self.rows(_RULES_AND_CATALOGUE, {"now": self.now}))[0]
            if self._rules_version is None:
                self._rules_version = rules_version
        return self._catalogue_version


class Exchange:
    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.rule_cache = RulebookCache()
        self.ledger = Ledger(settings)
        self.limiter = RateLimiter()
        self.search_cache: PageCache[ListingPage] | None = PageCache(settings.search_cache_pages) if settings.search_cache_pages else None
        self.clock = clock
        self.transaction_attempts = retry.ATTEMPTS
        self.on_retry: Callable[[str], None] | None = None  # create_app counts retries for /metrics
        self.desk: OrderDesk | None = None
        # On PostgreSQL only: SQLite has one writer at a time whatever we do, and the embedded
        # database is for small exchanges, where an order alone is fast enough.
        if settings.order_batch_max and self.db.dialect == "postgresql":
            from exchange.orders.desk import OrderDesk

            self.desk = OrderDesk(self)

    @asynccontextmanager
    async def unit(self, request: Request[Any, Any, Any], *, write: bool) -> AsyncIterator[Unit]:
        if write or self.db.dialect != "postgresql":
            async with self.db.write() if write else self.db.lookup() as session:
                yield await self._begin(request, Unit(self, session, None, self.clock()))
            return
        # A lookup on PostgreSQL: its statements commit by themselves, so it needs no
        # transaction, and those that can run without a session do (a short read's CPU was
        # mostly the session's).
        unit = Unit(self, None, None, self.clock())
        try:
            yield await self._begin(request, unit)
        finally:
            await unit.close()

    async def _begin(self, request: Request[Any, Any, Any], unit: Unit) -> Unit:
        """The unit with its caller (and the rules' and catalogue's versions read with it), its
        request counted against the caller's rate limit."""
        authorization = request.headers.get("authorization")
        if authorization is None:
            return unit
        key = bearer_key(authorization)
        rows = await unit.rows(_CALLER_AND_RULES, {"digest": key_hash(key), "now": unit.now})
        row = rows[0] if rows else None
        unit.identified(caller_of(key, row), *row[CALLER_WIDTH:])  # type: ignore[index]
        assert unit.caller is not None
        limit = (await unit.rules()).rulebook.trading.api.requests_per_minute
        wait = self.limiter.take(unit.caller.id, limit, unit.now)
        if wait is not None:
            raise too_many(limit, wait)
        return unit

    async def create(
        self,
        request: Request[Any, Any, Any],
        idempotency_key: str | None,
        action: Callable[[Unit, Caller], Awaitable[msgspec.Struct]],
        *,
        roles: tuple[str, ...],
        status_code: int = 201,
        kept: Callable[[bytes], bytes] | None = None,
    ) -> Response[Any]:
        """Run a creating POST once per Idempotency-Key: a retry with the same key and body gets
        the first response again; the same key with another body is refused. The record is
        written in the same transaction as what it created, so neither exists without the other.
        `kept` turns the response into what is stored for replays (to leave out a secret)."""
        if idempotency_key is not None and not (0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX):
            raise InvalidInput(
                f"Idempotency-Key: 1 to {IDEMPOTENCY_KEY_MAX} characters",
                errors=[{"field": "Idempotency-Key", "reason": "1 to 200 characters"}],
            )
        request_hash = await fingerprint(request)

        async def once() -> Response[Any]:
            async with self.unit(request, write=True) as unit:
                caller = require(unit.caller, *roles)
                if idempotency_key is not None:
                    record = await unit.session.get(IdempotencyRecord, (caller.id, idempotency_key))
                    if record is not None:
                        if record.request_hash != request_hash:
                            raise IdempotencyConflict(
                                "This Idempotency-Key was used with a different request; use a new key."
                            )
                        return idempotent_response(record.response, record.status_code, replayed=True)
                result = msgspec.json.encode(await action(unit, caller))
                if idempotency_key is not None:
                    unit.session.add(
                        IdempotencyRecord(
                            participant_id=caller.id,
                            key=idempotency_key,
                            request_hash=request_hash,
                            status_code=status_code,
                            response=kept(result) if kept is not None else result,
                            created_at=unit.now,
                        )
                    )
                    await unit.session.flush()
                return idempotent_response(result, status_code, replayed=False)

        for attempt in (1, 2):
            try:
                return await self.retrying(once)
            except sa.exc.IntegrityError:
                # A concurrent request with the same key won the race: replay its result.
                if attempt == 2 or idempotency_key is None:
                    raise
        raise AssertionError("unreachable")

    async def write(self, request: Request[Any, Any, Any], action: Callable[[Unit], Awaitable[T]]) -> T:
        """Run `action` in one write transaction, run again from the start when PostgreSQL aborts
        it for a deadlock or a serialisation failure: for writes that create nothing to replay."""

        async def once() -> T:
            async with self.unit(request, write=True) as unit:
                return await action(unit)

        return await self.retrying(once)

    async def retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        """`once` is one whole transaction; see `exchange.db.retrying`."""
        return await retrying(once, attempts=self.transaction_attempts, on_retry=self.on_retry)

    async def share_rate_limits(self) -> None:
        """Add this process's spending since the last share to the participants' shared buckets
        and take them back as every process has left them (PostgreSQL; see exchange/ratelimit.py)."""
        spent = self.limiter.spending()
        if not spent:
            return
        try:
            async with self.db.write() as session:
                now = self.clock()
                limit = (await store.active(session, self.rule_cache, now)).rulebook.trading.api.requests_per_minute
                keys = sorted(spent)
                rows = (await session.execute(
                    _SHARE_SPENDING, {"limit": limit, "at_ms": int(now.timestamp() * 1000), "keys": keys, "spent": [spent[key] for key in keys]}
                )).all()
        except BaseException:
            self.limiter.unshared(spent)
            raise
        self.limiter.shared({key: tokens for key, tokens in rows}, limit, now)

    async def dispose(self) -> None:
        await self.db.dispose()


def idempotent_response(body: bytes, status_code: int, *, replayed: bool) -> Response[Any]:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(content=body, status_code=status_code, media_type="application/json", headers=headers)


async def fingerprint(request: Request[Any, Any, Any]) -> str:
    return fingerprint_of(request.method, request.url.path, await request.body())


_UNDECODED = object()


def fingerprint_of(method: str, path: str, raw: bytes, decoded: Any = _UNDECODED) -> str:
    """What identifies a request for its Idempotency-Key: method, path and the body's canonical
    form (`decoded`: the body already decoded, if it was)."""
    try:
        body = (canonical_bytes(msgspec.json.decode(raw) if decoded is _UNDECODED else decoded)) if raw else b""
    except msgspec.DecodeError:
        body = raw
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()
