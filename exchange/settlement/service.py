"""Settlement use cases: journals of transfers, deposits, withdrawals, balances, history.

`post_journals` takes a batch: the ledger is locked once, balances and holds are loaded once,
each journal is applied all or nothing by the pure posting code, and the whole batch is hashed
and appended at once. A refused journal leaves the others untouched."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, NamedTuple

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from exchange.auth import Caller
from exchange.core.canonical import sha256_hex
from exchange.core.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, TransferRefused
from exchange.core.ids import new_id
from exchange.core.money import AMOUNT_MAX
from exchange.db import in_list
from exchange.settlement import posting
from exchange.settlement.entries import TransferEntry, transfer_entry
from exchange.settlement.ledger import Appended, Ledger, millis
from exchange.settlement.posting import Book, Pending, PendingStatus, Phase, Refused, Transfer, TransferKind
from exchange.tables import Account, LedgerEntry, LedgerState, Participant, PendingTransfer, Rows, Withdrawal, write_together

# Core tables for executemany updates (the ORM's bulk update wants whole rows).
_ACCOUNTS: sa.Table = Account.__table__  # type: ignore[assignment]
_PENDING: sa.Table = PendingTransfer.__table__  # type: ignore[assignment]

JOURNAL_TRANSFERS_MAX = 100
IN_CHUNK = 500
PAGE_MAX = 200
REUSE_CODES = {"transfer_id_reused": 409, "journal_id_reused": 409, "duplicate_deposit": 409}

JournalId = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Rail = Annotated[str, msgspec.Meta(pattern="^(bank|ecny)$")]
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
PositiveAmount = Annotated[int, msgspec.Meta(ge=1, le=AMOUNT_MAX)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class JournalIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Transfers applied together or not at all, in order."""

    id: JournalId | None = None
    transfers: Annotated[list[Transfer], msgspec.Meta(min_length=1, max_length=JOURNAL_TRANSFERS_MAX)]


class JournalOut(msgspec.Struct, frozen=True, kw_only=True):
    journal_id: str
    entries: list[dict[str, Any]]
    """Each ledger entry's decoded fields with its `leaf_hash` (hex) and `canonical` (base64)."""


class Posted(msgspec.Struct, frozen=True):
    """A journal in the log: what a batch caller gets back (decoding entries is left to `out`)."""

    journal_id: str
    appended: list[Appended]

    def out(self) -> JournalOut:
        return JournalOut(journal_id=self.journal_id, entries=[entry_out(a.index, a.leaf_hash, a.canonical) for a in self.appended])


class DepositIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    participant_id: Text
    amount: PositiveAmount
    currency: Currency
    rail: Rail
    reference: Text
    """The payment rail's unique id for this payment: a second deposit with it is refused."""


class WithdrawalIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: PositiveAmount
    currency: Currency
    rail: Rail
    destination: Text
    """The bank account or e-CNY wallet to pay to."""


class PayoutIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reference: Text
    """The rail's id of the payout that was made."""


class WithdrawalOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    participant_id: str
    amount: int
    currency: str
    rail: str
    destination: str
    status: str
    payout_reference: str | None
    created_at: datetime
    updated_at: datetime


class WithdrawalPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[WithdrawalOut]


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    available: int
    escrow: int


class BalancesOut(msgspec.Struct, frozen=True, kw_only=True):
    participant_id: str
    balances: list[Balance]


class AccountOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    owner_id: str
    kind: str
    currency: str
    balance: int


class AccountsOut(msgspec.Struct, frozen=True, kw_only=True):
    accounts: list[AccountOut]
    totals: dict[str, int]
    """Sum of every balance per currency: always 0 in a double-entry book."""


class EntryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[dict[str, Any]]
    next_cursor: str | None


def request_hash(transfer: Transfer) -> str:
    return sha256_hex(msgspec.to_builtins(transfer))


