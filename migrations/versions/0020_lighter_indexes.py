"""Fewer index entries written with each order: the auction index holds only orders in an
auction (every other order added a NULL to it), and trades lose their index on listing alone,
which the two indexes starting with the listing already serve.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_auction_id", table_name="orders")
    op.create_index("ix_orders_auction_id", "orders", ["auction_id"], postgresql_where=sa.text("auction_id IS NOT NULL"), sqlite_where=sa.text("auction_id IS NOT NULL"))
    op.drop_index("ix_trades_listing_id", table_name="trades")


def downgrade() -> None:
    op.create_index("ix_trades_listing_id", "trades", ["listing_id"])
    op.drop_index("ix_orders_auction_id", table_name="orders")
    op.create_index("ix_orders_auction_id", "orders", ["auction_id"])
