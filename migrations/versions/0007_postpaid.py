"""Postpaid plans: usage batches and records of metered contracts, bills, billed-through marks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import JSONType, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("billed_through", UTCDateTime(), nullable=True))
    op.create_table(
        "usage_batches",
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), primary_key=True),
        sa.Column("batch_id", sa.String(100), primary_key=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("contract_id", sa.String(40), primary_key=True),
        sa.Column("batch_id", sa.String(100), primary_key=True),
        sa.Column("record_id", sa.String(100), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_usage_records_contract_at", "usage_records", ["contract_id", "at"])
    op.create_table(
        "bills",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("buyer_fee", sa.BigInteger(), nullable=False),
        sa.Column("vendor_fee", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("journal_id", sa.String(80), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_bills_contract_id", "bills", ["contract_id"])


def downgrade() -> None:
    op.drop_table("bills")
    op.drop_table("usage_records")
    op.drop_table("usage_batches")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("billed_through")
