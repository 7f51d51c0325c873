"""Participant requests and responses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from msgspec import Meta, Struct, field

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Qualification = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class Role(StrEnum):
    vendor = "vendor"
    buyer = "buyer"
    operator = "operator"
    regulator = "regulator"


class ParticipantStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class ParticipantIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    roles: Annotated[list[Role], Meta(min_length=1, max_length=4)]
    qualifications: Annotated[list[Qualification], Meta(max_length=32)] = field(default_factory=list)
    """E.g. data-merchant, public-data-operator, medical-licensed: what rules can require."""
    sponsor_id: str | None = None
    """A participant vouching for this one, e.g. a data merchant sponsoring a new vendor."""


class ParticipantOut(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    roles: list[str]
    qualifications: list[str]
    sponsor_id: str | None
    status: str
    created_at: datetime


class ParticipantCreated(Struct, frozen=True, kw_only=True):
    id: str
    api_key: str | None
    """Shown once; the exchange keeps only its hash (a replay of the request shows null)."""
    participant: ParticipantOut


class ParticipantPage(Struct, frozen=True, kw_only=True):
    items: list[ParticipantOut]
    next_cursor: str | None
