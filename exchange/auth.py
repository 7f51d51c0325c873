"""Who is calling: the Bearer key resolves to a participant; guards check roles."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.errors import Forbidden, NotAuthenticated, ParticipantSuspended
from exchange.participants.keys import key_hash, key_matches
from exchange.tables import ApiKey, Participant

KEY_LENGTH_MAX = 200


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    roles: frozenset[str]
    qualifications: frozenset[str]
    sponsor_id: str | None

    def has(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def sees_everything(self) -> bool:
        return self.has("operator", "regulator")


# What a caller is read from, by both lookups below: columns, not a Participant entity (which
# the ORM would build, track and discard on every request). Other columns a query adds follow.
_CALLER_COLUMNS = (Participant.id, Participant.name, Participant.roles, Participant.qualifications, Participant.sponsor_id,
                   Participant.status, ApiKey.key_hash)
CALLER_WIDTH = len(_CALLER_COLUMNS)
"""Where the columns a query adds to the caller's begin in its rows."""

# Built once: every request with a key runs it (see store.ACTIVE_VERSION).
BY_KEY = (
    sa.select(*_CALLER_COLUMNS)  # type: ignore[call-overload]
    .join(ApiKey, ApiKey.participant_id == Participant.id)
    .where(ApiKey.key_hash == sa.bindparam("digest"), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
)


async def authenticate(session: AsyncSession, authorization: str | None) -> Caller | None:
    """None for an anonymous request; a wrong key is an error even where anonymous is fine,
    so a client with a typo learns it at once instead of seeing less."""
    if authorization is None:
        return None
    key = bearer_key(authorization)
    row = (await session.execute(BY_KEY, {"digest": key_hash(key)})).first()
    return caller_of(key, row)


def bearer_key(authorization: str) -> str:
    """The key of an `Authorization: Bearer <key>` header; refused when it is not one."""
    key = bearer_or_none(authorization)
    if key is None:
        raise NotAuthenticated("Send `Authorization: Bearer <API key>`.")
    return key


def bearer_or_none(authorization: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None when it is not one."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key and len(key) <= KEY_LENGTH_MAX else None


def caller_of(key: str, row: Any) -> Caller:
    """The caller behind `key`, from the row its hash found (the caller's columns)."""
    if row is None or not key_matches(key, row[CALLER_WIDTH - 1]):
        raise NotAuthenticated("The API key is not valid.")
    if row[CALLER_WIDTH - 2] != "active":
        raise ParticipantSuspended("This participant is suspended and may not use the exchange.")
    return _caller_from(row)


def _caller_from(row: Any) -> Caller:
    participant_id, name, roles, qualifications, sponsor_id = row[:5]
    return Caller(id=participant_id, name=name, roles=frozenset(roles), qualifications=frozenset(qualifications), sponsor_id=sponsor_id)


# Every active key among many, by hash (PostgreSQL: the order desk's, which runs only there).
_CALLERS = (
    sa.select(*_CALLER_COLUMNS)  # type: ignore[call-overload]
    .join(ApiKey, ApiKey.participant_id == Participant.id)
    .where(ApiKey.key_hash == sa.any_(sa.bindparam("digests", type_=postgresql.ARRAY(sa.Text()))), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
)


def callers_query(*also: Any) -> Any:
    """The query of `active_callers` reading `also` (scalar subqueries) in the same round trip.
    Build it once: keying a statement built afresh costs SQLAlchemy about as much as running it."""
    return _CALLERS.add_columns(*also)


async def active_callers(
    session: AsyncSession, authorizations: set[str], query: Any = _CALLERS, params: dict[str, Any] | None = None
) -> tuple[dict[str, Caller], tuple[Any, ...] | None]:
    """The active participants behind many `Authorization` headers, in one query; a header
    that `authenticate` would refuse is left out (its request goes that way for its error).
    With a `callers_query` (`params` binding its subqueries), their values come second (None
    when no key was found)."""
    keys: dict[str, tuple[str, str]] = {}  # key hash -> (header, key)
    for authorization in authorizations:
        key = bearer_or_none(authorization)
        if key is not None:
            keys[key_hash(key)] = (authorization, key)
    if not keys:
        return {}, None
    rows = (await session.execute(query, {"digests": sorted(keys), **(params or {})})).all()
    found: dict[str, Caller] = {}
    for row in rows:
        status, stored_hash = row[CALLER_WIDTH - 2 : CALLER_WIDTH]
        authorization, key = keys[stored_hash]
        if status == "active" and key_matches(key, stored_hash):
            found[authorization] = _caller_from(row)
    return found, (tuple(rows[0][CALLER_WIDTH:]) if rows else None)


def require(caller: Caller | None, *roles: str) -> Caller:
    """The caller, who must hold one of `roles` (any role when none are given)."""
    if caller is None:
        raise NotAuthenticated("This needs an API key: send `Authorization: Bearer <key>`.")
    if roles and not caller.has(*roles):
        raise Forbidden(f"This needs the role {' or '.join(roles)}.")
    return caller
