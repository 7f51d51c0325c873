"""Orders under the trading rules: fixed-price sales, quota books, sealed-bid auctions.

Every order of a listing first locks the listing's `books` row, so orders of one listing are
serialised across server processes while other listings trade in parallel; money then moves
through the ledger, whose own lock makes a buyer's balance impossible to spend twice.

Funds: a buy is accepted only when the buyer's available balance covers its worst case (price
times quantity plus the buyer's fee); that amount is held as a pending ledger transfer. Each
fill swaps the matching part of the hold for the contract's escrow, in one journal; cancel or
expiry gives the rest back. The buyer's fee share of a fill never exceeds its share of what was
held, so a resting order can always pay for its fills."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import BookHalted, Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound, RuleViolated
from exchange.core.ids import new_id
from exchange.db import in_list
from exchange.orders import billing, contracts, quota, surveillance, volumes
from exchange.orders.schemas import BookOut, FillOut, Level, OrderIn, OrderOut, OrderPage, TradeOut, TradePage
from exchange.rulebook import shadow, trading
from exchange.rulebook.evaluate import Violation
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger
from exchange.settlement.posting import Transfer
from exchange.settlement.service import JournalIn, post_one
from exchange.tables import Book, Contract, Listing, MonthlyVolume, Order, Trade, new_row

PAGE_MAX = 100
DIRECT_KINDS = ("fixed", "subscription", "free")


# ── loading ──


async def listed_plan(session: AsyncSession, listing_id: str, plan_id: str) -> tuple[Listing, dict[str, Any]]:
    listing = await session.get(Listing, listing_id)
    if listing is None or listing.status != "listed":
        raise NotFound(f"No listed product {listing_id!r}.")
    for plan in listing.content.get("plans", []):
        if plan.get("id") == plan_id:
            return listing, plan
    raise InvalidInput(f"plan_id: listing {listing_id} has no plan {plan_id!r}", errors=[{"field": "plan_id", "reason": "not a plan of this listing"}])


async def lock_book(session: AsyncSession, listing_id: str, now: datetime, *, next_seq: bool = False, seqs: int = 0) -> Book:
    """The listing's book row, locked until the transaction ends (created on first use), in one
    statement; with `next_seq` it also takes the next order sequence number (`seqs`: that many
    numbers, the last of them in `seq`). Every lock adds one to the book's `version`, whether it
    takes numbers or not: the order desk's reads under the lock rely on it."""
    taken = seqs or (1 if next_seq else 0)
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = insert(Book).values(listing_id=listing_id, status="open", seq=taken, updated_at=now, version=1)
    # Updating the row on conflict is what locks it (PostgreSQL); SQLite writers are serialised already.
    bumped = {"seq": Book.seq + taken, "version": Book.version + 1}
    if taken:
        bumped["updated_at"] = statement.excluded.updated_at
    statement = statement.on_conflict_do_update(index_elements=["listing_id"], set_=bumped).returning(Book)
    return (await session.execute(statement, execution_options={"populate_existing": True})).scalar_one()


_money = quota.money
_refuse = quota.refuse
_hold_transfer = quota.hold_transfer
_release_transfer = quota.release_transfer


_BOOK_COLUMNS = ", ".join(column.name for column in Book.__table__.columns)  # type: ignore[attr-defined]


def lock_books_text(also: str = "") -> str:
    """`lock_book` for many books in one statement on PostgreSQL (the order desk's), taking
    `:seqs` numbers of each of `:listing_ids`, in listing order as everywhere that takes several
    books; `also`: more columns for its RETURNING. One statement shape for any number of books
    (arrays, not one VALUES row each): SQLAlchemy compiles a many-row VALUES statement afresh
    every time."""
    return f"""
    INSERT INTO books (listing_id, status, seq, updated_at, version)
    SELECT listing_id, 'open', seq, CAST(:now AS TIMESTAMPTZ), 1 FROM unnest(CAST(:listing_ids AS VARCHAR[]), CAST(:seqs AS BIGINT[])) AS given(listing_id, seq)
    ORDER BY listing_id
    ON CONFLICT (listing_id) DO UPDATE SET seq = books.seq + excluded.seq, updated_at = excluded.updated_at, version = books.version + 1
    RETURNING {_BOOK_COLUMNS}{also}
"""


def reference_price(plan: dict[str, Any]) -> int | None:
    kind = plan.get("kind")
    if kind == "quota":
        return _money(plan, "reference_price")[0]
    if kind in ("fixed", "subscription"):
        return _money(plan, "price")[0]
    if kind == "auction":
        return _money(plan, "reserve_price")[0]
    return None


