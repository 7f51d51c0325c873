"""Contract lifecycle (active, expired, terminated, amended) and listing notices.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("valid_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("ended_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("end_reason", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("amends", sa.String(40), nullable=True))
        batch.create_index("ix_contracts_valid_until", ["valid_until"])
    op.create_table(
        "notices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("vendor_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.String(5000), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_notices_listing_id", "notices", ["listing_id"])


def downgrade() -> None:
    op.drop_table("notices")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_index("ix_contracts_valid_until")
        for column in ("amends", "end_reason", "ended_at", "valid_until", "lifecycle"):
            batch.drop_column(column)
