"""Negotiated plans: requests for quote, offers and counter-offers, each step signed; the use
case an approval-gated buy states.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import JSONType, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "negotiations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("plan_id", sa.String(40), nullable=False),
        sa.Column("buyer_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("vendor_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=True),
        sa.Column("contract_id", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_negotiations_listing_id", "negotiations", ["listing_id"])
    op.create_index("ix_negotiations_buyer_id", "negotiations", ["buyer_id"])
    op.create_index("ix_negotiations_vendor_id", "negotiations", ["vendor_id"])
    op.create_table(
        "negotiation_steps",
        sa.Column("negotiation_id", sa.String(40), sa.ForeignKey("negotiations.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("actor_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("use_case", sa.String(2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("use_case")
    op.drop_table("negotiation_steps")
    op.drop_table("negotiations")