def month_start(now: datetime) -> datetime:
    """The start of the calendar month in the exchange's time zone, in UTC."""
    return billing.month_of(now)[0]


async def fees(session: AsyncSession, rules: ActiveRules, plan_kind: str, notional: int, buyer_id: str, vendor_id: str, now: datetime) -> tuple[int, int]:
    buyer_tiered, vendor_tiered = trading.tiered_sides(rules.rulebook, plan_kind)
    buyer_volume = await volumes.monthly_volume(session, buyer_id, now) if buyer_tiered else 0
    vendor_volume = await volumes.monthly_volume(session, vendor_id, now) if vendor_tiered else 0
    return trading.fee_for(rules.rulebook, plan_kind, notional, buyer_volume, vendor_volume)


def order_facts(caller: Caller, listing: Listing, plan: dict[str, Any], body: OrderIn, now: datetime, orders_last_minute: int) -> trading.OrderFacts:
    return trading.OrderFacts(
        category=listing.category, grade=listing.grade, plan_kind=str(plan["kind"]), side=body.side,
        order_type=body.type if plan["kind"] == "quota" else None, price_fen=body.price, quantity=body.quantity,
        reference_price_fen=reference_price(plan), buyer_qualifications=frozenset(caller.qualifications), purpose=body.purpose,
        at=now, expires_at=body.expires_at, orders_last_minute=orders_last_minute,
    )


def recent_orders(since: datetime) -> sa.Select[tuple[str, int]]:
    """Orders per participant since `since`, for the order rate rule."""
    return sa.select(Order.participant_id, sa.func.count()).where(Order.created_at > since).group_by(Order.participant_id)


async def _check_rules(
    session: AsyncSession, rules: ActiveRules, caller: Caller, listing: Listing, plan: dict[str, Any], body: OrderIn, now: datetime
) -> trading.OrderFacts:
    recent = (await session.execute(recent_orders(now - timedelta(minutes=1)).where(Order.participant_id == caller.id))).first()
    facts = order_facts(caller, listing, plan, body, now, int(recent[1]) if recent else 0)
    violations = trading.check_order(rules.rulebook, facts)
    if violations:
        refused = _refuse(violations, rules)
        refused.facts = facts  # type: ignore[attr-defined]  # the rejection record judges it by a shadow set too
        raise refused
    return facts


def refusal(caller: Caller, listing: Listing, kind: str, book: Book, body: OrderIn) -> Exception | None:
    """Why the order cannot go on this book at all, before any rule is asked."""
    if book.status == "halted":
        return BookHalted(f"Trading in listing {listing.id} is halted: {book.halted_reason}")
    if body.side == "buy" and caller.id == listing.vendor_id:
        return Forbidden("A vendor cannot buy its own listing.")
    if body.side == "sell" and (kind != "quota" or caller.id != listing.vendor_id):
        return Forbidden("Only the listing's vendor sells, and only units of a quota plan; other plans are sold by listing them.")
    if body.side == "buy" and not caller.has("buyer"):
        return Forbidden("Buying needs the buyer role.")
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        return InvalidInput("expires_at: give a time zone", errors=[{"field": "expires_at", "reason": "time zone required"}])
    return None


def new_order(rules: ActiveRules, caller: Caller, listing: Listing, plan: dict[str, Any], body: OrderIn, seq: int, now: datetime) -> Order:
    kind = str(plan["kind"])
    expires_at = body.expires_at
    if kind == "quota" and body.time_in_force == "gtc" and body.type == "limit" and expires_at is None:
        # A resting order lives at most as long as the rules allow, whether or not it says so.
        expires_at = now + timedelta(days=rules.rulebook.trading.quota.order_lifetime_days_max)
    return new_row(
        Order, id=new_id("ord"), listing_id=listing.id, revision=listing.revision, plan_id=body.plan_id, plan_kind=kind,
        participant_id=caller.id, side=body.side, type=body.type if kind == "quota" else "limit",
        price=body.price, quantity=body.quantity, remaining=body.quantity, time_in_force=body.time_in_force if kind == "quota" else "fok",
        purpose=body.purpose, use_case=body.use_case, status="open", seq=seq, rulebook_hash=rules.hash, violations=[],
        expires_at=expires_at, created_at=now, updated_at=now,
    )


# ── placing ──


