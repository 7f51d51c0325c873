"""Request-rate buckets shared by the processes of one exchange (exchange/ratelimit.py): each
process adds what its participants spent a few times a second. Unlogged on PostgreSQL: the
buckets are rewritten all the time and worth nothing after a crash (they start full again).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("participant_id", sa.String(40), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_buckets")
