"""A key registered with an Idempotency-Key is not kept in clear with the replayable response:
the stored response leaves it out, so a replay shows the participant with `api_key` null."""

from __future__ import annotations

import sqlalchemy as sa

from exchange.db import make_engine
from tests.harness import Api
from tests.security.world import as_text


async def test_a_key_registered_with_an_idempotency_key_is_not_stored(api: Api) -> None:
    created = await api.request("POST", "/v1/participants", api.operator_key, json={"name": "Acme", "roles": ["buyer"]},
                                headers={"Idempotency-Key": "register-acme"})
    assert created.status_code == 201
    key = created.json()["api_key"]
    engine = make_engine(api.settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.text("SELECT * FROM idempotency_keys"))).all()
    finally:
        await engine.dispose()
    assert rows, "the registration was recorded for replays"
    assert not any(key in as_text(value) for row in rows for value in row)