async def place(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, body: OrderIn, now: datetime) -> OrderOut:
    listing, plan = await listed_plan(session, body.listing_id, body.plan_id)
    book = await lock_book(session, listing.id, now, next_seq=True)
    kind = str(plan["kind"])
    refused_outright = refusal(caller, listing, kind, book, body)
    if refused_outright is not None:
        raise refused_outright
    facts = await _check_rules(session, rules, caller, listing, plan, body, now)
    if body.side == "buy" and kind in surveillance.LICENCE_KINDS:
        licences = 1 if kind == "subscription" else body.quantity
        concentrated = await surveillance.concentration_violation(session, rules, listing.category, caller.id, licences, now)
        if concentrated is not None:
            refused = _refuse([concentrated], rules)
            refused.facts = facts  # type: ignore[attr-defined]
            raise refused
    order = new_order(rules, caller, listing, plan, body, book.seq, now)
    await shadow.judge(session, facts, [], order_id=order.id, participant_id=caller.id, listing_id=listing.id, now=now)
    if kind in DIRECT_KINDS:
        await _buy_direct(session, ledger, rules, listing, plan, order, now)
    elif kind == "quota":
        await _trade_quota(session, ledger, rules, listing, plan, order, book, now)
    elif kind in ("metered", "revenue_share"):
        from exchange.orders import postpaid

        await postpaid.open_contract(session, ledger, rules, listing, plan, order, now)
    elif kind == "auction":
        from exchange.orders import auctions

        await auctions.bid(session, ledger, rules, listing, plan, order, now)
    else:
        raise InvalidInput(f"plan_id: {kind} plans are not traded by order", errors=[{"field": "plan_id", "reason": f"{kind} plan"}])
    await session.flush()
    return await to_out(session, order)


async def _licences_left(session: AsyncSession, listing: Listing) -> int | None:
    limit = listing.content.get("licence", {}).get("max_licences")
    if limit is None:
        return None
    sold = (
        await session.execute(
            sa.select(sa.func.count()).select_from(Contract).where(Contract.listing_id == listing.id, Contract.status != "refunded")
        )
    ).scalar_one()
    return max(0, int(limit) - int(sold))


async def _buy_direct(session: AsyncSession, ledger: Ledger, rules: ActiveRules, listing: Listing, plan: dict[str, Any], order: Order, now: datetime) -> None:
    """fixed, subscription, free: a buy at the listed price fills at once while licences remain."""
    left = await _licences_left(session, listing)
    licences = 1 if plan["kind"] == "subscription" else order.quantity  # a subscription is one licence for `quantity` periods
    if left is not None and licences > left:
        raise Conflict(f"Only {left} licence(s) of listing {listing.id} remain.", remaining_licences=left)
    unit_price, currency = _money(plan, "price") if plan["kind"] != "free" else (0, "CNY")
    amount = unit_price * order.quantity
    buyer_fee, vendor_fee = await fees(session, rules, str(plan["kind"]), amount, order.participant_id, listing.vendor_id, now)
    order.price = unit_price
    if plan.get("approval_required"):
        if not order.use_case:
            raise InvalidInput("use_case: this plan sells only for a stated use case (无场景不交易)", errors=[{"field": "use_case", "reason": "required by the plan"}])
        # Held until the vendor approves or declines, or the window lapses.
        order.status = "pending_approval"
        order.expires_at = now + timedelta(hours=rules.rulebook.settlement.approval_hours)
        session.add(order)
        await session.flush()
        if amount + buyer_fee:
            await post_one(session, ledger, JournalIn(transfers=[_hold_transfer(order, amount + buyer_fee, currency, listing.vendor_id)]), now)
        return
    session.add(order)
    await session.flush()
    await _form_direct_contract(session, ledger, rules, listing, plan, order, unit_price, amount, buyer_fee, vendor_fee, currency, now, [])


async def _form_direct_contract(
    session: AsyncSession, ledger: Ledger, rules: ActiveRules, listing: Listing, plan: dict[str, Any], order: Order,
    unit_price: int, amount: int, buyer_fee: int, vendor_fee: int, currency: str, now: datetime, before: list[Transfer],
) -> None:
    terms = contracts.Terms(
        listing=listing, revision_content=listing.content, plan=plan, buyer_id=order.participant_id, vendor_id=listing.vendor_id,
        order_id=order.id, quantity=order.quantity, unit_price=unit_price, amount=amount, buyer_fee=buyer_fee, vendor_fee=vendor_fee,
        currency=currency, purpose=order.purpose, rules_hash=rules.hash,
    )
    contract, holds = await contracts.create(session, ledger, terms, confirm_window=trading.settlement_windows(rules.rulebook)[0], now=now)
    if before or holds:
        await post_one(session, ledger, JournalIn(transfers=[*before, *holds]), now)
    session.add(Trade(id=new_id("trd"), listing_id=listing.id, contract_id=contract.id, buy_order_id=order.id, price=unit_price, quantity=order.quantity, seq=order.seq, at=now))
    order.remaining, order.status = 0, "filled"


# ── quota books ──


