"""The order desk: quota orders that arrive together are placed in one transaction (group commit).

One order alone costs a transaction of some twenty statements, and every order takes the ledger's
lock, so orders queue behind each other's commits. The desk takes every quota order waiting in
this process, and places them in arrival order in one transaction: each book locked once, its
reachable resting orders read once, the parties' volumes and balances read once, the rows
written together and the journals posted as one batch under one ledger lock. Each order trades
exactly as it would alone, through the same code (`quota.trade`).

Anything the batch does not handle goes the single-order way after the batch commits, where it
gets the same answer it always got: a refusal of any kind (rules, funds, roles, a halted book,
a replayed Idempotency-Key with another body), other plan kinds, a running shadow rule set. If
the batch itself fails, every order in it goes that way too: the desk can make an order slower,
never different.

Cancels of resting orders come to the desk too, and are applied before the batch's orders: they
were in flight together, so either order is a true account of what happened, and a cancel that
waits for its book's lock in another transaction would hold up every batch behind it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Response
from sqlalchemy.dialects import postgresql

from exchange.auth import Caller, active_callers, bearer_or_none, callers_query
from exchange.context import CATALOGUE_VERSION, Exchange
from exchange.context import idempotent_response as _response
from exchange.core.errors import RuleViolated, TooManyRequests
from exchange.db import in_list
from exchange.orders import billing, quota, service, surveillance, volumes
from exchange.orders.schemas import OrderIn, OrderOut
from exchange.orders.windows import NewTrade, TradeWindows
from exchange.participants.keys import key_hash
from exchange.ratelimit import too_many
from exchange.rulebook import shadow, store, trading
from exchange.settlement import posting
from exchange.settlement.ledger import ACTIVE_KEY_ID
from exchange.settlement.service import JournalIn, Posted, post_journals
from exchange.settlement.signing import Signer
from exchange.tables import Book, Contract, IdempotencyRecord, Listing, MonthlyVolume, Order, Rows, Trade, new_row, new_rows, write_together

log = structlog.get_logger()

LINGER_S = 0.001
LINGER_STEPS = 10
LINGER_QUIET_STEPS = 2
RECENT_BATCHES = 8
REMEMBERED_ORDERS = 100_000
ALONE = None
"""What the desk answers for an order it leaves to the single-order path."""
DESK_ANSWER = "exchange.desk_answer"
"""Where in the ASGI scope the order entry path (exchange/orders/entry.py) leaves the desk's
answer for the handler, when it is not a response to send: the handler must not ask again."""


# The batch's earlier answers to its Idempotency-Keys, by the key's hash (a caller's participant
# through its API key) and the Idempotency-Key: a JSON array in text, each stored response in
# base64. The desk runs on PostgreSQL only, so its reads by many keys take arrays: one statement
# for any number of keys, prepared once, with no IN list to render and bind value by value. Each
# key is looked up by its own index probes (LATERAL, kept apart by OFFSET 0): joined plainly, the
# generic plan hashed every API key and probed the stored answers by participant alone (2.7 ms
# for 40 keys on 2,000 participants, against 0.3).
_REPLAYS = sa.text("""
    SELECT coalesce(CAST(json_agg(json_build_array(k.participant_id, r.key, r.request_hash, r.status_code, encode(r.response, 'base64'))) AS TEXT), '[]')
    FROM unnest(CAST(:replay_digests AS TEXT[]), CAST(:replay_keys AS VARCHAR[])) AS given(digest, key)
    CROSS JOIN LATERAL (SELECT k.participant_id FROM api_keys k WHERE k.key_hash = given.digest AND k.revoked_at IS NULL OFFSET 0) AS k
    CROSS JOIN LATERAL (SELECT r.key, r.request_hash, r.status_code, r.response FROM idempotency_keys r
                        WHERE r.participant_id = k.participant_id AND r.key = given.key OFFSET 0) AS r
