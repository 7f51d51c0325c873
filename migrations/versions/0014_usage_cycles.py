"""Running totals of metered calls per contract and calendar month.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.orders.billing import month_of
from exchange.tables import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    cycles = op.create_table(
        "usage_cycles",
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), primary_key=True),
        sa.Column("cycle_start", UTCDateTime(), primary_key=True),
        sa.Column("calls", sa.BigInteger(), nullable=False),
    )
    records = sa.table("usage_records", sa.column("contract_id", sa.String), sa.column("at", UTCDateTime()), sa.column("calls", sa.BigInteger))
    totals: dict[tuple[str, object], int] = defaultdict(int)
    for contract_id, at, calls in op.get_bind().execute(sa.select(records.c.contract_id, records.c.at, records.c.calls)):
        totals[(contract_id, month_of(at)[0])] += int(calls)
    if totals:
        op.bulk_insert(cycles, [{"contract_id": c, "cycle_start": m, "calls": n} for (c, m), n in totals.items()])


def downgrade() -> None:
    op.drop_table("usage_cycles")