MAKERS_PAGE = 64
MAKERS_FIRST_PAGE = 8


async def _makers(session: AsyncSession, ledger: Ledger, taker: Order, band: tuple[int, int] | None, now: datetime) -> list[Order]:
    """The resting orders on the other side that `taker` could reach, in price-time priority."""
    limit = reach(taker.side, taker.type, taker.price, band)
    maker_side = "sell" if taker.side == "buy" else "buy"
    return await resting(session, ledger, taker.listing_id, taker.plan_id, maker_side, limit, taker.quantity, {taker.participant_id}, now)


def reach(side: str, order_type: str, price: int | None, band: tuple[int, int] | None) -> int | None:
    """The worst price a taker may trade at: its limit, or for a market order the band's edge
    (None: any price)."""
    if order_type == "limit":
        return price
    if band is None:
        return None
    return band[1] if side == "buy" else band[0]


async def resting(
    session: AsyncSession, ledger: Ledger, listing_id: str, plan_id: str, maker_side: str, limit: int | None, need: int,
    owners: set[str], now: datetime, *, first_page: list[Order] | None = None,
) -> list[Order]:
    """Resting orders of one side of a book in price-time priority, as deep as takers of
    quantity `need` and limit `limit` (None: any price) could reach: pages are read until they
    cover `need` (not counting the takers' `owners`' orders, which self-trade prevention may
    skip) and one order beyond the limit is seen, so matching gives exactly what the whole
    book would, without reading the whole book. Lapsed orders met on the way leave the book
    and give their holds back. `first_page`: the first page, read already (`orders_and_first_pages`)."""
    found: list[Order] = []
    covered = 0
    after: Order | None = None  # the last order read: the next page starts after it
    size = MAKERS_FIRST_PAGE
    while True:
        # Pages grow: most takers reach a few orders, and every row read costs the same.
        size, asked = min(size * 2, MAKERS_PAGE), min(size, MAKERS_PAGE)
        if first_page is not None:
            page, first_page = first_page, None
        else:
            page = list((await session.execute(_page_query(listing_id, plan_id, maker_side, after).limit(asked))).scalars())
        if page:
            after = page[-1]
        # An order this transaction cancelled without writing it yet (the order desk writes its
        # rows at the end) is read as stored, open, but the session keeps it as cancelled.
        live = await _expire(session, ledger, [order for order in page if order.status == "open"], now)
        found.extend(live)
        for maker in live:
            if maker.participant_id not in owners:
                covered += maker.remaining
        beyond = bool(live) and limit is not None and (live[-1].price > limit if maker_side == "sell" else live[-1].price < limit)  # type: ignore[operator]
        if len(page) < asked or covered >= need or beyond:
            return found


def _page_query(listing_id: str, plan_id: str, maker_side: str, after: Order | None) -> sa.Select[tuple[Order]]:
    """The resting orders after `after` in priority (all of them for None). Built only when a
    page is read: a statement costs a third of a millisecond to build, and the batch's first
    pages are read already (`orders_and_first_pages`)."""
    query = _resting_query(listing_id, plan_id, maker_side)
    if after is None:
        return query
    # Keyset, not offset: expiring orders of a page changes what an offset counts.
    better = Order.price > after.price if maker_side == "sell" else Order.price < after.price  # type: ignore[operator]
    return query.where(sa.or_(better, sa.and_(Order.price == after.price, Order.seq > after.seq)))


def _resting_query(listing_id: str, plan_id: str, maker_side: str) -> sa.Select[tuple[Order]]:
    priority = (Order.price.asc() if maker_side == "sell" else Order.price.desc(), Order.seq.asc())  # type: ignore[union-attr]
    return (
        sa.select(Order)
        .where(Order.listing_id == listing_id, Order.plan_id == plan_id, Order.side == maker_side, Order.status == "open",
               Order.auction_id.is_(None))  # type: ignore[union-attr]
        .order_by(*priority)
    )


_ORDER_COLUMNS = ", ".join(f"o.{column.name}" for column in Order.__table__.columns)  # type: ignore[attr-defined]
_FIRST_PAGE_OF = """
    SELECT {columns} FROM unnest(CAST(:{side}_listings AS VARCHAR[]), CAST(:{side}_plans AS VARCHAR[])) AS wanted(listing_id, plan_id)
    CROSS JOIN LATERAL (
        SELECT * FROM orders
        WHERE orders.listing_id = wanted.listing_id AND orders.plan_id = wanted.plan_id AND orders.side = '{side}'
          AND orders.status = 'open' AND orders.auction_id IS NULL
        ORDER BY orders.price {direction}, orders.seq ASC LIMIT :page
    ) AS o"""
