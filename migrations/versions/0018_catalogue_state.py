"""A catalogue version: one number that every committed change to what public catalogue searches
read (listings, their plans, their search documents and, on PostgreSQL, the indexed words) moves
on, kept by triggers so that no writer can forget it, the CLI and bulk loads included. A process
keeps public search answers for as long as the number it reads with each search stands.

On PostgreSQL the triggers are deferred to commit and move the number once per transaction: the
row is locked only at the very end, after every other lock the transaction takes, so two writers
cannot deadlock on it, and a rolled-back change never moves it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = ("listings", "listing_plans", "listing_search")
WATCHED_POSTGRESQL = (*WATCHED, "listing_search_words")


def upgrade() -> None:
    op.create_table(
        "catalogue_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO catalogue_state (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            # A transaction-local flag: one move per transaction, however many rows it changed.
            "IF current_setting('exchange.catalogue_changed', true) IS DISTINCT FROM 'yes' THEN "
            "UPDATE catalogue_state SET version = version + 1 WHERE id = 1; "
            "PERFORM set_config('exchange.catalogue_changed', 'yes', true); "
            "END IF; "
            "RETURN NULL; "
            "END $$"
        )
        for table in WATCHED_POSTGRESQL:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER catalogue_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalogue_changed()"
            )
            op.execute(f"CREATE TRIGGER catalogue_truncated AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed()")
    else:
        # SQLite has one writer at a time and no deferred triggers: a move per changed row.
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER catalogue_changed_{table}_{event.lower()} AFTER {event} ON {table} "
                    "BEGIN UPDATE catalogue_state SET version = version + 1 WHERE id = 1; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED_POSTGRESQL:
            op.execute(f"DROP TRIGGER catalogue_truncated ON {table}")
            op.execute(f"DROP TRIGGER catalogue_changed ON {table}")
        op.execute("DROP FUNCTION catalogue_changed()")
    else:
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER catalogue_changed_{table}_{event}")
    op.drop_table("catalogue_state")
