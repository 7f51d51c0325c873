"""Trading: books, orders, trades, auctions, contracts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.tables import JSONType, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "books",
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("halted_reason", sa.String(2000), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(40), nullable=False),
        sa.Column("plan_kind", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("time_in_force", sa.String(4), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("auction_id", sa.String(40), nullable=True),
        sa.Column("hold_id", sa.String(100), nullable=True),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("rulebook_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("violations", JSONType, nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_orders_listing_status", "orders", ["listing_id", "status"])
    op.create_index("ix_orders_participant_created", "orders", ["participant_id", "created_at"])
    op.create_index("ix_orders_auction_id", "orders", ["auction_id"])
    op.create_table(
        "trades",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("contract_id", sa.String(40), nullable=False),
        sa.Column("buy_order_id", sa.String(40), nullable=False),
        sa.Column("sell_order_id", sa.String(40), nullable=True),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_trades_listing_id", "trades", ["listing_id"])
    op.create_table(
        "auctions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("plan_id", sa.String(40), nullable=False),
        sa.Column("vendor_id", sa.String(40), nullable=False),
        sa.Column("licences", sa.Integer(), nullable=False),
        sa.Column("reserve", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("price_rule", sa.String(16), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("rulebook_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_auctions_listing_id", "auctions", ["listing_id"])
    op.create_index("ix_auctions_closes_at", "auctions", ["closes_at"])
    op.create_table(
        "contracts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("listing_id", sa.String(40), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("buyer_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("vendor_id", sa.String(40), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True),
        sa.Column("plan_kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("buyer_fee", sa.BigInteger(), nullable=False),
        sa.Column("vendor_fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("pay_hold_id", sa.String(100), nullable=True),
        sa.Column("fee_hold_id", sa.String(100), nullable=True),
        sa.Column("confirm_by", UTCDateTime(), nullable=False),
        sa.Column("dispute_reason", sa.String(2000), nullable=True),
        sa.Column("certificate", JSONType, nullable=True),
        sa.Column("certificate_signature", sa.String(200), nullable=True),
        sa.Column("certificate_index", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_contracts_listing_id", "contracts", ["listing_id"])
    op.create_index("ix_contracts_buyer_id", "contracts", ["buyer_id"])
    op.create_index("ix_contracts_vendor_id", "contracts", ["vendor_id"])
    op.create_index("ix_contracts_status_confirm_by", "contracts", ["status", "confirm_by"])


def downgrade() -> None:
    for table in ("contracts", "auctions", "trades", "orders", "books"):
        op.drop_table(table)
