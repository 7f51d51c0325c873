"""All SQL for participants and keys; never commits."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.tables import ApiKey, Participant


async def get(session: AsyncSession, participant_id: str) -> Participant | None:
    return await session.get(Participant, participant_id)


async def add(session: AsyncSession, participant: Participant, key: ApiKey) -> None:
    session.add(participant)
    await session.flush()  # the key's foreign key needs the participant first
    session.add(key)
    await session.flush()


async def page(
    session: AsyncSession, *, after: str | None, limit: int, role: str | None = None
) -> Sequence[Participant]:
    query = sa.select(Participant).order_by(Participant.id).limit(limit)
    if after:
        query = query.where(Participant.id > after)
    rows = (await session.execute(query)).scalars().all()
    # Roles are a short JSON list; filtering in Python keeps one query for both databases.
    return [p for p in rows if role is None or role in p.roles]


async def any_with_role(session: AsyncSession, role: str) -> bool:
    rows = (await session.execute(sa.select(Participant.roles))).scalars()
    return any(role in roles for roles in rows)


async def set_status(session: AsyncSession, participant: Participant, status: str) -> None:
    participant.status = status
    session.add(participant)
    await session.flush()