""").columns(sa.column("replays", sa.Text())).scalar_subquery()
# The batch's callers, and with them what the whole batch needs besides, in one round trip: the
# rule set in force, whether a shadow set is judging, the signing key, the catalogue version
# (the listings the desk keeps between batches stand while it does) and the replays.
_CALLERS_AND_FACTS = callers_query(
    store.ACTIVE_VERSION.scalar_subquery(),
    shadow.RUNNING.exists(),
    ACTIVE_KEY_ID.scalar_subquery(),
    CATALOGUE_VERSION,
    _REPLAYS,
)


class _Replay(NamedTuple):
    request_hash: str
    status_code: int
    response: bytes


# After the books' locks, what the batch's rules and funds checks read (`_facts`), each part a
# JSON array in text. The count's ORDER BY is the index's (participant, created_at): without
# it, the generic plan a prepared statement settles on after five runs guesses a LIMIT of a
# tenth and scans the whole orders table once per participant (33 ms a batch on 3,800 orders,
# and growing with them, against 2 ms).
# The balances and volumes are read by one primary-key probe a name (LATERAL, kept apart by
# OFFSET 0), not by `= ANY`: for some forty names the planner judged a read of the whole table
# the cheaper, which it is not with a few thousand rows (0.8 ms for the accounts of 2,000
# buyers, against 0.2 by the probes; every batch, under the books' locks).
_FACT_PARTS = (
    """(SELECT coalesce(CAST(json_agg(json_build_array(p.id, (SELECT count(*) FROM (
           SELECT 1 FROM orders WHERE orders.participant_id = p.id AND orders.created_at > :since
           ORDER BY orders.created_at DESC LIMIT :cap) AS recent))) AS TEXT), '[]')
         FROM unnest(CAST(:participants AS VARCHAR[])) AS p(id))""",
    """(SELECT coalesce(CAST(json_agg(json_build_array(a.id, a.balance)) AS TEXT), '[]')
         FROM unnest(CAST(:accounts AS VARCHAR[])) AS given(id)
         CROSS JOIN LATERAL (SELECT a.id, a.balance FROM accounts a WHERE a.id = given.id OFFSET 0) AS a)""",
    """(SELECT coalesce(CAST(json_agg(json_build_array(v.participant_id, v.amount)) AS TEXT), '[]')
         FROM unnest(CAST(:parties AS VARCHAR[])) AS given(id)
         CROSS JOIN LATERAL (SELECT v.participant_id, v.amount FROM monthly_volumes v
                             WHERE v.participant_id = given.id AND v.month_start = :month OFFSET 0) AS v)""",
)
_FACT_TYPES = (sa.bindparam("since", type_=Order.__table__.c.created_at.type), sa.bindparam("month", type_=MonthlyVolume.__table__.c.month_start.type))  # type: ignore[attr-defined]
_FACTS = sa.text(f"SELECT {', '.join(_FACT_PARTS)}").bindparams(*_FACT_TYPES)
# Everything the batch reads under its books' locks, with the locks, in one round trip: the books
# locked (each with its version as the statement's snapshot saw it), the cancels' orders and the
# first pages of the book sides the batch trades against (`service.orders_and_first_pages`), and
# the facts. All of it is read as of the statement's start, before the locks are taken. Every
# transaction that locks a book adds one to its version, and orders change only under their
# book's lock: when each book's version is one past the snapshot's (this batch's own lock),
# nobody came between, and what was read stands. Otherwise a lock waited for another writer,
# and the orders, pages and facts are read again, after it. Each row is a book, an order or
# the facts (`part`); the other parts' columns are NULL in it, typed for the UNION.
_BOOK_COLUMNS = tuple(Book.__table__.columns)  # type: ignore[attr-defined]
_ORDER_COLUMNS = tuple(Order.__table__.columns)  # type: ignore[attr-defined]
_FACT_NAMES = ("recent", "balances", "volumes")


def _nulls(columns: tuple[sa.Column[Any], ...]) -> str:
    return ", ".join(f"CAST(NULL AS {column.type.compile(dialect=postgresql.dialect())})" for column in columns)


_LOCK_AND_READ = sa.select(Book, sa.column("seen_version", sa.BigInteger()), Order, sa.column("part", sa.Text()),
                           *(sa.column(name, sa.Text()) for name in _FACT_NAMES)).from_statement(sa.text(f"""
    WITH locked AS ({service.lock_books_text(", (SELECT seen.version FROM books seen WHERE seen.listing_id = books.listing_id) AS seen_version")})
    SELECT {", ".join(f"locked.{column.name}" for column in _BOOK_COLUMNS)}, locked.seen_version, {_nulls(_ORDER_COLUMNS)}, 'book',
           NULL, NULL, NULL FROM locked
    UNION ALL
    SELECT {_nulls(_BOOK_COLUMNS)}, NULL, read.*, NULL, NULL, NULL FROM ({service.ORDERS_AND_FIRST_PAGES_TEXT}) AS read
    UNION ALL
    SELECT {_nulls(_BOOK_COLUMNS)}, NULL, {_nulls(_ORDER_COLUMNS)}, 'facts', {", ".join(_FACT_PARTS)}
