"""A small client for API tests: participants with keys, and listing bodies to vary."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from exchange.db import Database
from exchange.participants import service
from exchange.participants.schemas import ParticipantIn
from exchange.settings import Settings


def listing_body(**overrides: Any) -> dict[str, Any]:
    """A listing every shipped rule accepts; override fields to break one rule at a time."""
    body: dict[str, Any] = {
        "title": "上海交通出行数据 Shanghai mobility OD matrix",
        "description": "全市地铁与公交刷卡出行起讫点矩阵，按小时汇总。Hourly origin-destination matrix of metro and bus trips.",
        "category": "transport",
        "grade": "L2",
        "delivery": "api",
        "update_frequency": "daily",
        "schema": {"origin": "station id", "destination": "station id", "trips": "integer"},
        "attestations": {
            "source": "Collected under contract SH-TR-2026-001 with the metro operator.",
            "rights": ["holding", "use", "operation"],
        },
        "licence": {"purposes": ["research", "urban-planning"], "duration_days": 365, "max_licences": 50},
        "plans": [{"kind": "fixed", "price": {"amount": 1_200_000, "currency": "CNY"}}],
    }
    body.update(overrides)
    return body


class Api:
    def __init__(self, client: AsyncTestClient[Any], settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.operator_key = ""

    async def start(self) -> None:
        self.operator_key = (await self.participant("operator"))[1]

    async def participant(self, *roles: str, qualifications: list[str] | None = None, sponsor_id: str | None = None, name: str = "P") -> tuple[str, str]:
        """A new participant straight through the service: (id, API key)."""
        db = Database(self.settings)
        try:
            async with db.write() as session:
                from exchange.context import utc_now

                created = await service.register(
                    session,
                    msgspec.convert({"name": name, "roles": list(roles), "qualifications": qualifications or [], "sponsor_id": sponsor_id}, ParticipantIn),
                    utc_now(),
                )
        finally:
            await db.dispose()
        return created.id, created.api_key

    @staticmethod
    def auth(key: str | None, **headers: str) -> dict[str, str]:
        result = {"Authorization": f"Bearer {key}"} if key else {}
        result.update(headers)
        return result

    async def request(self, method: str, path: str, key: str | None = None, *, json: Any = None, headers: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> Any:
        return await self.client.request(method, path, headers={**self.auth(key), **(headers or {})}, json=json, params=params)

    async def listed(self, vendor_key: str, **overrides: Any) -> dict[str, Any]:
        """Create, submit and approve a listing; return it as listed."""
        created = await self.request("POST", "/v1/listings", vendor_key, json=listing_body(**overrides))
        assert created.status_code == 201, created.text
        listing_id = created.json()["id"]
        submitted = await self.request("POST", f"/v1/listings/{listing_id}/submit", vendor_key)
        assert submitted.status_code == 200, submitted.text
        approved = await self.request("POST", f"/v1/listings/{listing_id}/approve", self.operator_key, json=self.approval(submitted.json()))
        assert approved.status_code == 200, approved.text
        return approved.json()  # type: ignore[no-any-return]

    @staticmethod
    def approval(listing: dict[str, Any]) -> dict[str, Any]:
        return {
            "reason": "meets the rules",
            "checklist": [{"item": item["item"], "passed": True, "evidence": f"checked {item['item']}"} for item in listing["checklist"]],
        }


async def until_a_statement_waits_for_a_lock(db: Database, marker: str) -> None:
    """Return once a statement whose text holds `marker` waits for a row lock (PostgreSQL);
    fail after five seconds."""
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :pattern")
    for _ in range(500):
        async with db.read() as watcher:
            if (await watcher.execute(query, {"pattern": f"%{marker}%"})).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no statement with {marker!r} waited for a lock")
