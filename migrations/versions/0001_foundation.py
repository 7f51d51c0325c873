"""Foundation: participants, API keys, rule sets, catalogue, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import JSONType, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", JSONType, nullable=False),
        sa.Column("qualifications", JSONType, nullable=False),
        sa.Column("sponsor_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("participant_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_participant_id", "api_keys", ["participant_id"])
    op.create_table(
        "rule_sets",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("files", JSONType, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_rule_sets_hash", "rule_sets", ["hash"])
    op.create_index("ix_rule_sets_effective_at", "rule_sets", ["effective_at"])
    op.create_table(
        "listings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("vendor_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("pending_revision", sa.Integer, nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("grade", sa.String(64), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("rulebook_hash", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("listed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_listings_vendor_id", "listings", ["vendor_id"])
    op.create_index("ix_listings_category", "listings", ["category"])
    op.create_index("ix_listings_grade", "listings", ["grade"])
    op.create_index("ix_listings_status_listed_at", "listings", ["status", "listed_at"])
    op.create_table(
        "listing_revisions",
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "listing_plans",
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), primary_key=True),
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("price_fen", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
    )
    op.create_index("ix_listing_plans_kind_price", "listing_plans", ["kind", "price_fen"])
    op.create_table(
        "listing_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("rulebook_hash", sa.String(64), nullable=False),
        sa.Column("details", JSONType, nullable=False),
    )
    op.create_index("ix_listing_events_listing_id", "listing_events", ["listing_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("participant_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    # Full-text index of listed text, as tokens from exchange.listings.search.tokens_for():
    # Latin words, and Chinese single characters and bigrams, so that 交通 finds 上海交通出行数据.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE listing_search USING fts5("
            "listing_id UNINDEXED, tokens, tokenize = 'unicode61 remove_diacritics 0')"
        )
    else:
        op.execute(
            "CREATE TABLE listing_search ("
            "listing_id varchar(40) PRIMARY KEY REFERENCES listings(id), tokens tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_listing_search_tokens ON listing_search USING gin (tokens)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS listing_search")
    for table in (
        "idempotency_keys",
        "listing_events",
        "listing_plans",
        "listing_revisions",
        "listings",
        "rule_sets",
        "api_keys",
        "participants",
    ):
        op.drop_table(table)
