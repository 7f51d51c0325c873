"""Catalogue search at 100,000 listings: indexes for the sort orders, each listing's lowest
price kept on the listing, an index answering the plan filters listing by listing; on
PostgreSQL every Latin word indexed (for prefix queries); on SQLite an FTS5 index whose rows
are found by integer rowid (external content) rather than read back for their listing id.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRICE_NONE = 2**62  # exchange.listings.repository.PRICE_NONE: negotiated-only listings sort last

FTS_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 0'"


def upgrade() -> None:
    op.add_column("listings", sa.Column("min_price_fen", sa.BigInteger, nullable=False, server_default=str(PRICE_NONE)))
    op.execute(
        "UPDATE listings SET min_price_fen = COALESCE("
        "(SELECT MIN(price_fen) FROM listing_plans WHERE listing_plans.listing_id = listings.id), "
        f"{PRICE_NONE})"
    )
    op.create_index("ix_listings_status_created", "listings", ["status", "created_at", "id"])
    op.create_index("ix_listings_status_title", "listings", ["status", "title", "id"])
    op.create_index("ix_listings_status_price", "listings", ["status", "min_price_fen", "id"])
    op.create_index("ix_listing_plans_listing_kind_price", "listing_plans", ["listing_id", "kind", "price_fen"])
    if op.get_bind().dialect.name == "postgresql":
        # Every Latin word ever indexed: a prefix query whose prefixes each complete to one word
        # ranks all its matches the same (exchange.listings.repository._prefix_words).
        op.execute('CREATE TABLE listing_search_words (word text COLLATE "C" PRIMARY KEY)')
        # A finer sample of the lexemes' frequencies: a rare word is then estimated rare, and
        # the planner reads its few matches rather than walking every listing in order.
        op.execute("ALTER TABLE listing_search ALTER COLUMN tokens SET STATISTICS 1000")
        op.execute(
            "INSERT INTO listing_search_words (word) SELECT DISTINCT lexeme FROM listing_search, unnest(tokens) "
            "WHERE lexeme ~ '^[0-9a-z]+$'"
        )
    if op.get_bind().dialect.name == "sqlite":
        # The documents in a plain table keyed by an integer (its rowid), the FTS5 index over
        # it as external content, kept in step by triggers: a match yields rowids, and the
        # listing id is one rowid lookup away instead of a read of the whole indexed text.
        op.execute(
            "CREATE TABLE listing_search_docs ("
            "id INTEGER PRIMARY KEY, listing_id varchar(40) NOT NULL UNIQUE REFERENCES listings(id), tokens TEXT NOT NULL)"
        )
        op.execute("INSERT INTO listing_search_docs (listing_id, tokens) SELECT listing_id, tokens FROM listing_search")
        op.execute("DROP TABLE listing_search")
        op.execute("ALTER TABLE listing_search_docs RENAME TO listing_search")
        op.execute(f"CREATE VIRTUAL TABLE listing_search_fts USING fts5(tokens, content = 'listing_search', content_rowid = 'id', {FTS_TOKENIZE})")
        op.execute(
            "CREATE TRIGGER listing_search_ai AFTER INSERT ON listing_search BEGIN "
            "INSERT INTO listing_search_fts (rowid, tokens) VALUES (new.id, new.tokens); END"
        )
        op.execute(
            "CREATE TRIGGER listing_search_ad AFTER DELETE ON listing_search BEGIN "
            "INSERT INTO listing_search_fts (listing_search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END"
        )
        op.execute(
            "CREATE TRIGGER listing_search_au AFTER UPDATE ON listing_search BEGIN "
            "INSERT INTO listing_search_fts (listing_search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
            "INSERT INTO listing_search_fts (rowid, tokens) VALUES (new.id, new.tokens); END"
        )
        op.execute("INSERT INTO listing_search_fts (listing_search_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE listing_search_words")
        op.execute("ALTER TABLE listing_search ALTER COLUMN tokens SET STATISTICS -1")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE listing_search_fts")  # its triggers' target; the triggers go with their table below
        op.execute("CREATE TABLE listing_search_docs AS SELECT listing_id, tokens FROM listing_search")
        op.execute("DROP TABLE listing_search")
        op.execute(
            "CREATE VIRTUAL TABLE listing_search USING fts5("
            f"listing_id UNINDEXED, tokens, {FTS_TOKENIZE})"
        )
        op.execute("INSERT INTO listing_search (listing_id, tokens) SELECT listing_id, tokens FROM listing_search_docs")
        op.execute("DROP TABLE listing_search_docs")
    op.drop_index("ix_listing_plans_listing_kind_price", "listing_plans")
    op.drop_index("ix_listings_status_price", "listings")
    op.drop_index("ix_listings_status_title", "listings")
    op.drop_index("ix_listings_status_created", "listings")
    op.drop_column("listings", "min_price_fen")