def entry_out(index: int, leaf_hash: bytes, canonical: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(canonical)
    return {**decoded, "index": index, "leaf_hash": leaf_hash.hex(), "canonical": base64.b64encode(canonical).decode()}


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


# What a batch reads by key, elsewhere than on PostgreSQL (where `_POSTING_READS` reads it all
# at once): each query with its key column, read in IN lists of at most IN_CHUNK keys.
_TRANSFERS_SEEN = (sa.select(LedgerEntry.transfer_id, LedgerEntry.request_hash, LedgerEntry.journal_id), LedgerEntry.transfer_id)
_JOURNALS_SEEN = (sa.select(LedgerEntry.journal_id), LedgerEntry.journal_id)
_PENDINGS = (sa.select(PendingTransfer), PendingTransfer.id)
_BALANCES = (sa.select(Account.id, Account.balance), Account.id)
_PARTICIPANTS = (sa.select(Participant.id), Participant.id)


async def _select_in(session: AsyncSession, read: tuple[sa.Select[Any], Any], values: Iterable[str]) -> list[Any]:
    """The rows of `read` whose key is one of `values`."""
    query, column = read
    rows: list[Any] = []
    for chunk in _chunks(sorted(set(values))):
        rows.extend((await session.execute(query.where(column.in_(in_list(chunk))))).all())
    return rows


def _as_error(refused: Refused, journal_id: str | None = None) -> TransferRefused:
    return TransferRefused(
        refused.code,
        f"transfer {refused.transfer_id}: {refused.message}",
        status=REUSE_CODES.get(refused.code, 422),
        transfer_id=refused.transfer_id,
        errors=[{"field": refused.field, "reason": refused.message}],
    )


async def post_journals(
    session: AsyncSession, ledger: Ledger, journals: Sequence[JournalIn], now: datetime, *, with_rows: Sequence[Rows] = (),
    before_write: Callable[[], Awaitable[None]] | None = None,
) -> list[Posted | TransferRefused]:
    """Apply a batch of journals; each result is the journal's entries or why it was refused.
    `with_rows`: the caller's own rows, written with the ledger's (one round trip on PostgreSQL);
    `before_write`: awaited just before they are written (the order desk's contract signatures)."""
    state, reads = await _lock_and_read(session, ledger, journals)
    results: list[Posted | TransferRefused | None] = [None] * len(journals)
    batch_id = new_id("jrn")  # one id per batch, numbered: ids for thousands of journals cost nothing
    journal_ids = [journal.id or f"{batch_id}.{position}" for position, journal in enumerate(journals)]

    existing, used_journals = reads.transfers, reads.journals
    fresh: list[int] = []
    replays: dict[int, str] = {}
    batch_transfers: set[str] = set()
    batch_journals: set[str] = set()
    for position, journal in enumerate(journals):
        found = [existing.get(transfer.id) for transfer in journal.transfers]
        if all(found):
            same = all(row.request_hash == request_hash(t) for row, t in zip(found, journal.transfers, strict=True))
            same_journal = len({row.journal_id for row in found}) == 1 and (journal.id is None or found[0].journal_id == journal.id)
            if same and same_journal:
                replays[position] = found[0].journal_id  # a retry: answer with what was done
                continue
        clash = next((t.id for t, row in zip(journal.transfers, found, strict=True) if row is not None), None)
        if clash is not None:
            results[position] = _as_error(Refused(clash, "id", "transfer_id_reused", "this transfer id was used by another transfer"))
        elif journal.id is not None and journal.id in used_journals:
            results[position] = _as_error(Refused(journal.transfers[0].id, "journal.id", "journal_id_reused", f"journal id {journal.id!r} is taken"))
        elif clash := next((t.id for t in journal.transfers if t.id in batch_transfers), None):
            results[position] = _as_error(Refused(clash, "id", "transfer_id_reused", "an earlier journal of this batch uses this transfer id"))
        elif journal.id is not None and journal.id in batch_journals:
            results[position] = _as_error(Refused(journal.transfers[0].id, "journal.id", "journal_id_reused", f"journal id {journal.id!r} is used twice"))
        else:
            fresh.append(position)
            batch_transfers.update(t.id for t in journal.transfers)
            if journal.id is not None:
                batch_journals.add(journal.id)

    pendings, balances, known_owners = reads.pendings, reads.balances, reads.owners
    book = Book(balances, pendings)
    applied: list[tuple[int, list[posting.Movement]]] = []
    for position in fresh:
        journal = journals[position]
        try:
            _check_owners(journal.transfers, balances, known_owners)
            applied.append((position, book.apply(journal.transfers)))
        except Refused as refused:
            results[position] = _as_error(refused)

    if applied:
        await _write(session, ledger, state, journals, journal_ids, applied, book, balances, set(pendings), now, results, with_rows, before_write)
    else:
        if before_write is not None:
            await before_write()
        await write_together(session, *with_rows)
    for position, journal_id in replays.items():
        results[position] = await posted(session, journal_id)
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


class _Reads(NamedTuple):
    """What posting a batch reads, for all its transfers (those it will refuse or replay too)."""

    transfers: dict[str, Any]
    """Transfer id → (transfer_id, request_hash, journal_id) of the entries already logged."""
    journals: set[str]
    """The journal ids given that are taken."""
    pendings: dict[str, Pending]
    balances: dict[str, int]
    """Of the accounts the transfers and the pendings name, those that exist."""
    owners: set[str]
    """Of the participants owning accounts the transfers name, those that exist."""


# On PostgreSQL all of it in one statement (run after the ledger's lock, so it reads what the
# lock holder before us committed); each part comes back as a JSON array, in text. The
# accounts are one array (`= ANY(a || b)`), not `= ANY(a) OR IN (b)`: the OR reads the whole
# table (3 ms on 3,500 accounts, and growing with them, against 0.4 ms).
_POSTING_READS = sa.text("""
    SELECT
      (SELECT coalesce(CAST(json_agg(json_build_array(e.transfer_id, e.request_hash, e.journal_id)) AS TEXT), '[]')
         FROM ledger_entries e WHERE e.transfer_id = ANY(CAST(:transfers AS VARCHAR[]))),
      (SELECT coalesce(CAST(json_agg(DISTINCT e.journal_id) AS TEXT), '[]')
         FROM ledger_entries e WHERE e.journal_id = ANY(CAST(:journals AS VARCHAR[]))),
      (SELECT coalesce(CAST(json_agg(json_build_array(p.id, p.debit_account, p.credit_account, p.escrow_account, p.currency, p.amount, p.remaining, p.status)) AS TEXT), '[]')
         FROM pending_transfers p WHERE p.id = ANY(CAST(:pendings AS VARCHAR[]))),
      (SELECT coalesce(CAST(json_agg(json_build_array(a.id, a.balance)) AS TEXT), '[]')
         FROM accounts a WHERE a.id = ANY(CAST(:accounts AS VARCHAR[]) || ARRAY(
            SELECT unnest(ARRAY[p.debit_account, p.credit_account, p.escrow_account]) FROM pending_transfers p WHERE p.id = ANY(CAST(:pendings AS VARCHAR[]))))),
      (SELECT coalesce(CAST(json_agg(x.id) AS TEXT), '[]') FROM participants x WHERE x.id = ANY(CAST(:owners AS VARCHAR[])))
""")


# The ledger's lock and, in the same round trip, what `_POSTING_READS` reads, with the ledger's
# size as the statement's snapshot saw it. Every statement sees the data as of its start, and
# the lock may have waited for another poster to commit: then the locked row (read as it stands
# after the wait) shows a larger size than the snapshot, and the reads are made again. Every
# change to balances and pending transfers appends to the log under this lock, so an unchanged
# size means the snapshot's reads are current.
_LOCK_AND_POSTING_READS = sa.text(f"""
    SELECT locked.id, locked.size, locked.frontier, locked.head_size, locked.head_timestamp_ms,
      (SELECT seen.size FROM ledger_state seen WHERE seen.id = 1),
      {_POSTING_READS.text.strip().removeprefix("SELECT").strip()}
    FROM (SELECT id, size, frontier, head_size, head_timestamp_ms FROM ledger_state WHERE id = 1 FOR UPDATE) AS locked
""")


async def _lock_and_read(session: AsyncSession, ledger: Ledger, journals: Sequence[JournalIn]) -> tuple[LedgerState, _Reads]:
    """The ledger's lock (its state row, in the session) and what posting `journals` reads."""
    if session.bind.dialect.name != "postgresql":
        return await ledger.lock(session), await _posting_reads(session, journals)
    row = (await session.execute(_LOCK_AND_POSTING_READS, _posting_parameters(journals))).one()
    state_id, size, frontier, head_size, head_timestamp_ms, seen_size, *parts = row
    state = _persistent_state(session, LedgerState(id=state_id, size=size, frontier=frontier, head_size=head_size, head_timestamp_ms=head_timestamp_ms))
    if seen_size != size:  # a poster committed while the lock waited: read again, after it
        return state, await _posting_reads(session, journals)
    return state, _decoded_reads(parts)


def _persistent_state(session: AsyncSession, locked: LedgerState) -> LedgerState:
    """The locked row as the session's object (as `Ledger.lock` would give it): the one it holds,
    brought up to date, or this one, taken as read from the database."""
    held = session.identity_map.get(identity_key(LedgerState, locked.id))
    if held is None:
        make_transient_to_detached(locked)
        session.add(locked)
        return locked
    for name in ("size", "frontier", "head_size", "head_timestamp_ms"):
        set_committed_value(held, name, getattr(locked, name))
    return held  # type: ignore[no-any-return]


def _posting_parameters(journals: Sequence[JournalIn]) -> dict[str, list[str]]:
    transfers = [transfer for journal in journals for transfer in journal.transfers]
    named = posting.accounts_named(transfers)
    return {
        "transfers": sorted({t.id for t in transfers}),
        "journals": sorted({journal.id for journal in journals if journal.id is not None}),
        "pendings": sorted({t.pending_id for t in transfers if t.pending_id is not None}),
        "accounts": sorted(named),
        "owners": sorted({account.owner for name in named if (account := posting.parse_account(name)) and account.owner != posting.EXCHANGE_OWNER}),
    }


def _decoded_reads(parts: Sequence[str]) -> _Reads:
    seen, taken, pending_rows, balance_rows, owner_rows = (msgspec.json.decode(part) for part in parts)
    return _Reads(
        transfers={row[0]: _Seen(*row) for row in seen},
        journals=set(taken),
        pendings={
            row[0]: Pending(id=row[0], debit=row[1], credit=row[2], escrow=row[3], currency=row[4], amount=row[5], remaining=row[6], status=PendingStatus(row[7]))
            for row in pending_rows
        },
        balances={name: int(balance) for name, balance in balance_rows},
        owners=set(owner_rows),
    )


async def _posting_reads(session: AsyncSession, journals: Sequence[JournalIn]) -> _Reads:
    if session.bind.dialect.name == "postgresql":
        return _decoded_reads((await session.execute(_POSTING_READS, _posting_parameters(journals))).one())
    parameters = _posting_parameters(journals)
    pendings = {row[0].id: _pending(row[0]) for row in await _select_in(session, _PENDINGS, parameters["pendings"])}
    named = set(parameters["accounts"])
    for pending in pendings.values():
        named |= {pending.debit, pending.credit, pending.escrow}
    return _Reads(
        transfers={row.transfer_id: row for row in await _select_in(session, _TRANSFERS_SEEN, parameters["transfers"])},
        journals={row.journal_id for row in await _select_in(session, _JOURNALS_SEEN, parameters["journals"])},
        pendings=pendings,
        balances={row.id: int(row.balance) for row in await _select_in(session, _BALANCES, named)},
        owners={row.id for row in await _select_in(session, _PARTICIPANTS, parameters["owners"])},
    )


class _Seen(NamedTuple):
    transfer_id: str
    request_hash: str | None
    journal_id: str | None


def _check_owners(transfers: Sequence[Transfer], balances: dict[str, int], known_owners: set[str]) -> None:
    for transfer in transfers:
        for field, name in (("debit_account", transfer.debit_account), ("credit_account", transfer.credit_account)):
            account = posting.parse_account(name) if name else None
            if account is not None and name not in balances and account.owner != posting.EXCHANGE_OWNER and account.owner not in known_owners:
                raise Refused(transfer.id, field, "unknown_account", f"no participant {account.owner!r} owns {name!r}")


async def _write(
    session: AsyncSession,
    ledger: Ledger,
    state: LedgerState,
    journals: Sequence[JournalIn],
    journal_ids: list[str],
    applied: list[tuple[int, list[posting.Movement]]],
    book: Book,
    balances_before: dict[str, int],
    loaded_pendings: set[str],
    now: datetime,
    results: list[Any],
    with_rows: Sequence[Rows],
    before_write: Callable[[], Awaitable[None]] | None = None,
) -> None:
    at = millis(now)
    hashes = {transfer.id: request_hash(transfer) for position, _ in applied for transfer in journals[position].transfers}
    columns: list[dict[str, Any]] = []
    spans: list[tuple[int, int, int]] = []  # (journal position, first offset, count)
    flat: list[tuple[str, int, posting.Movement]] = []
    for position, movements in applied:
        spans.append((position, len(flat), len(movements)))
        for movement in movements:
            flat.append((journal_ids[position], len(movements), movement))
            columns.append({"request_hash": hashes.get(movement.transfer_id)})

    def build(start: int) -> list[TransferEntry]:
        return [transfer_entry(start + offset, at, journal_id, legs, movement) for offset, (journal_id, legs, movement) in enumerate(flat)]

    writes: list[Rows] = []  # written together at the end: one round trip on PostgreSQL
    appended = await ledger.append_built(session, build, now, columns=columns, state=state, writes=writes)
    first_index = appended[0].index

    touched = {name for _, _, movement in flat for name in (movement.debit, movement.credit)}
    updates = [{"id": name, "balance": book.balances[name]} for name in sorted(touched) if name in balances_before]
    inserts = []
    for name in sorted(touched - balances_before.keys()):
        account = posting.parse_account(name)
        assert account is not None
        inserts.append({"id": name, "owner_id": account.owner, "kind": account.kind, "currency": account.currency, "balance": book.balances[name], "created_at": now})
    writes.append(Rows(_ACCOUNTS, updates, key="id"))
    writes.append(Rows(_ACCOUNTS, inserts))

    index_of = {movement.transfer_id: first_index + offset for offset, (_, _, movement) in enumerate(flat)}
    last_touch: dict[str, int] = {}
    for offset, (_, _, movement) in enumerate(flat):
        held = movement.pending_id or (movement.transfer_id if movement.phase is Phase.pending else None)
        if held is not None:
            last_touch[held] = first_index + offset
    new_pendings, changed_pendings = [], []
    for pending_id in sorted(book.changed_pendings):
        pending = book.pendings.get(pending_id)
        if pending is None:  # made and refused within a journal: undone
            continue
        updated = last_touch[pending_id]
        row = {"id": pending.id, "remaining": pending.remaining, "status": pending.status.value, "updated_index": updated}
        if pending_id in loaded_pendings:
            changed_pendings.append(row)
        else:
            new_pendings.append({
                **row, "debit_account": pending.debit, "credit_account": pending.credit, "escrow_account": pending.escrow,
                "currency": pending.currency, "amount": pending.amount, "created_index": index_of[pending.id],
            })
    writes.append(Rows(_PENDING, new_pendings))
    writes.append(Rows(_PENDING, changed_pendings, key="id"))
    if before_write is not None:
        await before_write()
    await write_together(session, *writes, *with_rows)

    for position, offset, count in spans:
        results[position] = Posted(journal_ids[position], appended[offset : offset + count])


def _pending(row: PendingTransfer) -> Pending:
    return Pending(
        id=row.id, debit=row.debit_account, credit=row.credit_account, escrow=row.escrow_account, currency=row.currency,
        amount=row.amount, remaining=row.remaining, status=PendingStatus(row.status),
    )


async def posted(session: AsyncSession, journal_id: str) -> Posted:
    rows = (
        await session.execute(
            sa.select(LedgerEntry.index, LedgerEntry.leaf_hash, LedgerEntry.canonical).where(LedgerEntry.journal_id == journal_id).order_by(LedgerEntry.index)
        )
    ).all()
    return Posted(journal_id, [Appended(r.index, r.leaf_hash, r.canonical) for r in rows])


async def post_one(session: AsyncSession, ledger: Ledger, journal: JournalIn, now: datetime) -> JournalOut:
    [result] = await post_journals(session, ledger, [journal], now)
    if isinstance(result, TransferRefused):
        raise result
    return result.out()


# ── money in and out ──


async def _participant(session: AsyncSession, participant_id: str) -> Participant:
    participant = await session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"No participant {participant_id!r}.")
    return participant


