"""The latest signed head's size and time on the ledger's state row, so an append decides
whether a head is due from the row it locks anyway.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_state") as batch:
        batch.add_column(sa.Column("head_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("head_timestamp_ms", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE ledger_state SET head_size = latest.size, head_timestamp_ms = latest.timestamp_ms "
        "FROM (SELECT size, timestamp_ms FROM ledger_heads ORDER BY size DESC, id DESC LIMIT 1) AS latest"
    )


def downgrade() -> None:
    with op.batch_alter_table("ledger_state") as batch:
        batch.drop_column("head_timestamp_ms")
        batch.drop_column("head_size")
