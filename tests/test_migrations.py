"""The Alembic history and the SQLModel tables describe the same schema, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exchange.db import make_engine
from exchange.tables import metadata


def _differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            # The search index is dialect-specific (FTS5 / tsvector) and lives outside the models.
            "include_name": lambda name, kind, parent: not (name or "").startswith("listing_search"),
        },
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


@pytest.mark.postgres_only  # SQLite has no such setting
async def test_contract_rows_are_not_compressed_below_4_kb(database_url: str) -> None:
    """Migration 0022: PostgreSQL tries to compress a contract row's values only above 4 kB."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            options = (await connection.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'contracts'"))).scalar_one()
    finally:
        await engine.dispose()
    assert "toast_tuple_target=4080" in (options or [])