def deposit_transfer_id(rail: str, reference: str) -> str:
    # The rail's reference may hold any characters: its digest makes a valid, unique transfer id.
    return f"deposit.{rail}.{hashlib.sha256(reference.encode()).hexdigest()[:40]}"


async def deposit(session: AsyncSession, ledger: Ledger, body: DepositIn, now: datetime) -> JournalOut:
    await ledger.lock(session)
    await _participant(session, body.participant_id)
    transfer_id = deposit_transfer_id(body.rail, body.reference)
    taken = (await session.execute(sa.select(LedgerEntry.index).where(LedgerEntry.transfer_id == transfer_id))).first()
    if taken is not None:
        raise TransferRefused(
            "duplicate_deposit", f"A deposit with {body.rail} reference {body.reference!r} is already recorded (ledger entry {taken[0]}).",
            status=409, errors=[{"field": "reference", "reason": "already recorded"}],
        )
    transfer = Transfer(
        id=transfer_id, kind=TransferKind.deposit, debit_account=posting.clearing(body.rail, body.currency),
        credit_account=posting.available(body.participant_id, body.currency), amount=body.amount, currency=body.currency,
        references=posting.References(payment=body.reference),
    )
    return await post_one(session, ledger, JournalIn(transfers=[transfer]), now)


