"""Export the ledger as JSON lines and verify it, from the file alone or from the database.

The file holds, in order: one `export` line, every `key`, every `head`, every `entry` (its exact
bytes in base64 and its leaf hash) and every `balance`, so a verifier reads it in one pass."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.db import Database
from exchange.settlement.ledger import Ledger, millis
from exchange.settlement.signing import SignedTreeHead
from exchange.settlement.verify import Report, Verifier
from exchange.tables import Account, LedgerEntry, LedgerHead, LedgerState, SigningKey

EXPORT_FORMAT = 1
CHUNK = 20_000


class ExportRecord(msgspec.Struct, tag_field="record", tag="export", kw_only=True):
    format: int
    size: int
    exported_at: int


class KeyRecord(msgspec.Struct, tag_field="record", tag="key", kw_only=True):
    key_id: str
    public_key_pem: str
    active: bool
    created_at: datetime


class HeadRecord(msgspec.Struct, tag_field="record", tag="head", kw_only=True):
    key_id: str
    root_hash: str
    size: int
    timestamp: int
    signature: str


class EntryRecord(msgspec.Struct, tag_field="record", tag="entry", kw_only=True, array_like=False):
    index: int
    leaf_hash: str
    canonical: bytes
    """msgspec writes and reads bytes as base64."""


class BalanceRecord(msgspec.Struct, tag_field="record", tag="balance", kw_only=True):
    account: str
    balance: int


Record = ExportRecord | KeyRecord | HeadRecord | EntryRecord | BalanceRecord


async def _snapshot(session: AsyncSession) -> None:
    """One consistent view for the whole read (SQLite's read transactions already are one)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


async def _contents(session: AsyncSession) -> tuple[int, list[KeyRecord], list[HeadRecord], dict[str, int]]:
    size = int((await session.execute(sa.select(LedgerState.size).where(LedgerState.id == 1))).scalar_one())
    keys = [
        KeyRecord(key_id=r.key_id, public_key_pem=r.public_key_pem, active=r.active, created_at=r.created_at)
        for r in (await session.execute(sa.select(SigningKey).order_by(SigningKey.created_at))).scalars()
    ]
    heads = [
        HeadRecord(key_id=r.key_id, root_hash=r.root_hash, size=r.size, timestamp=r.timestamp_ms, signature=r.signature)
        for r in (await session.execute(sa.select(LedgerHead).where(LedgerHead.size <= size).order_by(LedgerHead.size, LedgerHead.id))).scalars()
    ]
    balances = {r.id: r.balance for r in (await session.execute(sa.select(Account.id, Account.balance).order_by(Account.id))).all()}
    return size, keys, heads, balances


async def _entries(session: AsyncSession, size: int) -> AsyncIterator[list[Any]]:
    columns = (
        LedgerEntry.index, LedgerEntry.leaf_hash, LedgerEntry.canonical, LedgerEntry.transfer_id, LedgerEntry.journal_id,
        LedgerEntry.kind, LedgerEntry.debit_account, LedgerEntry.credit_account, LedgerEntry.amount, LedgerEntry.currency,
    )
    for start in range(0, size, CHUNK):
        query = sa.select(*columns).where(LedgerEntry.index >= start, LedgerEntry.index < min(size, start + CHUNK)).order_by(LedgerEntry.index)
        yield list((await session.execute(query)).all())


def _head(record: HeadRecord) -> SignedTreeHead:
    return SignedTreeHead(key_id=record.key_id, root_hash=record.root_hash, size=record.size, timestamp=record.timestamp, signature=record.signature)


async def cover_with_head(db: Database, ledger: Ledger, now: datetime) -> None:
    """Sign a head over every entry, so an export proves all of it."""
    async with db.read() as session:
        head = await ledger.latest_head(session)
        size = await ledger.size(session)
    if head is None or head.size < size:
        async with db.write() as session:
            await ledger.sign_head(session, now)


async def export(db: Database, ledger: Ledger, path: Path, now: datetime) -> int:
    await cover_with_head(db, ledger, now)
    encoder = msgspec.json.Encoder()
    async with db.read() as session:
        await _snapshot(session)
        size, keys, heads, balances = await _contents(session)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("wb") as file:
            header: list[Record] = [ExportRecord(format=EXPORT_FORMAT, size=size, exported_at=millis(now)), *keys, *heads]
            for record in header:
                file.write(encoder.encode(record) + b"\n")
            async for rows in _entries(session, size):
                file.write(b"".join(encoder.encode(EntryRecord(index=r.index, leaf_hash=r.leaf_hash.hex(), canonical=r.canonical)) + b"\n" for r in rows))
            for account, balance in balances.items():
                file.write(encoder.encode(BalanceRecord(account=account, balance=balance)) + b"\n")
        temporary.replace(path)
    return size


async def verify_database(db: Database) -> Report:
    async with db.read() as session:
        await _snapshot(session)
        size, keys, heads, balances = await _contents(session)
        verifier = Verifier([_head(h) for h in heads], {k.key_id: k.public_key_pem for k in keys})
        async for rows in _entries(session, size):
            for r in rows:
                columns = {
                    "transfer_id": r.transfer_id, "journal_id": r.journal_id, "kind": r.kind, "debit_account": r.debit_account,
                    "credit_account": r.credit_account, "amount": r.amount, "currency": r.currency,
                } if r.transfer_id is not None or r.amount is not None else None
                verifier.entry(r.index, r.canonical, r.leaf_hash, columns)
        return verifier.finish(balances)


def _records(path: Path) -> Iterator[Record]:
    decoder = msgspec.json.Decoder(Record)
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield decoder.decode(line)
            except msgspec.DecodeError as error:
                raise ValueError(f"line {number}: not an export record ({error})") from None


def verify_file(path: Path) -> Report:
    """Verify an export with nothing but the file."""
    keys: dict[str, str] = {}
    heads: list[SignedTreeHead] = []
    balances: dict[str, int] = {}
    verifier: Verifier | None = None
    declared_size = None
    for record in _records(path):
        if isinstance(record, EntryRecord):
            if verifier is None:
                verifier = Verifier(heads, keys)
            verifier.entry(record.index, record.canonical, bytes.fromhex(record.leaf_hash), None)
        elif isinstance(record, KeyRecord):
            keys[record.key_id] = record.public_key_pem
        elif isinstance(record, HeadRecord):
            heads.append(_head(record))
        elif isinstance(record, BalanceRecord):
            balances[record.account] = record.balance
        else:
            declared_size = record.size
    if verifier is None:
        verifier = Verifier(heads, keys)
    report = verifier.finish(balances)
    if declared_size is not None and declared_size != report.entries:
        report.problems.append(f"the export says it holds {declared_size} entries but holds {report.entries}")
    return report
