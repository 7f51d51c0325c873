"""Ledger entries as the log stores them: canonical bytes (UTF-8 JSON, keys sorted, no white
space, integers only) that become Merkle leaves. Pure; the same code writes and verifies them."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from exchange.core.canonical import canonical_bytes
from exchange.settlement.posting import Movement

ENTRY_VERSION = 1


class TransferEntry(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="transfer"):
    """Money moved: `amount` from `debit` to `credit`. A journal's `legs` entries are consecutive."""

    v: int = ENTRY_VERSION
    index: int
    at: int
    journal: str
    legs: int
    transfer: str
    kind: str
    phase: str
    debit: str
    credit: str
    amount: int
    currency: str
    pending_id: str | None = None
    refs: dict[str, str] = msgspec.field(default_factory=dict)


class CertificateEntry(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="certificate"):
    """A registration certificate (数据产品登记凭证) the exchange signed."""

    v: int = ENTRY_VERSION
    index: int
    at: int
    certificate: dict[str, Any]
    key_id: str
    signature: str


class RulesEntry(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="rules"):
    """A rule-set version was stored and becomes active at `effective_at`."""

    v: int = ENTRY_VERSION
    index: int
    at: int
    version: int
    hash: str
    effective_at: int


Entry = TransferEntry | CertificateEntry | RulesEntry
EntryType = Literal["transfer", "certificate", "rules"]

_decoder = msgspec.json.Decoder(Entry)


def encode(entry: Entry) -> bytes:
    return canonical_bytes(entry)


def decode(data: bytes) -> Entry:
    return _decoder.decode(data)


def transfer_entry(index: int, at_ms: int, journal_id: str, legs: int, movement: Movement) -> TransferEntry:
    return TransferEntry(
        index=index,
        at=at_ms,
        journal=journal_id,
        legs=legs,
        transfer=movement.transfer_id,
        kind=str(movement.kind),
        phase=str(movement.phase),
        debit=movement.debit,
        credit=movement.credit,
        amount=movement.amount,
        currency=movement.currency,
        pending_id=movement.pending_id,
        refs=msgspec.to_builtins(movement.references),
    )
