"""The Merkle log in the database: append entries, sign tree heads, serve proofs.

Every append locks the one `ledger_state` row, so the log has one order across processes; it
hashes a whole batch, extends the stored compact range (never rebuilding the tree) and stores
the perfect subtree roots at levels 8, 16, … that proofs read instead of every leaf. Heads are
signed per batch, at least every `ledger_head_every_entries` entries or
`ledger_head_interval_ms` milliseconds."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from exchange.core.errors import Conflict, InvalidInput
from exchange.log import log
from exchange.secretfile import write_secret
from exchange.settings import Settings
from exchange.settlement import merkle
from exchange.settlement.entries import Entry, TransferEntry, encode
from exchange.settlement.signing import SignedTreeHead, Signer
from exchange.tables import LedgerEntry, LedgerHead, LedgerNode, LedgerState, Rows, SigningKey, write_together

HASH_BYTES = 32


class SigningKeyExposed(Exception):
    """The set-up is wrong, not a request: nothing is signed until the file is 0600."""

    code = "signing_key_exposed"

_ENTRIES: sa.Table = LedgerEntry.__table__  # type: ignore[assignment]
_NODES: sa.Table = LedgerNode.__table__  # type: ignore[assignment]
_STATE: sa.Table = LedgerState.__table__  # type: ignore[assignment]


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Appended(msgspec.Struct, frozen=True):
    index: int
    leaf_hash: bytes
    canonical: bytes


# The key registered as the one signing now (a rotation by any process changes it).
ACTIVE_KEY_ID = sa.select(SigningKey.key_id).where(SigningKey.active.is_(True))  # type: ignore[attr-defined]


class Ledger:
    """The log as one process sees it: its signing key, loaded from `signing_key_file` (created
    with mode 0600 when absent) and reloaded when another process rotates it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key_path = Path(settings.signing_key_file)
        self._signer: Signer | None = None

    # ── keys ──

    def signer(self) -> Signer:
        if self._signer is None:
            if self.key_path.exists():
                mode = stat.S_IMODE(self.key_path.stat().st_mode)
                if mode & 0o077:
                    # A key others can read can forge the exchange's signatures: refuse to use it.
                    raise SigningKeyExposed(
                        f"The signing key file {self.key_path} has mode {mode:04o}; it must be readable by its owner only "
                        f"(chmod 600 {self.key_path})."
                    )
                self._signer = Signer.from_pem(self.key_path.read_bytes())
            else:
                self._signer = Signer.generate()
                write_secret(self.key_path, self._signer.private_pem())
                log.info("ledger.key_created", key_id=self._signer.key_id, path=str(self.key_path.resolve()))
        return self._signer

    async def active_signer(self, session: AsyncSession, now: datetime) -> Signer:
        """The key to sign with, registered as the active one. After a rotation by another
        process the file holds the new key: reload it when the active key in the database differs."""
        return await self.signer_for(session, (await session.execute(ACTIVE_KEY_ID)).scalar_one_or_none(), now)

    async def signer_for(self, session: AsyncSession, active: str | None, now: datetime) -> Signer:
        """`active_signer`, given the active key's id as read (ACTIVE_KEY_ID) in this transaction."""
        signer = self.signer()
        if active is not None and active != signer.key_id:
            self._signer = None
            signer = self.signer()
        if active != signer.key_id:
            await self._register(session, signer, now)
        return signer

    async def rotate(self, session: AsyncSession, now: datetime) -> Signer:
        """A new key signs from now on; the old one stays listed so its heads stay verifiable."""
        await self.lock(session)
        signer = Signer.generate()
        await self._register(session, signer, now)
        write_secret(self.key_path, signer.private_pem())
        self._signer = signer
        await self.sign_head(session, now)
        return signer

    async def _register(self, session: AsyncSession, signer: Signer, now: datetime) -> None:
        await session.execute(sa.update(SigningKey).values(active=False))
        known = await session.get(SigningKey, signer.key_id)
        if known is None:
            session.add(SigningKey(key_id=signer.key_id, public_key_pem=signer.public_pem, active=True, created_at=now))
        else:
            known.active = True
        await session.flush()

    # ── appends ──

    async def lock(self, session: AsyncSession) -> LedgerState:
        query = sa.select(LedgerState).where(LedgerState.id == 1)
        if session.bind.dialect.name == "postgresql":  # SQLite writers are already serialised (BEGIN IMMEDIATE)
            query = query.with_for_update()
        state = (await session.execute(query)).scalar_one()
        return state

    async def append(self, session: AsyncSession, entries: Sequence[Entry | Any], now: datetime, *, columns: Sequence[dict[str, Any]] | None = None) -> list[Appended]:
        """Append entries built with `index=-1`; they get the next indexes in order. `columns`
        gives per entry the query columns to store beside it (transfer id, accounts, …)."""
        return await self.append_built(session, lambda start: [msgspec.structs.replace(entry, index=start + i) for i, entry in enumerate(entries)], now, columns=columns)

    async def append_built(
        self, session: AsyncSession, build: Any, now: datetime, *, columns: Sequence[dict[str, Any]] | None = None, state: LedgerState | None = None,
        writes: list[Rows] | None = None,
    ) -> list[Appended]:
        """`state`: the row from this transaction's `lock`, when the caller took it already.
        `writes`: the rows to write are added to it, for the caller to write with its own
        (`write_together`), instead of written here."""
        if state is None:
            state = await self.lock(session)
        start = state.size
        built: list[Entry] = build(start)
        if not built:
            return []
        frontier = merkle.Frontier.from_state(state.size, _split(state.frontier))
        canonical = [encode(entry) for entry in built]
        leaves = [merkle.leaf_hash(data) for data in canonical]
        nodes = frontier.extend(leaves)
        rows = []
        for position, (entry, data, leaf) in enumerate(zip(built, canonical, leaves, strict=True)):
            row = {
                "index": entry.index, "type": _type_of(entry), "at_ms": entry.at, "journal_id": None, "transfer_id": None,
                "kind": None, "debit_account": None, "credit_account": None, "amount": None, "currency": None,
                "request_hash": None, "leaf_hash": leaf, "canonical": data,
            }
            if isinstance(entry, TransferEntry):
                row.update(
                    journal_id=entry.journal, transfer_id=entry.transfer, kind=entry.kind, debit_account=entry.debit,
                    credit_account=entry.credit, amount=entry.amount, currency=entry.currency,
                )
            if columns is not None:
                row.update(columns[position])
            rows.append(row)
        own = writes is None
        writes = [] if writes is None else writes
        writes.append(Rows(_ENTRIES, rows))
        writes.append(Rows(_NODES, [{"level": level, "idx": idx, "hash": digest} for level, idx, digest in nodes]))
        writes.append(Rows(_STATE, [{"id": 1, "size": frontier.size, "frontier": b"".join(frontier.hashes)}], key="id"))
        set_committed_value(state, "size", frontier.size)  # written with the rows: no second UPDATE at flush
        set_committed_value(state, "frontier", b"".join(frontier.hashes))
        await self._sign_if_due(session, state, frontier, now)
        if own:
            await write_together(session, *writes)
        return [Appended(entry.index, leaf, data) for entry, leaf, data in zip(built, leaves, canonical, strict=True)]

    # ── heads ──

    async def latest_head(self, session: AsyncSession) -> LedgerHead | None:
        query = sa.select(LedgerHead).order_by(LedgerHead.size.desc(), LedgerHead.id.desc()).limit(1)  # type: ignore[union-attr, attr-defined]
        return (await session.execute(query)).scalar_one_or_none()

    async def _sign_if_due(self, session: AsyncSession, state: LedgerState, frontier: merkle.Frontier, now: datetime) -> None:
        due = (
            state.head_size is None
            or frontier.size - state.head_size >= self.settings.ledger_head_every_entries
            or (frontier.size > state.head_size and millis(now) - (state.head_timestamp_ms or 0) >= self.settings.ledger_head_interval_ms)
        )
        if due:
            await self._store_head(session, state, frontier, now)

    async def sign_head(self, session: AsyncSession, now: datetime, *, only_if_stale: bool = False) -> LedgerHead | None:
        """Sign a head over the whole log now (or, with `only_if_stale`, only when entries wait
        for one for longer than the interval)."""
        state = await self.lock(session)
        if only_if_stale and not self.head_due(state.size, state.head_size, state.head_timestamp_ms, now):
            return None
        frontier = merkle.Frontier.from_state(state.size, _split(state.frontier))
        return await self._store_head(session, state, frontier, now)

    def head_due(self, size: int, head_size: int | None, head_timestamp_ms: int | None, now: datetime) -> bool:
        """Whether entries have waited for a head longer than the interval (or none was signed)."""
        return head_size is None or (
            head_size != size and millis(now) - (head_timestamp_ms or 0) >= self.settings.ledger_head_interval_ms
        )

    async def _store_head(self, session: AsyncSession, state: LedgerState, frontier: merkle.Frontier, now: datetime) -> LedgerHead:
        signer = await self.active_signer(session, now)
        signed = signer.sign_head(frontier.root(), frontier.size, millis(now))
        head = LedgerHead(
            size=signed.size, root_hash=signed.root_hash, timestamp_ms=signed.timestamp, key_id=signed.key_id, signature=signed.signature
        )
        session.add(head)
        await session.execute(
            sa.update(LedgerState).where(LedgerState.id == 1).values(head_size=signed.size, head_timestamp_ms=signed.timestamp)
        )
        set_committed_value(state, "head_size", signed.size)
        set_committed_value(state, "head_timestamp_ms", signed.timestamp)
        await session.flush()
        return head

    # ── reads and proofs ──

    async def size(self, session: AsyncSession) -> int:
        return int((await session.execute(sa.select(LedgerState.size).where(LedgerState.id == 1))).scalar_one())

    async def node_source(self, session: AsyncSession, needed: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The perfect subtree roots `needed`, computed from the stored leaves and tile nodes."""
        found: dict[tuple[int, int], bytes] = {}
        for level, idx in needed:
            stored_level, first, end = merkle.stored_cover(level, idx)
            if stored_level == 0:
                query = sa.select(LedgerEntry.leaf_hash).where(LedgerEntry.index >= first, LedgerEntry.index < end).order_by(LedgerEntry.index)
            else:
                query = (
                    sa.select(LedgerNode.hash)
                    .where(LedgerNode.level == stored_level, LedgerNode.idx >= first, LedgerNode.idx < end)
                    .order_by(LedgerNode.idx)
                )
            hashes = list((await session.execute(query)).scalars())
            if len(hashes) != end - first:
                raise Conflict(f"the log is missing stored hashes for node ({level}, {idx})")
            found[(level, idx)] = merkle.fold_perfect(hashes)
        return found

    async def inclusion_proof(self, session: AsyncSession, index: int, size: int) -> tuple[bytes, list[bytes]]:
        await self._check_size(session, size, "size")
        if not 0 <= index < size:
            raise InvalidInput("index: must be at least 0 and less than size", errors=[{"field": "index", "reason": "out of range"}])
        ranges = merkle.inclusion_ranges(index, size)
        nodes = await self.node_source(session, merkle.needed_nodes(ranges))
        leaf = (await session.execute(sa.select(LedgerEntry.leaf_hash).where(LedgerEntry.index == index))).scalar_one()
        return leaf, merkle.inclusion_proof(index, size, lambda level, idx: nodes[(level, idx)])

    async def consistency_proof(self, session: AsyncSession, first: int, second: int) -> list[bytes]:
        await self._check_size(session, second, "second")
        if not 0 < first <= second:
            raise InvalidInput("first: must be at least 1 and at most second", errors=[{"field": "first", "reason": "out of range"}])
        ranges = merkle.consistency_ranges(first, second)
        nodes = await self.node_source(session, merkle.needed_nodes(ranges))
        return merkle.consistency_proof(first, second, lambda level, idx: nodes[(level, idx)])

    async def _check_size(self, session: AsyncSession, size: int, field: str) -> None:
        current = await self.size(session)
        if not 0 < size <= current:
            raise InvalidInput(
                f"{field}: the log has {current} entries; ask for a size from 1 to {current}",
                errors=[{"field": field, "reason": "out of range"}],
            )

    def head_out(self, head: LedgerHead) -> SignedTreeHead:
        return SignedTreeHead(key_id=head.key_id, root_hash=head.root_hash, size=head.size, timestamp=head.timestamp_ms, signature=head.signature)


def _split(frontier: bytes) -> list[bytes]:
    return [frontier[i : i + HASH_BYTES] for i in range(0, len(frontier), HASH_BYTES)]


def _type_of(entry: Entry) -> str:
    return type(entry).__struct_config__.tag  # type: ignore[return-value]
