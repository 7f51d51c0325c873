"""Trades found by their orders: an order's answer lists its fills (a cancel's too, on every
batch of the order desk that holds one), which scanned the whole trades table.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trades_buy_order_id", "trades", ["buy_order_id"])
    op.create_index("ix_trades_sell_order_id", "trades", ["sell_order_id"])


def downgrade() -> None:
    op.drop_index("ix_trades_sell_order_id", table_name="trades")
    op.drop_index("ix_trades_buy_order_id", table_name="trades")