""").bindparams(sa.bindparam("now", type_=Book.__table__.c.updated_at.type), *_FACT_TYPES).columns(  # type: ignore[attr-defined]
    *_BOOK_COLUMNS, sa.column("seen_version", sa.BigInteger()), *_ORDER_COLUMNS, sa.column("part", sa.Text()),
    *(sa.column(name, sa.Text()) for name in _FACT_NAMES)))
_ORDERS_TABLE: sa.Table = Order.__table__  # type: ignore[attr-defined]
_ORDER_KEYS = frozenset(column.key for column in _ORDERS_TABLE.columns)
# What a batch changes in the orders it reads (a cancel, a fill, an expiry): such orders are
# written with the batch's rows; an order changed otherwise is left to the flush.
_ORDER_CHANGES = ("remaining", "held", "status", "reason", "updated_at")
_ORDER_CHANGEABLE = frozenset(_ORDER_CHANGES)
_ORDERS = sa.select(Order).where(Order.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String()))))


@dataclass
class Ticket:
    """One order waiting at the desk: the request as the single-order path would read it."""

    authorization: str | None
    idempotency_key: str | None
    fingerprint: str
    body: OrderIn
    answer: asyncio.Future[Response[Any] | Exception | None] = field(init=False)


@dataclass
class Cancel:
    """A request to cancel an order, waiting at the desk."""

    authorization: str | None
    order_id: str
    answer: asyncio.Future[OrderOut | Exception | None] = field(init=False)


Answer = Response[Any] | OrderOut | Exception | None
Facts = tuple[dict[str, int], dict[str, int], dict[str, int] | None]
"""What a batch's rules and funds checks read (`OrderDesk._facts`): the parties' orders of the
last minute, their available balances, and this month's volumes when a fee tier needs them."""
Pages = tuple[dict[str, Order], dict[tuple[str, str, str], list[Order]]]
"""The orders read again by id, and the first page of each book side ((listing, plan, maker side))."""


@dataclass
class _Placing:
    ticket: Ticket
    caller: Caller
    listing: Listing
    plan: dict[str, Any]


def _digest(authorization: str | None) -> str | None:
    """The hash of the API key in an `Authorization` header, as `active_callers` finds it."""
    key = bearer_or_none(authorization) if authorization is not None else None
    return key_hash(key) if key is not None else None


class _SignedLater:
    """A signer for the batch's markets that leaves each contract unsigned (a signature of None,
    which the database would refuse): `_signing` signs them all at once, later."""

    def __init__(self, signer: Signer) -> None:
        self.key_id = signer.key_id

    def sign(self, data: bytes) -> Any:
        return None


def _signing(signer: Signer, contracts: list[Contract]) -> Callable[[], Awaitable[None]] | None:
    """Sign the batch's contracts on another thread, starting now: Ed25519 in OpenSSL releases
    the GIL, so most signatures are made while the event loop waits for the ledger's lock (60 µs
    each on the event loop's thread: 6% of the desk's CPU). What the returned function
    awaits: the signatures, in the contracts, before they are written."""
    if not contracts:
        return None
    started = asyncio.get_running_loop().run_in_executor(None, _signatures, signer, [c.canonical for c in contracts])

    async def signed() -> None:
        for contract, signature in zip(contracts, await started, strict=True):
            contract.signature = signature
    return signed


def _signatures(signer: Signer, data: list[bytes]) -> list[str]:
    return [signer.sign(item) for item in data]


