"""Shadow rule sets and the orders they judged otherwise than the active set.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import JSONType, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_shadows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("files", JSONType, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(40), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_rule_shadows_status", "rule_shadows", ["status"])
    op.create_table(
        "shadow_divergences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("shadow_id", sa.String(40), sa.ForeignKey("rule_shadows.id"), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("participant_id", sa.String(40), nullable=False),
        sa.Column("listing_id", sa.String(40), nullable=False),
        sa.Column("active_outcome", sa.String(16), nullable=False),
        sa.Column("shadow_outcome", sa.String(16), nullable=False),
        sa.Column("active_rules", JSONType, nullable=False),
        sa.Column("shadow_violations", JSONType, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_shadow_divergences_shadow_id", "shadow_divergences", ["shadow_id"])


def downgrade() -> None:
    op.drop_table("shadow_divergences")
    op.drop_table("rule_shadows")
