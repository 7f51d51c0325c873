"""Order path: indexes for reading a book side in priority order and for the circuit
breaker's window, and monthly volumes kept with contracts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.orders.billing import month_of
from exchange.tables import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_book", "orders", ["listing_id", "plan_id", "side", "status", "price", "seq"])
    op.create_index("ix_trades_listing_at", "trades", ["listing_id", "at"])
    volumes = op.create_table(
        "monthly_volumes",
        sa.Column("participant_id", sa.String(40), primary_key=True),
        sa.Column("month_start", UTCDateTime(), primary_key=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )
    # Existing contracts count as the flush hook would have counted them.
    contracts = sa.table(
        "contracts", sa.column("buyer_id", sa.String), sa.column("vendor_id", sa.String), sa.column("amount", sa.BigInteger),
        sa.column("status", sa.String), sa.column("created_at", UTCDateTime()),
    )
    totals: dict[tuple[str, object], int] = defaultdict(int)
    rows = op.get_bind().execute(sa.select(contracts).where(contracts.c.status != "refunded"))
    for buyer_id, vendor_id, amount, _status, created_at in rows:
        month = month_of(created_at)[0]
        for party in {buyer_id, vendor_id}:
            totals[(party, month)] += int(amount)
    if totals:
        op.bulk_insert(volumes, [{"participant_id": p, "month_start": m, "amount": a} for (p, m), a in sorted(totals.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))])


def downgrade() -> None:
    op.drop_table("monthly_volumes")
    op.drop_index("ix_trades_listing_at", table_name="trades")
    op.drop_index("ix_orders_book", table_name="orders")
