"""Double-entry posting, pure: journals of transfers applied to balances all or nothing.

Accounts are named `<owner>:<kind>:<currency>`: a participant's `available` and `escrow`, the
exchange's `fees`, and one clearing account per payment rail (`exchange:bank:CNY`,
`exchange:ecny:CNY`) that stands for money outside the exchange. Balances are what the exchange
owes the owner (credits minus debits), so every transfer moves the same amount from one account
to another and the balances of a currency always sum to zero. Only clearing accounts go below
zero.

Two-phase transfers work as in TigerBeetle: a `pending` transfer holds money by moving it from
the debit account to its owner's escrow account and remembers where it is going; a `post` moves
all or part of it on to the credit account (any rest goes back), a `void` sends it all back.
Escrow accounts move only that way, so a participant's escrow balance is always the sum of its
pending holds."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated

import msgspec

from exchange.core.money import AMOUNT_MAX, CURRENCIES

EXCHANGE_OWNER = "exchange"
RAILS = ("bank", "ecny")
PARTICIPANT_KINDS = ("available", "escrow")
EXCHANGE_KINDS = ("fees", *RAILS)

TransferId = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class TransferKind(StrEnum):
    deposit = "deposit"
    withdrawal = "withdrawal"
    hold = "hold"
    release = "release"
    settle = "settle"
    fee = "fee"
    refund = "refund"
    adjustment = "adjustment"


class Phase(StrEnum):
    single = "single"
    """Posted at once."""
    pending = "pending"
    """Held in the debit owner's escrow until posted or voided."""
    post = "post"
    """Completes a pending transfer: all or part of it goes on to its credit account."""
    void = "void"
    """Cancels a pending transfer: the held money goes back."""


class PendingStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"


