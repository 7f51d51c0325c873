"""Monthly trading volumes, kept in step with contracts by the session itself.

A fee tier depends on a party's volume this calendar month: the sum of its contracts' amounts,
as buyer or as vendor, leaving out refunded ones. Summing that on every trade costs more as the
month fills, so `monthly_volumes` keeps the sum: before each flush, every new or changed
contract adds the difference it makes (its amount counts while it is not refunded) to its
parties' rows for the month it was made in, in the same transaction. Whatever path creates or
refunds a contract, the row follows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, attributes

from exchange.orders.billing import month_of
from exchange.tables import Contract, MonthlyVolume, Rows

_VOLUMES: sa.Table = MonthlyVolume.__table__  # type: ignore[assignment]


def counted(amount: int | None, status: str | None) -> int:
    """What a contract adds to its parties' volumes."""
    return 0 if status == "refunded" or amount is None else int(amount)


def parties(contract: Contract) -> set[str]:
    return {contract.buyer_id, contract.vendor_id}  # a set: one party on both sides counts once


async def monthly_volume(session: AsyncSession, participant_id: str, now: datetime) -> int:
    """A party's volume in the month of `now`, as buyer and as vendor."""
    query = sa.select(MonthlyVolume.amount).where(MonthlyVolume.participant_id == participant_id, MonthlyVolume.month_start == month_of(now)[0])
    return int((await session.execute(query)).scalar_one_or_none() or 0)


def _before(contract: Contract) -> int:
    """What the stored row of `contract` counted before this flush."""
    state = sa.inspect(contract)
    amount = attributes.get_history(contract, "amount")
    status = attributes.get_history(contract, "status")
    old_amount = amount.deleted[0] if amount.deleted else contract.amount
    old_status = status.deleted[0] if status.deleted else contract.status
    return 0 if state.pending else counted(old_amount, old_status)


def _add(deltas: dict[tuple[str, datetime], int], contract: Contract, change: int) -> None:
    if change:
        month = month_of(contract.created_at)[0]
        for party in parties(contract):
            deltas[(party, month)] += change


# PostgreSQL: one statement shape for any number of rows (arrays), compiled once; a many-row
# VALUES statement is compiled afresh every time.
_UPSERT_PG = sa.text("""
    INSERT INTO monthly_volumes (participant_id, month_start, amount)
    SELECT participant_id, month_start, amount
    FROM unnest(CAST(:parties AS VARCHAR[]), CAST(:months AS TIMESTAMPTZ[]), CAST(:amounts AS BIGINT[])) AS given(participant_id, month_start, amount)
    ORDER BY participant_id, month_start
    ON CONFLICT (participant_id, month_start) DO UPDATE SET amount = monthly_volumes.amount + excluded.amount
""")


def _upsert(dialect: str, deltas: dict[tuple[str, datetime], int]) -> tuple[sa.Executable, dict[str, Any]]:
    # One statement (executemany with ON CONFLICT is not portable across drivers); the rows are
    # distinct and sorted, so concurrent flushes lock them in the same order.
    ordered = sorted(deltas.items())
    if dialect == "postgresql":
        return _UPSERT_PG, {"parties": [party for (party, _), _ in ordered], "months": [month for (_, month), _ in ordered],
                            "amounts": [change for _, change in ordered]}
    rows = [{"participant_id": party, "month_start": month, "amount": change} for (party, month), change in ordered]
    statement = sqlite.insert(_VOLUMES).values(rows)
    return statement.on_conflict_do_update(
        index_elements=["participant_id", "month_start"], set_={"amount": _VOLUMES.c.amount + statement.excluded.amount}
    ), {}


@event.listens_for(Session, "before_flush")
def _keep_volumes(session: Session, _context: Any, _instances: Any) -> None:
    deltas: dict[tuple[str, datetime], int] = defaultdict(int)
    for contract in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(contract, Contract):
            after = 0 if contract in session.deleted else counted(contract.amount, contract.status)
            _add(deltas, contract, after - _before(contract))
    if deltas:
        session.connection().execute(*_upsert(session.get_bind().dialect.name, deltas))


def inserted(contracts: list[Contract]) -> Rows:
    """What contracts stored without the session's unit of work (`tables.write_together`) add
    to their parties' volumes, as the flush adds it for the contracts it writes: rows for
    `write_together`, in key order (concurrent writers lock them in the same order)."""
    deltas: dict[tuple[str, datetime], int] = defaultdict(int)
    for contract in contracts:
        _add(deltas, contract, counted(contract.amount, contract.status))
    rows = [{"participant_id": party, "month_start": month, "amount": change} for (party, month), change in sorted(deltas.items())]
    return Rows(_VOLUMES, rows, adding="amount")