# Orders by id (read again under their books' locks) and the first page `resting` reads of many
# book sides, in one statement (PostgreSQL; the order desk's): each row says which part it
# answers. One statement shape for any set of book sides, each side's page read in its own index
# order: a UNION of one SELECT per side was a new statement, compiled afresh, nearly every batch.
ORDERS_AND_FIRST_PAGES_TEXT = (
    f"SELECT {_ORDER_COLUMNS}, 'order' AS part FROM orders AS o WHERE o.id = ANY(CAST(:ids AS VARCHAR[]))\nUNION ALL\n"
    + _FIRST_PAGE_OF.format(columns=_ORDER_COLUMNS + ", 'page' AS part", side="sell", direction="ASC") + "\nUNION ALL\n"
    + _FIRST_PAGE_OF.format(columns=_ORDER_COLUMNS + ", 'page' AS part", side="buy", direction="DESC")
)
_ORDERS_AND_FIRST_PAGES = sa.select(Order, sa.column("part", sa.Text())).from_statement(
    sa.text(ORDERS_AND_FIRST_PAGES_TEXT).columns(*Order.__table__.columns, sa.column("part", sa.Text())))  # type: ignore[attr-defined]


def orders_and_first_pages_parameters(order_ids: list[str], sides: list[tuple[str, str, str]]) -> dict[str, Any]:
    parameters: dict[str, Any] = {"ids": order_ids, "page": MAKERS_FIRST_PAGE}
    for maker_side in ("sell", "buy"):
        parameters[f"{maker_side}_listings"] = [listing_id for listing_id, _, side in sides if side == maker_side]
        parameters[f"{maker_side}_plans"] = [plan_id for _, plan_id, side in sides if side == maker_side]
    return parameters


async def orders_and_first_pages(
    session: AsyncSession, order_ids: list[str], sides: list[tuple[str, str, str]]
) -> tuple[dict[str, Order], dict[tuple[str, str, str], list[Order]]]:
    """The orders `order_ids`, as stored now (the session's copies refreshed), and the first
    page `resting` reads of each of `sides` ((listing, plan, maker side)), in one round trip."""
    if not order_ids and not sides:
        return {}, {}
    parameters = orders_and_first_pages_parameters(order_ids, sides)
    return orders_and_pages_of(await session.execute(_ORDERS_AND_FIRST_PAGES, parameters, execution_options={"populate_existing": True}), sides)


def orders_and_pages_of(
    rows: Iterable[tuple[Order, str]], sides: list[tuple[str, str, str]]
) -> tuple[dict[str, Order], dict[tuple[str, str, str], list[Order]]]:
    """The rows of `ORDERS_AND_FIRST_PAGES_TEXT` as the orders by id and the pages by side."""
    orders: dict[str, Order] = {}
    pages: dict[tuple[str, str, str], list[Order]] = {side: [] for side in sides}
    for order, part in rows:
        if part == "order":
            orders[order.id] = order
        else:
            pages[(order.listing_id, order.plan_id, order.side)].append(order)
    for (_, _, side), page in pages.items():  # UNION ALL promises no order: priority again
        page.sort(key=lambda o: (o.price if side == "sell" else -(o.price or 0), o.seq))
    return orders, pages


async def _expire(session: AsyncSession, ledger: Ledger, orders: list[Order], now: datetime) -> list[Order]:
    """Lapsed resting orders leave the book and give their holds back before anything matches."""
    lapsed = [o for o in orders if o.expires_at is not None and o.expires_at <= now]
    releases = [t for o in lapsed if (t := _release_transfer(o, "expired")) is not None]
    if releases:
        await post_one(session, ledger, JournalIn(transfers=releases), now)
    for order in lapsed:
        order.status, order.reason, order.updated_at = "expired", "its lifetime ended", now
        session.add(order)
    return [o for o in orders if o not in lapsed]


async def party_volumes(session: AsyncSession, rules: ActiveRules, parties: set[str], now: datetime) -> dict[str, int]:
    """This month's volumes of `parties`, when a quota fee tier depends on them (else none)."""
    if not any(trading.tiered_sides(rules.rulebook, "quota")) or not parties:
        return {}
    query = sa.select(MonthlyVolume.participant_id, MonthlyVolume.amount).where(
        MonthlyVolume.participant_id.in_(in_list(parties)), MonthlyVolume.month_start == billing.month_of(now)[0]  # type: ignore[attr-defined]
    )
    return {participant: int(amount) for participant, amount in (await session.execute(query)).all()}


