"""The Alembic history and the SQLModel tables describe the same schema, on both databases."""

from __future__ import annotations

from typing import Any

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
