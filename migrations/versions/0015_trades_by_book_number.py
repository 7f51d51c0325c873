"""Trades found by their book's sequence number: the order desk reads only a book's trades made
since it last looked, to keep the circuit breaker's window up to date.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trades_listing_seq", "trades", ["listing_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_trades_listing_seq", table_name="trades")