async def _trade_quota(session: AsyncSession, ledger: Ledger, rules: ActiveRules, listing: Listing, plan: dict[str, Any], order: Order, book_row: Book, now: datetime) -> None:
    signer = await ledger.active_signer(session, now)
    market = quota.Market(rules=rules, listing=listing, plan=plan, signer=signer, now=now, volumes={})
    makers = await _makers(session, ledger, order, market.band, now)
    market.volumes = await party_volumes(session, rules, {order.participant_id, listing.vendor_id, *(m.participant_id for m in makers)}, now)
    market.rest(makers)
    traded = quota.trade(market, order)
    session.add_all([*traded.touched, *traded.contracts, *traded.trades])
    if traded.trades:
        await surveillance.circuit_breaker(session, rules, book_row, now)
    # The ledger comes last: its lock serialises every money movement until commit, so the
    # less that runs after it, the more orders the exchange carries.
    if traded.journal:
        await post_one(session, ledger, JournalIn(transfers=traded.journal), now)


# ── cancelling, reading ──


async def _load_order(session: AsyncSession, caller: Caller, order_id: str, *, for_update: bool = False) -> Order:
    order = await session.get(Order, order_id, with_for_update=for_update and session.bind.dialect.name == "postgresql")
    if order is None or not (order.participant_id == caller.id or caller.has("operator", "regulator")):
        raise NotFound(f"No order {order_id!r}.")
    return order


async def cancel(session: AsyncSession, ledger: Ledger, caller: Caller, order_id: str, now: datetime) -> OrderOut:
    order = await _load_order(session, caller, order_id)
    if not (order.participant_id == caller.id or caller.has("operator")):
        raise Forbidden("Only its owner or an operator cancels an order.")
    await lock_book(session, order.listing_id, now)
    await session.refresh(order)
    if order.status != "open":
        raise InvalidTransition(f"Order {order.id} is {order.status}; only an open order can be cancelled.")
    if order.auction_id is not None:
        from exchange.orders.auctions import ensure_bids_open

        await ensure_bids_open(session, order.auction_id, now)
    release = cancelled(order, caller, now)
    if release is not None:
        await post_one(session, ledger, JournalIn(transfers=[release]), now)
    session.add(order)
    await session.flush()
    return await to_out(session, order)


def cancelled(order: Order, caller: Caller, now: datetime) -> Transfer | None:
    """`order` cancelled by `caller` (checked already): the transfer giving its hold back, if any.
    The single-order path and the order desk both cancel this way."""
    release = _release_transfer(order, "cancelled")
    order.status = "cancelled"
    order.reason = "cancelled by its owner" if order.participant_id == caller.id else f"cancelled by operator {caller.id}"
    order.updated_at = now
    return release


async def to_out(session: AsyncSession, order: Order) -> OrderOut:
    side_column = Trade.buy_order_id if order.side == "buy" else Trade.sell_order_id
    trades = list((await session.execute(sa.select(Trade).where(side_column == order.id).order_by(Trade.seq, Trade.id))).scalars())
    return order_out(order, trades)


def order_out(order: Order, trades: Sequence[Trade]) -> OrderOut:
    """`order` as the API shows it, with its trades in the order they were made."""
    fills = [FillOut(price=t.price, quantity=t.quantity, contract_id=t.contract_id, at=t.at) for t in trades]
    return OrderOut(
        id=order.id, status=order.status, listing_id=order.listing_id, plan_id=order.plan_id, plan_kind=order.plan_kind,
        participant_id=order.participant_id, side=order.side, type=order.type, price=order.price, quantity=order.quantity,
        filled=order.quantity - order.remaining if order.status != "lost" else 0, remaining=order.remaining,
        time_in_force=order.time_in_force, purpose=order.purpose, use_case=order.use_case, held=order.held, fills=fills,
        contract_ids=[f.contract_id for f in fills], auction_id=order.auction_id, reason=order.reason,
        rulebook_hash=order.rulebook_hash, expires_at=order.expires_at, created_at=order.created_at, updated_at=order.updated_at,
    )


async def get(session: AsyncSession, caller: Caller, order_id: str) -> OrderOut:
    return await to_out(session, await _load_order(session, caller, order_id))


async def page(session: AsyncSession, caller: Caller, status: str | None, listing_id: str | None, cursor: str | None, limit: int) -> OrderPage:
    query = sa.select(Order).order_by(Order.id.desc()).limit(limit + 1)  # type: ignore[attr-defined]
    if not caller.has("operator", "regulator"):
        query = query.where(Order.participant_id == caller.id)
    if status is not None:
        query = query.where(Order.status == status)
    if listing_id is not None:
        query = query.where(Order.listing_id == listing_id)
    if cursor is not None:
        query = query.where(Order.id < cursor)
    rows = list((await session.execute(query)).scalars())
    items = rows[:limit]
    return OrderPage(items=[await to_out(session, o) for o in items], next_cursor=items[-1].id if len(rows) > limit else None)


