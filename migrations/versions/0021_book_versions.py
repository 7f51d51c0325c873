"""Books count their locks: every transaction that locks a book adds one to its version, so the
order desk can read a book's orders in the statement that locks it and tell whether another
writer came between (exchange/orders/desk.py).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("books", sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("books") as batch:
        batch.drop_column("version")