class References(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a transfer is for: kept in the log, searchable later."""

    contract: Reference | None = None
    order: Reference | None = None
    listing: Reference | None = None
    payment: Reference | None = None
    """The payment rail's unique id for money coming in or going out."""
    withdrawal: Reference | None = None
    note: Reference | None = None


class Transfer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One requested transfer. For `post` and `void`, `pending_id` names the pending transfer and
    accounts and currency may be left out (they must match when given); a `post` without an
    amount posts the whole remaining hold."""

    id: TransferId
    kind: TransferKind
    phase: Phase = Phase.single
    debit_account: str | None = None
    credit_account: str | None = None
    amount: Annotated[int, msgspec.Meta(ge=1, le=AMOUNT_MAX)] | None = None
    currency: str | None = None
    pending_id: TransferId | None = None
    references: References = msgspec.field(default_factory=References)


class Movement(msgspec.Struct, frozen=True, kw_only=True):
    """Money that moved: one ledger entry. A transfer makes one, or two for a partial post
    (the rest goes back, as transfer `<id>/rest`: `/` is never in a client id)."""

    transfer_id: str
    kind: TransferKind
    phase: Phase
    debit: str
    credit: str
    amount: int
    currency: str
    pending_id: str | None
    references: References


class Pending(msgspec.Struct, kw_only=True):
    id: str
    debit: str
    """Where the money came from, and goes back to on void."""
    credit: str
    """Where it goes on post."""
    escrow: str
    currency: str
    amount: int
    remaining: int
    status: PendingStatus


class Refused(Exception):
    """A transfer breaks a ledger rule; nothing of its journal is applied."""

    def __init__(self, transfer_id: str, field: str, code: str, message: str) -> None:
        super().__init__(f"transfer {transfer_id}: {message}")
        self.transfer_id = transfer_id
        self.field = field
        self.code = code
        self.message = message


class Account(msgspec.Struct, frozen=True):
    owner: str
    kind: str
    currency: str

    @property
    def id(self) -> str:
        return f"{self.owner}:{self.kind}:{self.currency}"

    @property
    def clearing(self) -> bool:
        return self.owner == EXCHANGE_OWNER and self.kind in RAILS


@functools.lru_cache(maxsize=1 << 16)
def parse_account(account_id: str) -> Account | None:
    parts = account_id.split(":")
    if len(parts) != 3:
        return None
    owner, kind, currency = parts
    if currency not in CURRENCIES or not owner:
        return None
    if owner == EXCHANGE_OWNER:
        return Account(owner, kind, currency) if kind in EXCHANGE_KINDS else None
    return Account(owner, kind, currency) if kind in PARTICIPANT_KINDS else None


def available(owner: str, currency: str) -> str:
    return f"{owner}:available:{currency}"


def escrow(owner: str, currency: str) -> str:
    return f"{owner}:escrow:{currency}"


def clearing(rail: str, currency: str) -> str:
    return f"{EXCHANGE_OWNER}:{rail}:{currency}"


def fees(currency: str) -> str:
    return f"{EXCHANGE_OWNER}:fees:{currency}"


def accounts_named(transfers: Iterable[Transfer]) -> set[str]:
    """Every account a batch names directly, and the escrow a pending transfer holds money in."""
    names: set[str] = set()
    for transfer in transfers:
        names.update(name for name in (transfer.debit_account, transfer.credit_account) if name is not None)
        if transfer.phase is Phase.pending and transfer.debit_account is not None:
            account = parse_account(transfer.debit_account)
            if account is not None and account.owner != EXCHANGE_OWNER:
                names.add(escrow(account.owner, account.currency))
    return names


class Book:
    """Balances and pending transfers as a journal sees them; `apply` changes both or neither."""

    _MISSING = object()

    def __init__(self, balances: Mapping[str, int], pendings: Mapping[str, Pending]) -> None:
        self.balances = dict(balances)
        self.pendings = dict(pendings)
        self.changed_pendings: set[str] = set()

    def apply(self, journal: Sequence[Transfer]) -> list[Movement]:
        """Apply a journal's transfers in order; on any refusal the book is left as it was.
        Changes are undone from a log rather than applied to a copy: a batch of many small
        journals then costs what its transfers touch, not the size of the book."""
        if not journal:
            raise Refused("-", "transfers", "empty_journal", "a journal needs at least one transfer")
        balance_undo: list[tuple[str, object]] = []
        pending_undo: list[tuple[str, object]] = []
        movements: list[Movement] = []
        seen: set[str] = set()
        try:
            for transfer in journal:
                if transfer.id in seen:
                    raise Refused(transfer.id, "id", "duplicate_transfer_id", "the same transfer id twice in one journal")
                seen.add(transfer.id)
                for movement in _movements(transfer, self.pendings, pending_undo):
                    _move(self.balances, movement, balance_undo)
                    movements.append(movement)
        except Refused:
            for key, value in reversed(balance_undo):
                if value is self._MISSING:
                    del self.balances[key]
                else:
                    self.balances[key] = value  # type: ignore[assignment]
            for key, value in reversed(pending_undo):
                if value is self._MISSING:
                    del self.pendings[key]
                else:
                    self.pendings[key] = value  # type: ignore[assignment]
            raise
        self.changed_pendings.update(key for key, _ in pending_undo)
        return movements


def _movements(transfer: Transfer, pendings: dict[str, Pending], undo: list[tuple[str, object]]) -> list[Movement]:
    if transfer.phase in (Phase.post, Phase.void):
        return _complete(transfer, pendings, undo)
    if transfer.pending_id is not None:
        raise Refused(transfer.id, "pending_id", "invalid_transfer", "`pending_id` is only for `post` and `void`")
    debit = _account(transfer, "debit_account", transfer.debit_account)
    credit = _account(transfer, "credit_account", transfer.credit_account)
    if transfer.amount is None or transfer.amount <= 0:
        # decoding already refuses these; internal callers build Transfers directly
        raise Refused(transfer.id, "amount", "invalid_transfer", "`amount` must be a positive integer")
    currency = transfer.currency
    if currency is None or currency != debit.currency or currency != credit.currency:
        raise Refused(transfer.id, "currency", "currency_mismatch", "`currency` must be given and match both accounts")
    if debit.id == credit.id:
        raise Refused(transfer.id, "credit_account", "same_account", "debit and credit accounts must differ")
    for field, account in (("debit_account", debit), ("credit_account", credit)):
        if account.kind == "escrow":
            raise Refused(transfer.id, field, "escrow_direct", "escrow accounts move only by pending, post and void transfers")
    _check_clearing(transfer, debit, credit)
    if transfer.phase is Phase.single:
        return [_movement(transfer, debit.id, credit.id, transfer.amount, currency)]
    # pending: hold the money in the debit owner's escrow until it is posted or voided
    if debit.owner == EXCHANGE_OWNER:
        raise Refused(transfer.id, "debit_account", "invalid_transfer", "only a participant's available money can be held")
    if transfer.id in pendings:
        raise Refused(transfer.id, "id", "transfer_id_reused", "a pending transfer with this id exists")
    held = escrow(debit.owner, currency)
    undo.append((transfer.id, Book._MISSING))
    pendings[transfer.id] = Pending(
        id=transfer.id, debit=debit.id, credit=credit.id, escrow=held, currency=currency,
        amount=transfer.amount, remaining=transfer.amount, status=PendingStatus.pending,
    )
    return [_movement(transfer, debit.id, held, transfer.amount, currency)]


def _complete(transfer: Transfer, pendings: dict[str, Pending], undo: list[tuple[str, object]]) -> list[Movement]:
    if transfer.pending_id is None:
        raise Refused(transfer.id, "pending_id", "invalid_transfer", f"`pending_id` is required to {transfer.phase.value}")
    pending = pendings.get(transfer.pending_id)
    if pending is None:
        raise Refused(transfer.id, "pending_id", "pending_not_found", f"no pending transfer {transfer.pending_id!r}")
    if pending.status is not PendingStatus.pending:
        raise Refused(transfer.id, "pending_id", "pending_not_pending", f"pending transfer {pending.id!r} is already {pending.status.value}")
    for field, given, expected in (
        ("debit_account", transfer.debit_account, pending.debit),
        ("credit_account", transfer.credit_account, pending.credit),
        ("currency", transfer.currency, pending.currency),
    ):
        if given is not None and given != expected:
            raise Refused(transfer.id, field, "pending_mismatch", f"`{field}` must be {expected!r}, as in the pending transfer")
    # Replace rather than mutate, so the undo log can put the old record back.
    undo.append((pending.id, pending))
    pending = pendings[pending.id] = msgspec.structs.replace(pending)
    if transfer.phase is Phase.void:
        if transfer.amount is not None and transfer.amount != pending.remaining:
            raise Refused(transfer.id, "amount", "pending_mismatch", "a void returns the whole hold; leave `amount` out")
        back = pending.remaining
        pending.remaining, pending.status = 0, PendingStatus.voided
        return [_movement(transfer, pending.escrow, pending.debit, back, pending.currency, pending.id)]
    amount = pending.remaining if transfer.amount is None else transfer.amount
    if amount > pending.remaining:
        raise Refused(transfer.id, "amount", "exceeds_pending", f"only {pending.remaining} is held by {pending.id!r}")
    rest = pending.remaining - amount
    pending.remaining, pending.status = 0, PendingStatus.posted
    movements = [_movement(transfer, pending.escrow, pending.credit, amount, pending.currency, pending.id)]
    if rest:
        back = msgspec.structs.replace(transfer, id=f"{transfer.id}/rest", kind=TransferKind.release)
        movements.append(_movement(back, pending.escrow, pending.debit, rest, pending.currency, pending.id))
    return movements


def _account(transfer: Transfer, field: str, name: str | None) -> Account:
    if name is None:
        raise Refused(transfer.id, field, "invalid_transfer", f"`{field}` is required")
    account = parse_account(name)
    if account is None:
        raise Refused(transfer.id, field, "unknown_account", f"{name!r} is not an account (`<participant id>:available:CNY`, `exchange:fees:CNY`, …)")
    return account


def _check_clearing(transfer: Transfer, debit: Account, credit: Account) -> None:
    """Clearing accounts stand for money outside: it comes in by deposit and leaves by withdrawal."""
    if debit.clearing and transfer.kind not in (TransferKind.deposit, TransferKind.adjustment):
        raise Refused(transfer.id, "kind", "clearing_kind", "money comes in from a clearing account only by `deposit`")
    if credit.clearing and transfer.kind not in (TransferKind.withdrawal, TransferKind.adjustment):
        raise Refused(transfer.id, "kind", "clearing_kind", "money goes out to a clearing account only by `withdrawal`")


def _movement(transfer: Transfer, debit: str, credit: str, amount: int, currency: str, pending_id: str | None = None) -> Movement:
    return Movement(
        transfer_id=transfer.id, kind=transfer.kind, phase=transfer.phase, debit=debit, credit=credit,
        amount=amount, currency=currency, pending_id=pending_id, references=transfer.references,
    )


def _move(balances: dict[str, int], movement: Movement, undo: list[tuple[str, object]]) -> None:
    debit = parse_account(movement.debit)
    assert debit is not None
    before = balances.get(movement.debit, 0)
    after = before - movement.amount
    if after < 0 and not debit.clearing:
        raise Refused(
            movement.transfer_id, "amount", "insufficient_funds",
            f"{movement.debit} holds {before}, less than {movement.amount}",
        )
    undo.append((movement.debit, balances.get(movement.debit, Book._MISSING)))
    undo.append((movement.credit, balances.get(movement.credit, Book._MISSING)))
    balances[movement.debit] = after
    balances[movement.credit] = balances.get(movement.credit, 0) + movement.amount