async def record_rejection(session: AsyncSession, caller: Caller, body: OrderIn, error: RuleViolated, now: datetime) -> None:
    """Refused orders are kept too, with the rule-set hash and the rules that refused them."""
    listing = await session.get(Listing, body.listing_id)
    if listing is None:
        return
    plan = next((p for p in listing.content.get("plans", []) if p.get("id") == body.plan_id), {})
    order_id = new_id("ord")
    facts = getattr(error, "facts", None)
    if facts is not None:
        refusing = [Violation(v["rule"], v["message"], v["source"]) for v in error.extensions.get("violations", [])]
        await shadow.judge(session, facts, refusing, order_id=order_id, participant_id=caller.id, listing_id=listing.id, now=now)
    session.add(Order(
        id=order_id, listing_id=listing.id, revision=listing.revision, plan_id=body.plan_id, plan_kind=str(plan.get("kind", "")),
        participant_id=caller.id, side=body.side, type=body.type, price=body.price, quantity=body.quantity, remaining=body.quantity,
        time_in_force=body.time_in_force, purpose=body.purpose, status="rejected", seq=0,
        rulebook_hash=str(error.extensions.get("rulebook_hash", "")), reason=error.detail[:2000],
        violations=list(error.extensions.get("violations", [])), expires_at=body.expires_at, created_at=now, updated_at=now,
    ))


async def book_out(session: AsyncSession, rules: ActiveRules, listing_id: str, levels: int, now: datetime) -> BookOut:
    listing = await session.get(Listing, listing_id)
    if listing is None or listing.status != "listed":
        raise NotFound(f"No listed product {listing_id!r}.")
    plan = next((p for p in listing.content.get("plans", []) if p.get("kind") == "quota"), None)
    row = await session.get(Book, listing_id)
    status = row.status if row is not None else "open"
    if plan is None:
        return BookOut(listing_id=listing_id, plan_id=None, status=status, band=None, bids=[], asks=[])
    band = trading.price_band(rules.rulebook, _money(plan, "reference_price")[0])
    # Levels summed by the database; lapsed orders not yet swept are not on offer.
    sides: dict[str, list[Level]] = {}
    for side, order in (("buy", Order.price.desc()), ("sell", Order.price.asc())):  # type: ignore[union-attr]
        query = (
            sa.select(Order.price, sa.func.sum(Order.remaining), sa.func.count())
            .where(Order.listing_id == listing_id, Order.plan_id == plan["id"], Order.side == side, Order.status == "open",
                   Order.auction_id.is_(None), sa.or_(Order.expires_at.is_(None), Order.expires_at > now))  # type: ignore[union-attr, operator]
            .group_by(Order.price).order_by(order).limit(levels)
        )
        sides[side] = [Level(int(price), int(quantity), int(count)) for price, quantity, count in (await session.execute(query)).all()]
    return BookOut(listing_id=listing_id, plan_id=plan["id"], status=status, band=band, bids=sides["buy"], asks=sides["sell"])


async def trades(session: AsyncSession, listing_id: str, limit: int) -> TradePage:
    listing = await session.get(Listing, listing_id)
    if listing is None or listing.status != "listed":
        raise NotFound(f"No listed product {listing_id!r}.")
    query = sa.select(Trade).where(Trade.listing_id == listing_id).order_by(Trade.seq.desc(), Trade.id.desc()).limit(limit)  # type: ignore[attr-defined]
    return TradePage(items=[TradeOut(id=t.id, price=t.price, quantity=t.quantity, at=t.at) for t in (await session.execute(query)).scalars()])


async def halt(session: AsyncSession, caller: Caller, listing_id: str, reason: str | None, now: datetime, *, halted: bool) -> BookOut:
    if not caller.has("operator"):
        raise Forbidden("Only an operator halts or resumes trading.")
    listing = await session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"No listing {listing_id!r}.")
    book = await lock_book(session, listing_id, now)
    book.status, book.halted_reason, book.updated_at = ("halted", reason, now) if halted else ("open", None, now)
    session.add(book)
    await session.flush()
    return BookOut(listing_id=listing_id, plan_id=None, status=book.status, band=None, bids=[], asks=[])


