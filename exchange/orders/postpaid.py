"""Postpaid plans. Metered (先用后付): buying opens a contract within a credit limit; the vendor
reports usage in batches (each batch id once); each calendar month (Asia/Shanghai) is billed at
the plan's graduated tiers and settled from the buyer's balance; a buyer over the credit limit,
or with an unpaid bill, is suspended by rule until it pays. Revenue share (按收益分成): the
buyer reports each month's revenue; the vendor's share, never below the minimum, is charged, and
a corrected report charges or credits the difference (true-up)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound, TransferRefused
from exchange.core.ids import new_id
from exchange.orders import billing, contracts
from exchange.orders.schemas import BillOut, BillPage, RevenueIn, UsageAccepted, UsageIn
from exchange.rulebook import trading
from exchange.rulebook.store import ActiveRules
from exchange.settlement import posting
from exchange.settlement.ledger import Ledger
from exchange.settlement.posting import References, Transfer, TransferKind
from exchange.settlement.service import JournalIn, post_one
from exchange.tables import Bill, Contract, UsageBatch, UsageCycle, UsageRecord

CLOCK_SKEW = timedelta(minutes=5)
CREDIT_RULE = "settlement.metered_credit_limit_fen"
_RECORDS: sa.Table = UsageRecord.__table__  # type: ignore[assignment]


async def _calls(session: AsyncSession, contract_id: str, start: datetime, end: datetime) -> int:
    query = sa.select(sa.func.coalesce(sa.func.sum(UsageRecord.calls), 0)).where(
        UsageRecord.contract_id == contract_id, UsageRecord.at >= start, UsageRecord.at < end
    )
    return int((await session.execute(query)).scalar_one())


async def _open_cycle_calls(session: AsyncSession, contract_id: str, start: datetime) -> int:
    """The calls of the cycle (calendar month) starting at `start`, from its running total."""
    query = sa.select(UsageCycle.calls).where(UsageCycle.contract_id == contract_id, UsageCycle.cycle_start == start)
    return int((await session.execute(query)).scalar_one_or_none() or 0)


async def _count_calls(session: AsyncSession, contract_id: str, rows: Iterable[dict[str, Any]], now: datetime) -> None:
    """Add stored records' calls to their months' running totals."""
    start, end = billing.month_of(now)  # nearly every record falls in this month: skip the zone arithmetic for those
    by_month: dict[datetime, int] = {}
    for row in rows:
        month = start if start <= row["at"] < end else billing.month_of(row["at"])[0]
        by_month[month] = by_month.get(month, 0) + row["calls"]
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    for month, calls in sorted(by_month.items()):
        statement = insert(UsageCycle).values(contract_id=contract_id, cycle_start=month, calls=calls)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["contract_id", "cycle_start"], set_={"calls": UsageCycle.calls + statement.excluded.calls}
        ))


def _suspend(contract: Contract, reason: str, now: datetime) -> None:
    if contract.lifecycle == "active":
        contract.lifecycle, contract.end_reason, contract.updated_at = "suspended", reason, now


async def report_usage(session: AsyncSession, rules: ActiveRules, caller: Caller, contract_id: str, body: UsageIn, now: datetime) -> UsageAccepted:
    contract = await contracts.load(session, caller, contract_id, for_update=True)
    if contract.plan_kind != "metered":
        raise InvalidTransition(f"Contract {contract.id} is not metered.")
    if caller.id != contract.vendor_id:
        raise Forbidden("Only the vendor reports usage of its data.")
    start = billing.month_of(now)[0]
    limit = rules.rulebook.settlement.metered_credit_limit_fen
    if await session.get(UsageBatch, (contract.id, body.batch_id)) is not None:
        calls = await _open_cycle_calls(session, contract.id, start)
        return UsageAccepted(contract_id=contract.id, batch_id=body.batch_id, accepted=0, duplicate_batch=True, cycle_start=start,
                             cycle_calls=calls, exposure=billing.credit_exposure(calls, contract.content["plan"]), credit_limit=limit,
                             lifecycle=contract.lifecycle)
    valid_from = datetime.fromtimestamp(int(contract.content.get("valid_from", contract.content["created_at"])) / 1000, UTC)
    rows: dict[str, dict[str, Any]] = {}
    latest, term_end = now + CLOCK_SKEW, contracts.valid_until(contract)
    for position, record in enumerate(body.records):
        if record.at.tzinfo is None:
            raise InvalidInput(f"records[{position}].at: give a time zone", errors=[{"field": f"records[{position}].at", "reason": "time zone required"}])
        if not valid_from <= record.at <= latest or record.at >= term_end:
            raise InvalidInput(
                f"records[{position}].at: usage must fall within the contract's term and not in the future",
                errors=[{"field": f"records[{position}].at", "reason": "outside the contract's term"}],
            )
        rows.setdefault(record.record_id, {"contract_id": contract.id, "batch_id": body.batch_id, "record_id": record.record_id,
                                           "at": record.at.astimezone(UTC), "calls": record.calls})
    session.add(UsageBatch(contract_id=contract.id, batch_id=body.batch_id, records=len(rows),
                           calls=sum(r["calls"] for r in rows.values()), received_at=now))
    await session.flush()
    await session.execute(_RECORDS.insert(), list(rows.values()))
    await _count_calls(session, contract.id, rows.values(), now)
    calls = await _open_cycle_calls(session, contract.id, start)
    exposure = billing.credit_exposure(calls, contract.content["plan"])
    if exposure > limit:
        _suspend(contract, f"{CREDIT_RULE}: owes {exposure} fen in the open cycle, above the limit of {limit}", now)
        session.add(contract)
    return UsageAccepted(contract_id=contract.id, batch_id=body.batch_id, accepted=len(rows), duplicate_batch=False, cycle_start=start,
                         cycle_calls=calls, exposure=exposure, credit_limit=limit, lifecycle=contract.lifecycle)


async def _charge(
    session: AsyncSession, ledger: Ledger, rules: ActiveRules, contract: Contract, bill: Bill, amount: int, now: datetime
) -> None:
    """Pay a bill from the buyer's balance to the vendor, fees to the exchange, in one journal;
    a negative amount (a true-up credit) goes back from the vendor to the buyer."""
    from exchange.orders.service import fees

    currency = contract.currency
    buyer, vendor = posting.available(contract.buyer_id, currency), posting.available(contract.vendor_id, currency)
    refs = References(contract=contract.id, listing=contract.listing_id, note=f"bill {bill.id}")
    transfers: list[Transfer] = []
    if amount > 0:
        buyer_fee, vendor_fee = await fees(session, rules, contract.plan_kind, amount, contract.buyer_id, contract.vendor_id, now)
        bill.buyer_fee, bill.vendor_fee = buyer_fee, vendor_fee
        transfers.append(Transfer(id=f"{bill.id}.pay", kind=TransferKind.settle, debit_account=buyer, credit_account=vendor, amount=amount, currency=currency, references=refs))
        if vendor_fee:
            transfers.append(Transfer(id=f"{bill.id}.vendor-fee", kind=TransferKind.fee, debit_account=vendor, credit_account=posting.fees(currency), amount=vendor_fee, currency=currency, references=refs))
        if buyer_fee:
            transfers.append(Transfer(id=f"{bill.id}.buyer-fee", kind=TransferKind.fee, debit_account=buyer, credit_account=posting.fees(currency), amount=buyer_fee, currency=currency, references=refs))
        shares = await contracts.fee_shares(session, contract, buyer_fee + vendor_fee)
        for share, recipient, share_amount in shares:
            transfers.append(Transfer(id=f"{bill.id}.share.{share}", kind=TransferKind.fee, debit_account=posting.fees(currency),
                                      credit_account=posting.available(recipient, currency), amount=share_amount, currency=currency, references=refs))
        bill.detail = {**bill.detail, "fee_shares": [{"share": s, "participant_id": r, "amount": a} for s, r, a in shares]}
    elif amount < 0:
        transfers.append(Transfer(id=f"{bill.id}.credit", kind=TransferKind.refund, debit_account=vendor, credit_account=buyer, amount=-amount, currency=currency, references=refs))
    if not transfers:
        bill.status = "paid"
        return
    try:
        async with session.begin_nested():
            posted = await post_one(session, ledger, JournalIn(transfers=transfers), now)
        bill.status, bill.journal_id = "paid", posted.journal_id
    except TransferRefused as refused:
        bill.status = "unpaid"
        bill.detail = {**bill.detail, "unpaid_because": refused.detail}
        # An unpaid bill outranks a credit-limit suspension: only paying ends it.
        contract.lifecycle, contract.end_reason, contract.updated_at = "suspended", f"unpaid bill {bill.id}: {refused.detail}", now


async def bill_due(session: AsyncSession, ledger: Ledger, rules: ActiveRules, now: datetime, limit: int = 200) -> int:
    """Bill every complete metered cycle not yet billed (and the last, partial one of an ended contract)."""
    query = sa.select(Contract).where(Contract.plan_kind == "metered").order_by(Contract.id).limit(limit)
    billed = 0
    for contract in list((await session.execute(query)).scalars()):
        # Bills left unpaid are tried again first: the buyer may have paid money in since.
        for bill in list((await session.execute(sa.select(Bill).where(Bill.contract_id == contract.id, Bill.status == "unpaid").order_by(Bill.period_start))).scalars()):
            await _charge(session, ledger, rules, contract, bill, bill.amount, now)
            bill.updated_at = now
            session.add(bill)
            if bill.status == "paid" and contract.lifecycle == "suspended" and (contract.end_reason or "").startswith(f"unpaid bill {bill.id}"):
                contract.lifecycle, contract.end_reason = "active", None
        valid_from = datetime.fromtimestamp(int(contract.content.get("valid_from", contract.content["created_at"])) / 1000, UTC)
        term_end = min(contracts.valid_until(contract), contract.ended_at or contracts.valid_until(contract))
        start = contract.billed_through or valid_from
        upto = min(now, term_end)
        for cycle_start, partial_end in billing.billing_cycles(start, upto) if start < upto else []:
            month_end = billing.month_of(cycle_start)[1]
            cycle_end = min(month_end, term_end)
            if cycle_end > now or partial_end < cycle_end:
                break  # the open cycle is billed when it closes (or when the contract ends)
            calls = await _calls(session, contract.id, cycle_start, cycle_end)
            priced = billing.metered_bill(contract.content["plan"], calls)
            bill = Bill(id=new_id("bil"), contract_id=contract.id, kind="metered", period_start=cycle_start, period_end=cycle_end,
                        quantity=calls, amount=priced.total_fen, buyer_fee=0, vendor_fee=0, status="unpaid",
                        detail=msgspec.to_builtins(priced), created_at=now, updated_at=now)
            session.add(bill)
            await session.flush()
            await _charge(session, ledger, rules, contract, bill, priced.total_fen, now)
            contract.billed_through = cycle_end
            billed += 1
        unpaid = (await session.execute(sa.select(sa.func.count()).select_from(Bill).where(Bill.contract_id == contract.id, Bill.status == "unpaid"))).scalar_one()
        if contract.lifecycle == "suspended" and not unpaid and contract.end_reason and contract.end_reason.startswith(CREDIT_RULE):
            open_start, open_end = billing.month_of(now)
            exposure = billing.credit_exposure(await _open_cycle_calls(session, contract.id, open_start), contract.content["plan"])
            if exposure <= rules.rulebook.settlement.metered_credit_limit_fen:
                contract.lifecycle, contract.end_reason = "active", None  # the bill that exceeded the limit is paid
        session.add(contract)
    await session.flush()
    return billed


async def report_revenue(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, contract_id: str, body: RevenueIn, now: datetime) -> BillOut:
    contract = await contracts.load(session, caller, contract_id, for_update=True)
    if contract.plan_kind != "revenue_share":
        raise InvalidTransition(f"Contract {contract.id} is not a revenue share.")
    if caller.id != contract.buyer_id:
        raise Forbidden("The buyer reports its revenue.")
    year, month = (int(part) for part in body.period.split("-"))
    start, end = billing.month_of(datetime(year, month, 1, 12, tzinfo=ZoneInfo(billing.EXCHANGE_ZONE)))
    if start >= now:
        raise InvalidInput("period: revenue can be reported only for a month that has begun", errors=[{"field": "period", "reason": "in the future"}])
    plan = contract.content["plan"]
    previously = int((await session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Bill.amount), 0)).where(
            Bill.contract_id == contract.id, Bill.kind == "revenue_share", Bill.period_start == start, Bill.status == "paid")
    )).scalar_one())
    priced = billing.revenue_share_bill(int(plan["share_bps"]), int(plan["minimum"]["amount"]), body.revenue, previously)
    bill = Bill(id=new_id("bil"), contract_id=contract.id, kind="revenue_share", period_start=start, period_end=end, quantity=body.revenue,
                amount=priced.true_up_fen, buyer_fee=0, vendor_fee=0, status="unpaid", detail=msgspec.to_builtins(priced),
                created_at=now, updated_at=now)
    session.add(bill)
    await session.flush()
    await _charge(session, ledger, rules, contract, bill, priced.true_up_fen, now)
    session.add(contract)
    await session.flush()
    return bill_out(bill)


def bill_out(bill: Bill) -> BillOut:
    return BillOut(id=bill.id, contract_id=bill.contract_id, kind=bill.kind, period_start=bill.period_start, period_end=bill.period_end,
                   quantity=bill.quantity, amount=bill.amount, buyer_fee=bill.buyer_fee, vendor_fee=bill.vendor_fee, status=bill.status,
                   detail=bill.detail, created_at=bill.created_at)


async def bills(session: AsyncSession, caller: Caller, contract_id: str) -> BillPage:
    contract = await contracts.load(session, caller, contract_id)
    rows = (await session.execute(sa.select(Bill).where(Bill.contract_id == contract.id).order_by(Bill.period_start, Bill.created_at))).scalars()
    return BillPage(items=[bill_out(b) for b in rows])


async def open_contract(session: AsyncSession, ledger: Ledger, rules: ActiveRules, listing: Any, plan: dict[str, Any], order: Any, now: datetime) -> None:
    """Buying a metered or revenue-share plan opens the contract; nothing is paid up front."""
    from exchange.orders.service import _licences_left
    from exchange.tables import Trade

    left = await _licences_left(session, listing)
    if left is not None and left < 1:
        raise Conflict(f"No licence of listing {listing.id} remains.", remaining_licences=0)
    currency = str((plan.get("minimum") or next(iter(plan.get("tiers", [])), {}).get("price") or {}).get("currency", "CNY"))
    order.price, order.quantity, order.remaining = 0, 1, 1
    session.add(order)
    await session.flush()
    terms = contracts.Terms(
        listing=listing, revision_content=listing.content, plan=plan, buyer_id=order.participant_id, vendor_id=listing.vendor_id,
        order_id=order.id, quantity=1, unit_price=0, amount=0, buyer_fee=0, vendor_fee=0, currency=currency, purpose=order.purpose,
        rules_hash=rules.hash,
    )
    contract, _ = await contracts.create(session, ledger, terms, confirm_window=trading.settlement_windows(rules.rulebook)[0], now=now)
    contract.status = "postpaid"  # nothing is held: bills settle from the buyer's balance as they fall due
    session.add(Trade(id=new_id("trd"), listing_id=listing.id, contract_id=contract.id, buy_order_id=order.id, price=0, quantity=1, seq=order.seq, at=now))
    order.remaining, order.status = 0, "filled"


async def _bill(session: AsyncSession, caller: Caller, bill_id: str) -> tuple[Bill, Contract]:
    bill = await session.get(Bill, bill_id)
    if bill is None:
        raise NotFound(f"No bill {bill_id!r}.")
    contract = await contracts.load(session, caller, bill.contract_id, for_update=True)
    return bill, contract


async def dispute_bill(session: AsyncSession, rules: ActiveRules, caller: Caller, bill_id: str, reason: str, now: datetime) -> BillOut:
    """A party disputes a bill (usage counted wrong, revenue under-reported) within the rules'
    dispute window; an operator then upholds it or refunds it."""
    bill, contract = await _bill(session, caller, bill_id)
    if caller.id not in (contract.buyer_id, contract.vendor_id):
        raise Forbidden("Only a party to the contract disputes its bills.")
    window = trading.settlement_windows(rules.rulebook)[2]
    if bill.status not in ("paid", "unpaid"):
        raise InvalidTransition(f"Bill {bill.id} is {bill.status}.")
    if now > bill.created_at + window:
        raise InvalidTransition(f"The dispute window of bill {bill.id} closed at {(bill.created_at + window).isoformat()} (settlement.toml: dispute_hours).")
    bill.detail = {**bill.detail, "dispute": {"by": caller.id, "reason": reason, "at": now.isoformat(), "status_before": bill.status}}
    bill.status, bill.updated_at = "disputed", now
    session.add(bill)
    await session.flush()
    return bill_out(bill)


async def resolve_bill(session: AsyncSession, ledger: Ledger, caller: Caller, bill_id: str, outcome: str, reason: str, now: datetime) -> BillOut:
    bill, contract = await _bill(session, caller, bill_id)
    if not caller.has("operator"):
        raise Forbidden("Only an operator resolves a disputed bill.")
    if bill.status != "disputed":
        raise InvalidTransition(f"Bill {bill.id} is {bill.status}, not disputed.")
    before = bill.detail["dispute"]["status_before"]
    if outcome == "refund" and before == "paid" and bill.amount > 0:
        currency = contract.currency
        refs = References(contract=contract.id, listing=contract.listing_id, note=f"bill {bill.id} refunded: {reason}"[:200])
        # The buyer gets back all it paid: the vendor its proceeds, the exchange both fees.
        buyer = posting.available(contract.buyer_id, currency)
        back = [Transfer(id=f"{bill.id}.refund", kind=TransferKind.refund, debit_account=posting.available(contract.vendor_id, currency),
                         credit_account=buyer, amount=bill.amount - bill.vendor_fee, currency=currency, references=refs)]
        if bill.buyer_fee + bill.vendor_fee:
            back.append(Transfer(id=f"{bill.id}.refund-fees", kind=TransferKind.refund, debit_account=posting.fees(currency),
                                 credit_account=buyer, amount=bill.buyer_fee + bill.vendor_fee, currency=currency, references=refs))
        await post_one(session, ledger, JournalIn(transfers=[t for t in back if t.amount]), now)
        bill.status = "refunded"
    elif outcome == "refund":
        bill.status = "cancelled"  # never paid: nothing to give back, and nothing more to collect
    else:
        bill.status = before
    bill.detail = {**bill.detail, "resolution": {"by": caller.id, "outcome": outcome, "reason": reason, "at": now.isoformat()}}
    bill.updated_at = now
    session.add(bill)
    await session.flush()
    return bill_out(bill)