class OrderDesk:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.batch_max = exchange.settings.order_batch_max
        self._waiting: list[Ticket | Cancel] = []
        self._running: asyncio.Task[None] | None = None
        self._recent_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)
        self._last_size = 0
        self._windows = TradeWindows()  # the circuit breaker's windows, brought up to date by each batch
        # The book of each order the desk left resting (the newest REMEMBERED_ORDERS): a batch
        # cancelling only such orders locks their books without reading the orders first.
        self._book_of_order: dict[str, str] = {}
        # Listings as of a catalogue version (read-only here: a batch never changes a listing).
        self._listings: dict[str, Listing] = {}
        self._listings_version: int | None = None
        # For /metrics: the requests it answered (placed, cancelled, replayed or refused for their
        # rate; not those it left alone), whether it failed, how long its requests waited for it to
        # gather them and how long it took (seconds).
        self.on_batch: Callable[[int, bool, float, float], None] | None = None

    async def place(self, ticket: Ticket | Cancel) -> Any:
        """The order's response (a cancel's: the cancelled order), the error to raise, or `ALONE`:
        serve the request the single-order way."""
        ticket.answer = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        if self._running is None:
            self._running = asyncio.create_task(self._drain())
        return await ticket.answer

    async def _drain(self) -> None:
        batch: list[Ticket | Cancel] = []
        try:
            while self._waiting:
                lingering = time.perf_counter()
                await self._linger()
                batch, self._waiting = self._waiting[: self.batch_max], self._waiting[self.batch_max :]
                answers = await self._settle(batch, time.perf_counter() - lingering)
                # The requests in play around this batch: it, and those that arrived while it ran.
                self._recent_sizes.append(len(batch) + len(self._waiting))
                self._last_size = len(batch)
                for ticket, answer in zip(batch, answers, strict=True):
                    if not ticket.answer.done():  # its client may have gone
                        ticket.answer.set_result(answer)
        except Exception as error:
            # Only a bug gets here (a failed batch is answered ALONE by _settle). The batch's
            # requests may have been placed: they fail, logged, rather than wait for ever; those
            # that were still waiting were in no batch, and go the single-order way.
            log.exception("orders.desk_failed", orders=len(batch))
            for ticket in batch:
                if not ticket.answer.done():
                    ticket.answer.set_exception(RuntimeError(f"the order desk failed: {error!r}"))
            waiting, self._waiting = self._waiting, []
            for ticket in waiting:
                if not ticket.answer.done():
                    ticket.answer.set_result(ALONE)
        finally:
            self._running = None

    async def _linger(self) -> None:
        """Let requests already on their way join the batch. Under load, the clients a batch
        answered come back within a few milliseconds, one by one: stopping at the first quiet
        millisecond cut that wave into a small batch and a large one, each paying a whole
        transaction's round trips. So wait, a millisecond at a time, until the queue holds about
        as many as were in play around the recent batches (each batch and the requests that
        arrived while it ran: counting the batch alone, a wave cut once stays cut, two groups
        of clients taking turns in half-size batches), or nothing arrived for two milliseconds,
        or ten have passed; a lone client (recent batches of one) never waits.

        But when 3/4 of the last batch's count already wait, they arrived while it ran: they
        have waited a whole batch, and clients that send without waiting for answers (an open
        loop, as many independent participants do) keep the queue that full. Lingering then
        made every batch wait up to ten steps more, and grow, and wait more: at a steady 700
        orders a second offered, batches of 165 in 152 ms (docs/PERFORMANCE.md, "The eighth
        night"). A closed loop's stragglers are fewer than that, and the wave is waited for."""
        if self._recent_sizes and len(self._waiting) >= max(1, self._last_size * 3 // 4):
            return
        expected = min(self.batch_max, max(1, max(self._recent_sizes, default=1) * 3 // 4))
        quiet = 0
        for _ in range(LINGER_STEPS):
            seen = len(self._waiting)
            if seen >= expected:
                return
            await asyncio.sleep(LINGER_S)
            quiet = quiet + 1 if len(self._waiting) == seen else 0
            if quiet >= LINGER_QUIET_STEPS:
                return

    async def _settle(self, batch: list[Ticket | Cancel], gathered_s: float) -> list[Answer]:
        """The batch's answers (if it fails, every request goes alone); `gathered_s`: how long
        it waited for them, for /metrics."""
        started = time.perf_counter()
        try:
            answers = await self.exchange.retrying(lambda: self._once(batch))
        except Exception:
            log.exception("orders.batch_failed", orders=len(batch))
            if self.on_batch is not None:
                self.on_batch(0, True, gathered_s, time.perf_counter() - started)
            return [ALONE] * len(batch)
        if self.on_batch is not None:
            self.on_batch(sum(1 for a in answers if a is not ALONE), False, gathered_s, time.perf_counter() - started)
        return answers

    async def _once(self, batch: list[Ticket | Cancel]) -> list[Answer]:
        taken: list[str] = []  # requests counted against their callers' rate limits
        by_book: list[tuple[str, int, list[NewTrade]]] = []  # each book's new trades, for after the commit
        try:
            answers = await self._attempt(batch, taken, by_book)
        except BaseException:
            for caller_id in taken:  # they will be counted again, wherever they are served
                self.exchange.limiter.give_back(caller_id)
            raise
        # Committed: the batch's trades join their books' windows, which the next batch then
        # need not read back (every number up to `upto` is this batch's or was seen before).
        for listing_id, upto, trades in by_book:
            self._windows.add(listing_id, upto, trades)
        return answers

    async def _attempt(self, batch: list[Ticket | Cancel], taken: list[str], by_book: list[tuple[str, int, list[NewTrade]]]) -> list[Answer]:
        exchange = self.exchange
        now = exchange.clock()
        answers: list[Answer] = [ALONE] * len(batch)
        async with exchange.db.write() as session:
            # No flush before every statement (its check walks every object the session holds,
            # a twentieth of the desk's time): the batch writes its changes at the end (a read
            # meanwhile returns the session's copy of an order it changed, not the stored row).
            session.autoflush = False
            # The callers, with what the whole batch needs besides, in one round trip.
            tickets = [(position, t) for position, t in enumerate(batch) if isinstance(t, Ticket)]
            keyed = [(digest, t.idempotency_key) for _, t in tickets
                     if t.idempotency_key is not None and (digest := _digest(t.authorization)) is not None]
            callers, found = await active_callers(
                session, {t.authorization for t in batch if t.authorization is not None}, _CALLERS_AND_FACTS,
                params={"now": now, "replay_digests": [d for d, _ in keyed], "replay_keys": [k for _, k in keyed]},
            )
            if found is None:
                return answers  # nobody the batch could serve: each request gets its refusal alone
            rules_version, shadowing, signing_key_id, catalogue_version, replays = found
            if shadowing:
                return answers  # a shadow set judges every order: the single-order path records it
            rules = await store.active(session, exchange.rule_cache, now, version=rules_version)

            cancels = [(position, t) for position, t in enumerate(batch) if isinstance(t, Cancel)]
            records = {
                (participant_id, key): _Replay(request_hash, status_code, base64.b64decode(response))
                for participant_id, key, request_hash, status_code, response in msgspec.json.decode(replays)
            }
            listings = await self._listings_as_of(session, catalogue_version, {t.body.listing_id for _, t in tickets})

            placing: list[tuple[int, _Placing]] = []
            keys_seen: set[tuple[str, str]] = set()
            for position, ticket in tickets:
                caller = callers.get(ticket.authorization) if ticket.authorization is not None else None
                listing = listings.get(ticket.body.listing_id)
                if caller is None or not caller.has("buyer", "vendor") or listing is None or listing.status != "listed":
                    continue
                if ticket.idempotency_key is not None:
                    key = (caller.id, ticket.idempotency_key)
                    record = records.get(key)
                    if record is not None:
                        if record.request_hash == ticket.fingerprint:
                            answers[position] = self._limited(rules, caller, now, taken) or _response(record.response, record.status_code, replayed=True)
                        continue
                    if key in keys_seen:
                        continue  # after this batch commits, it is a replay of the first
                    keys_seen.add(key)
                plan = next((p for p in listing.content.get("plans", []) if p.get("id") == ticket.body.plan_id), None)
                if plan is None or plan.get("kind") != "quota":
                    continue
                placing.append((position, _Placing(ticket, caller, listing, plan)))
            # The cancels' books: remembered for the orders this desk placed, else read.
            remembered = [self._book_of_order.get(t.order_id) for _, t in cancels]
            if all(remembered):
                cancel_ids, cancel_books = sorted({t.order_id for _, t in cancels}), {book for book in remembered if book}
            else:
                cancellable = await self._cancellable(session, callers, cancels)
                cancel_ids, cancel_books = sorted(cancellable), {order.listing_id for order in cancellable.values()}
            if not placing and not cancel_books:
                return answers

            per_book: dict[str, int] = defaultdict(int)
            for listing_id in cancel_books:
                per_book[listing_id] += 0
            for _, p in placing:
                per_book[p.listing.id] += 1
            # The books locked, with the cancels' orders as they stand under the locks (a batch or
            # a cancel may have filled or cancelled them meanwhile), the first page of every book
            # side the batch's orders trade against, and the facts: read again when a lock waited.
            sides = self._sides(placing)
            books, read, facts = await self._lock_and_read(session, rules, per_book, placing, sides, cancel_ids, now)
            if read is None:
                read = await service.orders_and_first_pages(session, cancel_ids, sides)
            reread, pages = read
            # Each book's last number before this batch: every trade numbered up to it is committed.
            before = {listing_id: books[listing_id].seq - count for listing_id, count in per_book.items()}
            next_seq = {listing_id: number + 1 for listing_id, number in before.items()}
            cancelling = self._allowed(reread, callers, cancel_books)
            journals, cancelled = self._cancel(cancelling, callers, cancels, rules, now, answers, taken)
            await self._answer_cancels(session, cancelled, answers)
            if not placing:
                await self._post(session, journals, now)
                return answers

            recent, accounts, volumes_known = facts if facts is not None else await self._facts(session, rules, placing, now)
            signer = await exchange.ledger.signer_for(session, signing_key_id, now)
            markets = await self._markets(session, rules, placing, _SignedLater(signer), now, volumes_known, pages)
            traded_on = {p.listing.id for _, p in placing}  # a book with cancels only needs no window
            windows = await surveillance.cached_windows(session, self._windows, rules, {listing_id: number for listing_id, number in before.items() if listing_id in traded_on}, now)

            # The batch's new rows, inserted together at the end (their final state: an order
            # placed here may be filled by a later one); resting orders read from the database
            # are the session's, and it writes their changes.
            new_orders: list[Order] = []
            new_contracts: list[Contract] = []
            new_trades: list[Trade] = []
            new_records: list[IdempotencyRecord] = []
            for position, p in placing:
                body, caller, listing = p.ticket.body, p.caller, p.listing
                book = books[listing.id]
                seq = next_seq[listing.id]
                next_seq[listing.id] += 1
                if service.refusal(caller, listing, "quota", book, body) is not None:
                    continue
                facts = service.order_facts(caller, listing, p.plan, body, now, int(recent.get(caller.id, 0)))
                if trading.check_order(rules.rulebook, facts):
                    continue
                market = markets[(listing.id, body.plan_id)]
                order = service.new_order(rules, caller, listing, p.plan, body, seq, now)
                account = posting.available(caller.id, market.currency)
                worst = quota.worst_case(market, order) if body.side == "buy" else 0
                if worst > accounts.get(account, 0):
                    continue  # the single-order path refuses it, naming the shortfall
                limited = self._limited(rules, caller, now, taken)
                if limited is not None:
                    answers[position] = limited
                    continue
                try:
                    traded = quota.trade(market, order)
                except RuleViolated:
                    exchange.limiter.give_back(caller.id)
                    taken.remove(caller.id)
                    continue  # outside the band: refused (and recorded) the single-order way
                accounts[account] = accounts.get(account, 0) - worst  # never more than it holds, so never short
                recent[caller.id] = recent.get(caller.id, 0) + 1
                new_orders.append(order)
                new_contracts += traded.contracts
                new_trades += traded.trades
                if traded.journal:
                    journals.append(JournalIn(transfers=traded.journal))
                if traded.trades:
                    window = windows[listing.id]
                    for made in traded.trades:
                        window.add(made.price)
                    reason = surveillance.breaker_reason(rules, window)
                    if reason is not None:
                        surveillance.halt(book, reason, now)
                        session.add(book)
                result = msgspec.json.encode(service.order_out(order, traded.trades))
                if p.ticket.idempotency_key is not None:
                    new_records.append(new_row(IdempotencyRecord, participant_id=caller.id, key=p.ticket.idempotency_key, request_hash=p.ticket.fingerprint,
                                        status_code=201, response=result, created_at=now))
                answers[position] = _response(result, 201, replayed=False)
            # The batch's new rows go with the ledger's, in one statement.
            rows = [new_rows(Order, new_orders), new_rows(Contract, new_contracts), new_rows(Trade, new_trades), new_rows(IdempotencyRecord, new_records),
                    volumes.inserted(new_contracts)]
            await self._post(session, journals, now, rows, _signing(signer, new_contracts))
            self._remember(new_orders)
            for listing_id in traded_on:  # their windows were brought up to `before` above
                made = [(t.id, t.seq, t.price, t.at) for t in new_trades if t.listing_id == listing_id]
                by_book.append((listing_id, before[listing_id] + per_book[listing_id], made))
        return answers

    def _remember(self, orders: list[Order]) -> None:
        """The books of the orders this batch left resting, for their cancels (an entry outlives
        its order harmlessly: the cancel reads the order under its book's lock)."""
        for order in orders:
            if order.status == "open":
                self._book_of_order[order.id] = order.listing_id
        while len(self._book_of_order) > REMEMBERED_ORDERS:
            del self._book_of_order[next(iter(self._book_of_order))]  # the oldest

    async def _listings_as_of(self, session: Any, catalogue_version: int, listing_ids: set[str]) -> dict[str, Listing]:
        """The listings the batch names, as they stand at `catalogue_version`: kept from earlier
        batches while the version stands, the others read (and kept)."""
        if catalogue_version != self._listings_version:
            self._listings, self._listings_version = {}, catalogue_version
        missing = sorted(listing_ids - self._listings.keys())
        if missing:
            for row in (await session.execute(sa.select(Listing).where(Listing.id.in_(in_list(missing))))).scalars():  # type: ignore[attr-defined]
                session.expunge(row)  # out of the session: a rollback would expire it under later batches
                self._listings[row.id] = row
        return {listing_id: self._listings[listing_id] for listing_id in listing_ids if listing_id in self._listings}

    async def _post(
        self, session: Any, journals: list[JournalIn], now: datetime, rows: list[Rows] | None = None, before_write: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Post the journals, and write with the ledger's rows the batch's new rows and the
        orders it changed (cancelled, filled, expired); the session flushes what is left."""
        changed = [o for o in session.dirty if isinstance(o, Order) and _ORDER_KEYS - sa.inspect(o).unmodified <= _ORDER_CHANGEABLE]
        rows = [*(rows or ()), Rows(_ORDERS_TABLE, [{key: o.__dict__[key] for key in ("id", *_ORDER_CHANGES)} for o in changed], key="id")]
        if journals:
            for posted in await post_journals(session, self.exchange.ledger, journals, now, with_rows=rows, before_write=before_write):
                if not isinstance(posted, Posted):
                    raise posted  # a balance moved under the batch: every order goes alone
        else:
            if before_write is not None:
                await before_write()
            await write_together(session, *rows)
        for order in changed:
            session.expunge(order)  # written: the flush must not write it again
        await session.flush()

    @classmethod
    async def _cancellable(cls, session: Any, callers: dict[str, Caller], cancels: list[tuple[int, Cancel]]) -> dict[str, Order]:
        """The orders the batch may cancel, read before their books are locked (to know which to
        lock)."""
        if not cancels:
            return {}
        found = (await session.execute(_ORDERS, {"ids": sorted({t.order_id for _, t in cancels})})).scalars()
        return cls._allowed({o.id: o for o in found}, callers, None)

    @staticmethod
    def _allowed(found: dict[str, Order], callers: dict[str, Caller], books: set[str] | None) -> dict[str, Order]:
        """Of `found`, what the batch may cancel: open orders, outside any auction, of the callers
        that trade, on the books it locked (`books`; None: any). An operator's cancel, and every
        refusal, goes the single-order way, which words it."""
        owners = {caller.id for caller in callers.values() if caller.has("buyer", "vendor")}
        return {
            o.id: o for o in found.values()
            if o.status == "open" and o.auction_id is None and o.participant_id in owners and (books is None or o.listing_id in books)
        }

    @staticmethod
    def _sides(placing: list[tuple[int, _Placing]]) -> list[tuple[str, str, str]]:
        """The book sides ((listing, plan, maker side)) the batch's orders trade against."""
        by_book: dict[tuple[str, str], set[str]] = defaultdict(set)
        for _, p in placing:
            by_book[(p.listing.id, p.ticket.body.plan_id)].add(p.ticket.body.side)
        return [(listing_id, plan_id, maker_side) for (listing_id, plan_id), sides in sorted(by_book.items())
                for taker_side, maker_side in (("buy", "sell"), ("sell", "buy")) if taker_side in sides]

    def _cancel(
        self, cancelling: dict[str, Order], callers: dict[str, Caller], cancels: list[tuple[int, Cancel]],
        rules: store.ActiveRules, now: datetime, answers: list[Answer], taken: list[str],
    ) -> tuple[list[JournalIn], dict[int, Order]]:
        """Cancel, in arrival order, what can be cancelled as the single-order path would: the
        journals releasing their holds, and the orders cancelled by position in the batch. A second
        cancel of one order goes alone (and is refused there)."""
        journals: list[JournalIn] = []
        cancelled: dict[int, Order] = {}
        for position, ticket in cancels:
            caller = callers.get(ticket.authorization) if ticket.authorization is not None else None
            order = cancelling.get(ticket.order_id)
            if caller is None or order is None or order.participant_id != caller.id or order.status != "open":
                continue
            limited = self._limited(rules, caller, now, taken)
            if limited is not None:
                answers[position] = limited
                continue
            release = service.cancelled(order, caller, now)
            if release is not None:
                journals.append(JournalIn(transfers=[release]))
            cancelled[position] = order
        return journals, cancelled

    @staticmethod
    async def _answer_cancels(session: Any, cancelled: dict[int, Order], answers: list[Answer]) -> None:
        """Each cancelled order as the API shows it, with the trades it made before."""
        # An order never filled made no trades: the usual cancel (of an order resting unfilled)
        # needs no read.
        ids = in_list({order.id for order in cancelled.values() if order.remaining < order.quantity})
        if not ids:
            for position, order in cancelled.items():
                answers[position] = service.order_out(order, [])
            return
        query = sa.select(Trade).where(sa.or_(Trade.buy_order_id.in_(ids), Trade.sell_order_id.in_(ids))).order_by(Trade.seq, Trade.id)  # type: ignore[attr-defined, union-attr]
        trades: dict[str, list[Trade]] = defaultdict(list)
        for trade in (await session.execute(query)).scalars():
            trades[trade.buy_order_id].append(trade)
            if trade.sell_order_id is not None:
                trades[trade.sell_order_id].append(trade)
        for position, order in cancelled.items():
            answers[position] = service.order_out(order, trades[order.id])

    def _limited(self, rules: store.ActiveRules, caller: Caller, now: datetime, taken: list[str]) -> TooManyRequests | None:
        """Count the request against its caller's rate limit, as the single-order path would."""
        limit = rules.rulebook.trading.api.requests_per_minute
        wait = self.exchange.limiter.take(caller.id, limit, now)
        if wait is not None:
            return too_many(limit, wait)
        taken.append(caller.id)
        return None

    @classmethod
    async def _lock_and_read(
        cls, session: Any, rules: store.ActiveRules, per_book: dict[str, int], placing: list[tuple[int, _Placing]],
        sides: list[tuple[str, str, str]], cancel_ids: list[str], now: datetime,
    ) -> tuple[dict[str, Book], Pages | None, Facts | None]:
        """The books' locks (as `service.lock_book` takes them), with `service.orders_and_first_pages`
        of `sides` and the facts of `_facts` read in the same round trip: None for those when a
        lock waited for another writer of its book (read them again), and for the facts when the
        batch places nothing."""
        listing_ids = sorted(per_book)
        parameters = {"listing_ids": listing_ids, "seqs": [per_book[listing_id] for listing_id in listing_ids], "now": now,
                      **service.orders_and_first_pages_parameters(cancel_ids, sides), **cls._fact_parameters(rules, placing, now)}
        books: dict[str, Book] = {}
        unmoved = True
        orders: list[tuple[Order, str]] = []
        parts: Any = None
        for book, seen_version, order, part, *facts in await session.execute(_LOCK_AND_READ, parameters, execution_options={"populate_existing": True}):
            if part == "book":
                books[book.listing_id] = book
                unmoved = unmoved and book.version == (seen_version or 0) + 1
            elif part == "facts":
                parts = facts
            else:
                orders.append((order, part))
        if not unmoved:
            return books, None, None
        return books, service.orders_and_pages_of(orders, sides), cls._decoded_facts(parameters, parts) if placing else None

    @staticmethod
    def _fact_parameters(rules: store.ActiveRules, placing: list[tuple[int, _Placing]], now: datetime) -> dict[str, Any]:
        participants = sorted({p.caller.id for _, p in placing})
        tiered = any(trading.tiered_sides(rules.rulebook, "quota"))
        return {
            "participants": participants, "since": now - timedelta(minutes=1), "cap": rules.rulebook.trading.orders.rate_per_minute_max,
            # sets, as the probes of `_FACT_PARTS` need: a name given twice would be read twice
            "accounts": sorted({posting.available(p.caller.id, quota.money(p.plan, "reference_price")[1]) for _, p in placing}),
            "parties": sorted({*participants, *(p.listing.vendor_id for _, p in placing)}) if tiered else [],
            "month": billing.month_of(now)[0],
        }

    @staticmethod
    def _decoded_facts(parameters: dict[str, Any], parts: Any) -> Facts:
        recent, balances, volumes = (msgspec.json.decode(part) for part in parts)
        tiered = bool(parameters["parties"])  # named only when a fee tier needs them (never empty then)
        known = dict.fromkeys(parameters["parties"], 0) | {party: int(amount) for party, amount in volumes}
        return {p: int(count) for p, count in recent}, {name: int(balance) for name, balance in balances}, known if tiered else None

    @classmethod
    async def _facts(cls, session: Any, rules: store.ActiveRules, placing: list[tuple[int, _Placing]], now: datetime) -> Facts:
        """In one round trip: the parties' orders of the last minute, counted up to the rate
        rule's limit (an order at it is refused, and goes alone for the full count); their
        available balances; and, when a fee tier depends on them, this month's volumes of the
        parties known before the books are read (them and the vendors; None: no tier)."""
        parameters = cls._fact_parameters(rules, placing, now)
        return cls._decoded_facts(parameters, (await session.execute(_FACTS, parameters)).one())

    async def _markets(
        self, session: Any, rules: store.ActiveRules, placing: list[tuple[int, _Placing]], signer: Any, now: datetime,
        volumes_known: dict[str, int] | None, pages: dict[tuple[str, str, str], list[Order]],
    ) -> dict[tuple[str, str], quota.Market]:
        """Each book the batch trades on, with every resting order its orders could reach
        (`pages`: the first page of each book side, read under the locks)."""
        by_book: dict[tuple[str, str], list[_Placing]] = defaultdict(list)
        for _, p in placing:
            by_book[(p.listing.id, p.ticket.body.plan_id)].append(p)
        markets: dict[tuple[str, str], quota.Market] = {}
        makers: list[Order] = []
        for (listing_id, plan_id), orders in sorted(by_book.items()):
            market = quota.Market(rules=rules, listing=orders[0].listing, plan=orders[0].plan, signer=signer, now=now, volumes={})
            resting: list[Order] = []
            for taker_side, maker_side in (("buy", "sell"), ("sell", "buy")):
                takers = [p for p in orders if p.ticket.body.side == taker_side]
                if not takers:
                    continue
                # The loosest of their limits: read as deep as the most eager of them could trade.
                limits = [service.reach(taker_side, p.ticket.body.type, p.ticket.body.price, market.band) for p in takers]
                limit = max(limits) if taker_side == "buy" else min(limits)  # type: ignore[type-var]
                need = sum(p.ticket.body.quantity for p in takers)
                owners = {p.caller.id for p in takers}
                resting += await service.resting(session, self.exchange.ledger, listing_id, plan_id, maker_side, limit, need, owners, now,
                                                 first_page=pages[(listing_id, plan_id, maker_side)])
            market.rest(resting)
            makers += resting
            markets[(listing_id, plan_id)] = market
        volumes: dict[str, int] = {}
        if volumes_known is not None:  # a fee tier depends on them: the makers' owners' too
            volumes = {**volumes_known, **await service.party_volumes(session, rules, {m.participant_id for m in makers} - volumes_known.keys(), now)}
        for market in markets.values():
            market.volumes = volumes  # one dict: a contract on one book moves its parties' tiers on every book
        return markets