def withdrawal_out(row: Withdrawal) -> WithdrawalOut:
    return WithdrawalOut(
        id=row.id, participant_id=row.participant_id, amount=row.amount, currency=row.currency, rail=row.rail,
        destination=row.destination, status=row.status, payout_reference=row.payout_reference, created_at=row.created_at, updated_at=row.updated_at,
    )


async def request_withdrawal(session: AsyncSession, ledger: Ledger, caller: Caller, body: WithdrawalIn, now: datetime) -> WithdrawalOut:
    withdrawal = Withdrawal(
        id=new_id("wdr"), participant_id=caller.id, amount=body.amount, currency=body.currency, rail=body.rail,
        destination=body.destination, status="requested", created_at=now, updated_at=now,
    )
    hold = Transfer(
        id=f"withdrawal.{withdrawal.id}", kind=TransferKind.withdrawal, phase=Phase.pending,
        debit_account=posting.available(caller.id, body.currency), credit_account=posting.clearing(body.rail, body.currency),
        amount=body.amount, currency=body.currency, references=posting.References(withdrawal=withdrawal.id),
    )
    await post_one(session, ledger, JournalIn(transfers=[hold]), now)
    session.add(withdrawal)
    await session.flush()
    return withdrawal_out(withdrawal)


async def _open_withdrawal(session: AsyncSession, withdrawal_id: str) -> Withdrawal:
    withdrawal = await session.get(Withdrawal, withdrawal_id, with_for_update=session.bind.dialect.name == "postgresql")
    if withdrawal is None:
        raise NotFound(f"No withdrawal {withdrawal_id!r}.")
    if withdrawal.status != "requested":
        raise InvalidTransition(f"Withdrawal {withdrawal_id} is already {withdrawal.status}.")
    return withdrawal