async def expire_due(session: AsyncSession, ledger: Ledger, now: datetime, limit: int = 200) -> int:
    """Resting orders past their lifetime give their holds back (books also do this when they
    next match, so a late sweep changes nothing but how soon the money is free)."""
    listing_ids = sorted(
        (await session.execute(
            sa.select(Order.listing_id).where(Order.status == "open", Order.auction_id.is_(None), Order.expires_at <= now).distinct().limit(limit)  # type: ignore[union-attr, operator]
        )).scalars()
    )
    # Every book first, then the ledger once: an order takes its book and then the ledger, so
    # taking the ledger between two books could deadlock with it.
    for listing_id in listing_ids:
        await lock_book(session, listing_id, now)
    query = (
        sa.select(Order)
        .where(Order.listing_id.in_(listing_ids), Order.status == "open", Order.auction_id.is_(None), Order.expires_at <= now)  # type: ignore[union-attr, attr-defined, operator]
        .execution_options(populate_existing=True)
    )
    orders = list((await session.execute(query)).scalars())
    left = await _expire(session, ledger, orders, now)
    return len(orders) - len(left)


async def decide(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, order_id: str, approve: bool, reason: str | None, now: datetime) -> OrderOut:
    """The vendor approves (the contract is formed from the held money) or declines (the hold
    goes back) a buy that waits for its approval."""
    order = await session.get(Order, order_id)
    listing = await session.get(Listing, order.listing_id) if order is not None else None
    if order is None or listing is None or not (caller.id in (order.participant_id, listing.vendor_id) or caller.has("operator", "regulator")):
        raise NotFound(f"No order {order_id!r}.")
    if caller.id != listing.vendor_id:
        raise Forbidden("Only the listing's vendor approves or declines its buyers' orders.")
    await lock_book(session, listing.id, now)
    await session.refresh(order)
    if order.status != "pending_approval":
        raise InvalidTransition(f"Order {order.id} is {order.status}; only an order waiting for approval can be decided.")
    if order.expires_at is not None and order.expires_at <= now:
        raise InvalidTransition(f"Order {order.id} lapsed at {order.expires_at.isoformat()}: the approval window closed.")
    plan = next((p for p in listing.content.get("plans", []) if p.get("id") == order.plan_id), None)
    currency = _money(plan, "price")[1] if plan is not None and plan.get("kind") != "free" else "CNY"
    held = order.held
    release = _release_transfer(order, "approved" if approve else "declined")
    if not approve:
        if release is not None:
            await post_one(session, ledger, JournalIn(transfers=[release]), now)
        order.status, order.reason = "declined", f"declined by the vendor: {reason or 'no reason given'}"
    else:
        if plan is None or listing.status != "listed":
            raise InvalidTransition("The plan is no longer on sale; decline the order instead.")
        left = await _licences_left(session, listing)
        licences = 1 if plan["kind"] == "subscription" else order.quantity
        if left is not None and licences > left:
            raise Conflict(f"Only {left} licence(s) of listing {listing.id} remain.", remaining_licences=left)
        unit_price = int(order.price or 0)
        amount = unit_price * order.quantity
        buyer_fee, vendor_fee = await fees(session, rules, str(plan["kind"]), amount, order.participant_id, listing.vendor_id, now)
        buyer_fee = min(buyer_fee, max(0, held - amount))  # never more than was held at the order
        await _form_direct_contract(session, ledger, rules, listing, plan, order, unit_price, amount, buyer_fee, vendor_fee, currency, now,
                                    [release] if release is not None else [])
        order.reason = "approved by the vendor"
    order.updated_at = now
    session.add(order)
    await session.flush()
    return await to_out(session, order)


def _lapse_if_due(order: Order, now: datetime) -> Transfer | None:
    if order.status == "pending_approval" and order.expires_at is not None and order.expires_at <= now:
        order.status, order.reason = "lapsed", "the vendor did not decide in time"
        return _release_transfer(order, "lapsed")
    return None


async def lapse_due(session: AsyncSession, ledger: Ledger, now: datetime, limit: int = 200) -> int:
    query = sa.select(Order).where(Order.status == "pending_approval", Order.expires_at <= now).limit(limit)  # type: ignore[operator]
    due = list((await session.execute(query)).scalars())
    releases = [t for order in due if (t := _lapse_if_due(order, now)) is not None]
    if releases:
        await post_one(session, ledger, JournalIn(transfers=releases), now)
    for order in due:
        order.updated_at = now
        session.add(order)
    return len(due)


async def awaiting_approval(session: AsyncSession, caller: Caller) -> OrderPage:
    """Buys of the caller's listings that wait for its approval."""
    query = (
        sa.select(Order).join(Listing, Listing.id == Order.listing_id)
        .where(Listing.vendor_id == caller.id, Order.status == "pending_approval").order_by(Order.created_at).limit(PAGE_MAX)
    )
    return OrderPage(items=[await to_out(session, o) for o in (await session.execute(query)).scalars()], next_cursor=None)
