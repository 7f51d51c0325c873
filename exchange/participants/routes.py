"""HTTP for participants."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from exchange.auth import Caller, require
from exchange.context import Exchange, IdempotencyKey, Unit
from exchange.core.ids import id_pattern
from exchange.participants import repository, service
from exchange.participants.schemas import (
    ParticipantCreated,
    ParticipantIn,
    ParticipantOut,
    ParticipantPage,
    ParticipantStatus,
)


@post("/v1/participants", status_code=201, summary="Register a participant (operator)")
async def create_participant(
    request: Request[Any, Any, Any], data: JSONBody[ParticipantIn], exchange: NamedDependency[Exchange], idempotency_key: IdempotencyKey = None
) -> Response[ParticipantCreated]:
    async def action(unit: Unit, caller: Caller) -> ParticipantCreated:
        return await service.register(unit.session, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("operator",), kept=_without_key)


def _without_key(response: bytes) -> bytes:
    """A replay shows the participant but not its key: the key is shown once and never stored."""
    body = msgspec.json.decode(response)
    body["api_key"] = None
    return msgspec.json.encode(body)


@get("/v1/participants/me", summary="The calling participant")
async def me(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> ParticipantOut:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        return service.to_out(await service.get(unit.session, caller.id))


@get("/v1/participants", summary="List participants (operator, regulator)")
async def list_participants(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    role: FromQuery[str | None] = None,
    cursor: Annotated[str | None, QueryParameter(pattern=id_pattern("par"))] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> ParticipantPage:
    async with exchange.unit(request, write=False) as unit:
        require(unit.caller, "operator", "regulator")
        rows = await repository.page(unit.session, after=cursor, limit=limit + 1, role=None)
        items = [service.to_out(p) for p in rows[:limit]]
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return ParticipantPage(items=[p for p in items if role is None or role in p.roles], next_cursor=next_cursor)


@get("/v1/participants/{participant_id:str}", summary="One participant (operator, regulator)")
async def get_participant(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], participant_id: FromPath[str]) -> ParticipantOut:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        if caller.id != participant_id:
            require(caller, "operator", "regulator")
        return service.to_out(await service.get(unit.session, participant_id))


async def _set_status(request: Request[Any, Any, Any], exchange: Exchange, participant_id: str, status: ParticipantStatus) -> ParticipantOut:
    async with exchange.unit(request, write=True) as unit:
        require(unit.caller, "operator")
        return await service.set_status(unit.session, participant_id, status)


@post("/v1/participants/{participant_id:str}/suspend", status_code=200, summary="Suspend (operator)")
async def suspend_participant(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], participant_id: FromPath[str]) -> ParticipantOut:
    return await _set_status(request, exchange, participant_id, ParticipantStatus.suspended)


@post("/v1/participants/{participant_id:str}/reactivate", status_code=200, summary="Reactivate (operator)")
async def reactivate_participant(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], participant_id: FromPath[str]) -> ParticipantOut:
    return await _set_status(request, exchange, participant_id, ParticipantStatus.active)


ROUTES = [create_participant, me, list_participants, get_participant, suspend_participant, reactivate_participant]