async def confirm_withdrawal(session: AsyncSession, ledger: Ledger, withdrawal_id: str, body: PayoutIn, now: datetime) -> WithdrawalOut:
    await ledger.lock(session)
    withdrawal = await _open_withdrawal(session, withdrawal_id)
    reused = (await session.execute(sa.select(Withdrawal.id).where(Withdrawal.payout_reference == body.reference))).first()
    if reused is not None:
        raise TransferRefused(
            "duplicate_payout", f"Payout reference {body.reference!r} already confirmed withdrawal {reused[0]}.",
            status=409, errors=[{"field": "reference", "reason": "already used"}],
        )
    post = Transfer(
        id=f"withdrawal.{withdrawal.id}.paid", kind=TransferKind.withdrawal, phase=Phase.post, pending_id=f"withdrawal.{withdrawal.id}",
        references=posting.References(withdrawal=withdrawal.id, payment=body.reference),
    )
    await post_one(session, ledger, JournalIn(transfers=[post]), now)
    withdrawal.status, withdrawal.payout_reference, withdrawal.updated_at = "paid", body.reference, now
    await session.flush()
    return withdrawal_out(withdrawal)


async def cancel_withdrawal(session: AsyncSession, ledger: Ledger, caller: Caller, withdrawal_id: str, now: datetime) -> WithdrawalOut:
    await ledger.lock(session)
    withdrawal = await _open_withdrawal(session, withdrawal_id)
    if withdrawal.participant_id != caller.id and "operator" not in caller.roles:
        raise Forbidden("Only its owner or an operator may cancel a withdrawal.")
    void = Transfer(
        id=f"withdrawal.{withdrawal.id}.cancelled", kind=TransferKind.release, phase=Phase.void, pending_id=f"withdrawal.{withdrawal.id}",
        references=posting.References(withdrawal=withdrawal.id),
    )
    await post_one(session, ledger, JournalIn(transfers=[void]), now)
    withdrawal.status, withdrawal.updated_at = "cancelled", now
    await session.flush()
    return withdrawal_out(withdrawal)


