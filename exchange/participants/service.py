"""Use cases for participants: register with a new key, suspend, reactivate."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.errors import InvalidInput, InvalidTransition, NotFound
from exchange.core.ids import new_id
from exchange.participants import repository
from exchange.participants.keys import key_hash, new_key, visible_prefix
from exchange.participants.schemas import ParticipantCreated, ParticipantIn, ParticipantOut
from exchange.rulebook.evaluate import VendorFacts
from exchange.tables import ApiKey, Participant


def to_out(participant: Participant) -> ParticipantOut:
    return msgspec.convert(participant, ParticipantOut, from_attributes=True)


async def register(session: AsyncSession, command: ParticipantIn, now: datetime) -> ParticipantCreated:
    if command.sponsor_id is not None and await repository.get(session, command.sponsor_id) is None:
        raise InvalidInput(
            f"sponsor_id: no participant {command.sponsor_id}",
            errors=[{"field": "sponsor_id", "reason": "no such participant"}],
        )
    participant = Participant(
        id=new_id("par"),
        name=command.name,
        roles=sorted(set(command.roles)),
        qualifications=sorted(set(command.qualifications)),
        sponsor_id=command.sponsor_id,
        status="active",
        created_at=now,
    )
    key = new_key()
    await repository.add(
        session,
        participant,
        ApiKey(
            id=new_id("key"),
            participant_id=participant.id,
            key_hash=key_hash(key),
            prefix=visible_prefix(key),
            created_at=now,
        ),
    )
    return ParticipantCreated(id=participant.id, api_key=key, participant=to_out(participant))


async def get(session: AsyncSession, participant_id: str) -> Participant:
    participant = await repository.get(session, participant_id)
    if participant is None:
        raise NotFound(f"No participant {participant_id}.")
    return participant


async def set_status(session: AsyncSession, participant_id: str, status: str) -> ParticipantOut:
    participant = await get(session, participant_id)
    if participant.status == status:
        raise InvalidTransition(f"Participant {participant_id} is already {status}.")
    await repository.set_status(session, participant, status)
    return to_out(participant)


async def vendor_facts(session: AsyncSession, vendor_id: str) -> VendorFacts:
    vendor = await repository.get(session, vendor_id)
    if vendor is None:
        raise NotFound(f"No participant {vendor_id}.")
    sponsor = await repository.get(session, vendor.sponsor_id) if vendor.sponsor_id else None
    return VendorFacts(
        qualifications=frozenset(vendor.qualifications),
        sponsor_qualifications=frozenset(sponsor.qualifications) if sponsor else None,
    )