async def withdrawals(session: AsyncSession, participant_id: str | None, status: str | None) -> WithdrawalPage:
    query = sa.select(Withdrawal).order_by(Withdrawal.created_at.desc()).limit(PAGE_MAX)  # type: ignore[attr-defined]
    if participant_id is not None:
        query = query.where(Withdrawal.participant_id == participant_id)
    if status is not None:
        query = query.where(Withdrawal.status == status)
    return WithdrawalPage(items=[withdrawal_out(row) for row in (await session.execute(query)).scalars()])


# ── reading ──


async def balances(session: AsyncSession, participant_id: str) -> BalancesOut:
    rows = (await session.execute(sa.select(Account).where(Account.owner_id == participant_id))).scalars()
    by_currency: dict[str, dict[str, int]] = {}
    for row in rows:
        by_currency.setdefault(row.currency, {"available": 0, "escrow": 0})[row.kind] = row.balance
    return BalancesOut(
        participant_id=participant_id,
        balances=[Balance(currency=currency, **amounts) for currency, amounts in sorted(by_currency.items())],
    )


async def all_accounts(session: AsyncSession, owner_id: str | None) -> AccountsOut:
    query = sa.select(Account).order_by(Account.id)
    if owner_id is not None:
        query = query.where(Account.owner_id == owner_id)
    rows = list((await session.execute(query)).scalars())
    totals_query = sa.select(Account.currency, sa.func.sum(Account.balance)).group_by(Account.currency)
    totals = {currency: int(total) for currency, total in (await session.execute(totals_query)).all()}
    return AccountsOut(
        accounts=[AccountOut(id=r.id, owner_id=r.owner_id, kind=r.kind, currency=r.currency, balance=r.balance) for r in rows], totals=totals
    )


async def transfers_of(session: AsyncSession, participant_id: str, cursor: str | None, limit: int) -> EntryPage:
    """Entries that moved the participant's money, newest first; `cursor` is the last index seen."""
    names = list((await session.execute(sa.select(Account.id).where(Account.owner_id == participant_id))).scalars())
    if not names:
        return EntryPage(items=[], next_cursor=None)
    query = (
        sa.select(LedgerEntry.index, LedgerEntry.leaf_hash, LedgerEntry.canonical)
        .where(sa.or_(LedgerEntry.debit_account.in_(names), LedgerEntry.credit_account.in_(names)))  # type: ignore[union-attr]
        .order_by(LedgerEntry.index.desc())  # type: ignore[attr-defined]
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(LedgerEntry.index < _cursor(cursor))
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    next_cursor = str(page[-1].index) if len(rows) > limit else None
    return EntryPage(items=[entry_out(r.index, r.leaf_hash, r.canonical) for r in page], next_cursor=next_cursor)


def _cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise InvalidInput("cursor: not a cursor this API gave", errors=[{"field": "cursor", "reason": "invalid"}]) from None


async def entries(session: AsyncSession, caller: Caller | None, start: int, end: int) -> list[dict[str, Any]]:
    """Entries [start, end): operators and regulators read all, a participant the transfers of its
    own accounts, the transaction certificates of its own contracts and the public records
    (rule-set activations, registration certificates)."""
    query = sa.select(LedgerEntry.index, LedgerEntry.leaf_hash, LedgerEntry.canonical, LedgerEntry.type, LedgerEntry.debit_account, LedgerEntry.credit_account)
    query = query.where(LedgerEntry.index >= start, LedgerEntry.index < end).order_by(LedgerEntry.index)
    rows = (await session.execute(query)).all()
    sees_all = caller is not None and bool(caller.roles & {"operator", "regulator"})
    own_prefix = f"{caller.id}:" if caller is not None else None

    def visible(row: Any) -> bool:
        if sees_all:
            return True
        if row.type == "certificate":
            # Another party's trade is not a public record: a transaction certificate is its parties'.
            certificate = msgspec.json.decode(row.canonical).get("certificate", {})
            if certificate.get("type") == "transaction_certificate":
                named = {certificate.get("buyer_id"), certificate.get("vendor_id"), *(s.get("participant_id") for s in certificate.get("fee_shares", []))}
                return caller is not None and caller.id in named
        if row.type != "transfer":
            return True
        return own_prefix is not None and (row.debit_account.startswith(own_prefix) or row.credit_account.startswith(own_prefix))

    return [entry_out(r.index, r.leaf_hash, r.canonical) for r in rows if visible(r)]

