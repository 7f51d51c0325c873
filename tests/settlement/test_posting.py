"""The pure posting core: worked examples of every phase and refusal, then properties of random
sequences of journals applied to one book (accepted or refused, the ledger rules hold)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.settlement.posting import (
    RAILS,
    Book,
    Movement,
    Pending,
    PendingStatus,
    Phase,
    References,
    Refused,
    Transfer,
    TransferKind,
    accounts_named,
    available,
    clearing,
    escrow,
    fees,
    parse_account,
)

CNY = "CNY"
ALICE, BOB, CAROL = available("alice", CNY), available("bob", CNY), available("carol", CNY)
ALICE_ESCROW, BOB_ESCROW = escrow("alice", CNY), escrow("bob", CNY)
FEES = fees(CNY)
BANK, ECNY = clearing("bank", CNY), clearing("ecny", CNY)


# --- building transfers ----------------------------------------------------------------------


def deposit(transfer_id: str, to: str, amount: int, *, rail: str = BANK) -> Transfer:
    return Transfer(id=transfer_id, kind=TransferKind.deposit, debit_account=rail, credit_account=to, amount=amount, currency=CNY)


def withdraw(transfer_id: str, source: str, amount: int, *, rail: str = BANK) -> Transfer:
    return Transfer(id=transfer_id, kind=TransferKind.withdrawal, debit_account=source, credit_account=rail, amount=amount, currency=CNY)


def move(transfer_id: str, debit: str, credit: str, amount: int, *, kind: TransferKind = TransferKind.settle, **fields: object) -> Transfer:
    return Transfer(id=transfer_id, kind=kind, debit_account=debit, credit_account=credit, amount=amount, currency=CNY, **fields)  # type: ignore[arg-type]


def hold(transfer_id: str, debit: str, credit: str, amount: int, *, kind: TransferKind = TransferKind.hold) -> Transfer:
    return Transfer(
        id=transfer_id, kind=kind, phase=Phase.pending, debit_account=debit, credit_account=credit, amount=amount, currency=CNY
    )


def post(transfer_id: str, pending_id: str, amount: int | None = None, **fields: object) -> Transfer:
    return Transfer(id=transfer_id, kind=TransferKind.settle, phase=Phase.post, pending_id=pending_id, amount=amount, **fields)  # type: ignore[arg-type]


def void(transfer_id: str, pending_id: str, amount: int | None = None) -> Transfer:
    return Transfer(id=transfer_id, kind=TransferKind.release, phase=Phase.void, pending_id=pending_id, amount=amount)


# --- looking at a book -----------------------------------------------------------------------


def funded(**owners: int) -> Book:
    """A book where each named participant has deposited the given amount from the bank."""
    book = Book({}, {})
    for owner, amount in owners.items():
        book.apply([deposit(f"fund.{owner}", available(owner, CNY), amount)])
    return book


def snapshot(book: Book) -> tuple[dict[str, int], dict[str, Pending]]:
    """Copies, deep enough that later changes to the book cannot reach them."""
    return dict(book.balances), {key: msgspec.structs.replace(pending) for key, pending in book.pendings.items()}


def refuse(book: Book, journal: Sequence[Transfer]) -> Refused:
    """Apply a journal that must be refused; the book must come out exactly as it went in."""
    before = snapshot(book)
    changed_before = set(book.changed_pendings)
    with pytest.raises(Refused) as caught:
        book.apply(journal)
    assert snapshot(book) == before
    assert book.changed_pendings == changed_before
    return caught.value


def balance(book: Book, account: str) -> int:
    return book.balances.get(account, 0)


# --- single transfers ------------------------------------------------------------------------


def test_deposit_then_transfer_moves_money_and_balances_sum_to_zero() -> None:
    book = Book({}, {})
    [deposited] = book.apply([deposit("d1", ALICE, 1_000)])
    [paid] = book.apply([move("t1", ALICE, BOB, 300)])

    assert (deposited.debit, deposited.credit, deposited.amount) == (BANK, ALICE, 1_000)
    assert (paid.debit, paid.credit, paid.amount) == (ALICE, BOB, 300)
    assert book.balances == {BANK: -1_000, ALICE: 700, BOB: 300}
    assert sum(book.balances.values()) == 0


def test_a_journal_returns_one_movement_per_transfer_with_the_transfer_fields() -> None:
    book = funded(alice=1_000)
    references = References(contract="c-1", note="monthly")
    movements = book.apply([move("t1", ALICE, BOB, 300, references=references), move("t2", ALICE, FEES, 20, kind=TransferKind.fee)])

    assert movements == [
        Movement(
            transfer_id="t1", kind=TransferKind.settle, phase=Phase.single, debit=ALICE, credit=BOB,
            amount=300, currency=CNY, pending_id=None, references=references,
        ),
        Movement(
            transfer_id="t2", kind=TransferKind.fee, phase=Phase.single, debit=ALICE, credit=FEES,
            amount=20, currency=CNY, pending_id=None, references=References(),
        ),
    ]
    assert book.balances == {BANK: -1_000, ALICE: 680, BOB: 300, FEES: 20}


def test_clearing_accounts_go_negative_and_can_be_paid_out_past_zero() -> None:
    book = funded(alice=100)
    book.apply([withdraw("w1", ALICE, 100, rail=ECNY)])

    assert book.balances == {BANK: -100, ECNY: 100, ALICE: 0}


def test_insufficient_funds_is_refused_and_book_unchanged() -> None:
    book = funded(alice=100)

    refusal = refuse(book, [move("t1", ALICE, BOB, 101)])

    assert (refusal.transfer_id, refusal.field, refusal.code) == ("t1", "amount", "insufficient_funds")
    assert book.balances == {BANK: -100, ALICE: 100}


def test_insufficient_funds_counts_earlier_transfers_of_the_same_journal() -> None:
    book = funded(alice=100)

    refusal = refuse(book, [move("t1", ALICE, BOB, 60), move("t2", ALICE, CAROL, 60)])

    assert (refusal.transfer_id, refusal.code) == ("t2", "insufficient_funds")


def test_money_received_earlier_in_a_journal_can_be_spent_later_in_it() -> None:
    book = funded(alice=100)
    book.apply([move("t1", ALICE, BOB, 100), move("t2", BOB, CAROL, 100)])

    assert book.balances == {BANK: -100, ALICE: 0, BOB: 0, CAROL: 100}


@pytest.mark.parametrize(
    ("second", "code"),
    [
        (hold("h2", ALICE, CAROL, 2_000), "insufficient_funds"),  # registered as pending before it fails
        (move("t2", BOB, CAROL, 151), "insufficient_funds"),  # bob has 50 + the 100 just posted
        (void("v2", "h1"), "pending_not_pending"),  # h1 was just posted by the first transfer
        (move("t2", ALICE_ESCROW, CAROL, 1), "escrow_direct"),
    ],
    ids=["pending-overdraws", "single-overdraws", "completes-h1-again", "malformed"],
)
def test_a_journal_whose_second_transfer_fails_leaves_balances_and_pendings_as_before(second: Transfer, code: str) -> None:
    book = funded(alice=1_000, bob=50)
    book.apply([hold("h1", ALICE, BOB, 400)])
    balances_before, pendings_before = snapshot(book)
    book.changed_pendings.clear()

    # the first transfer posts part of h1: it moves money twice and completes h1
    with pytest.raises(Refused) as caught:
        book.apply([post("p1", "h1", 100), second])

    assert (caught.value.transfer_id, caught.value.code) == (second.id, code)
    assert book.balances == balances_before
    assert book.pendings == pendings_before
    assert (book.pendings["h1"].status, book.pendings["h1"].remaining) == (PendingStatus.pending, 400)
    assert "h2" not in book.pendings
    assert book.changed_pendings == set()


def test_refusal_removes_accounts_the_journal_created() -> None:
    book = funded(alice=100)

    refuse(book, [move("t1", ALICE, BOB, 10), move("t2", CAROL, BOB, 1)])

    assert set(book.balances) == {BANK, ALICE}


def test_the_book_copies_the_balances_it_is_given() -> None:
    given_balances = {BANK: -100, ALICE: 100}
    book = Book(given_balances, {})
    book.apply([move("t1", ALICE, BOB, 40)])

    assert given_balances == {BANK: -100, ALICE: 100}


def test_empty_journal_is_refused() -> None:
    assert refuse(Book({}, {}), []).code == "empty_journal"


# --- two-phase transfers ---------------------------------------------------------------------


def test_pending_holds_the_money_in_the_debit_owners_escrow() -> None:
    book = funded(alice=1_000)
    [held] = book.apply([hold("h1", ALICE, BOB, 400)])

    assert (held.debit, held.credit, held.amount, held.phase, held.pending_id) == (ALICE, ALICE_ESCROW, 400, Phase.pending, None)
    assert book.balances == {BANK: -1_000, ALICE: 600, ALICE_ESCROW: 400}
    assert book.pendings == {
        "h1": Pending(
            id="h1", debit=ALICE, credit=BOB, escrow=ALICE_ESCROW, currency=CNY, amount=400, remaining=400, status=PendingStatus.pending
        )
    }
    assert book.changed_pendings == {"h1"}


def test_pending_needs_available_money() -> None:
    book = funded(alice=100)

    assert refuse(book, [hold("h1", ALICE, BOB, 101)]).code == "insufficient_funds"


def test_post_without_amount_posts_the_whole_hold() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    [posted] = book.apply([post("p1", "h1")])

    assert (posted.transfer_id, posted.debit, posted.credit, posted.amount, posted.pending_id) == ("p1", ALICE_ESCROW, BOB, 400, "h1")
    assert posted.phase is Phase.post
    assert book.balances == {BANK: -1_000, ALICE: 600, ALICE_ESCROW: 0, BOB: 400}
    assert (book.pendings["h1"].status, book.pendings["h1"].remaining) == (PendingStatus.posted, 0)


def test_post_of_exactly_the_hold_makes_one_movement() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    movements = book.apply([post("p1", "h1", 400)])

    assert [(m.transfer_id, m.amount) for m in movements] == [("p1", 400)]


def test_partial_post_sends_the_rest_back_as_a_second_movement() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    settled, rest = book.apply([post("p1", "h1", 150)])

    assert (settled.transfer_id, settled.kind, settled.phase) == ("p1", TransferKind.settle, Phase.post)
    assert (settled.debit, settled.credit, settled.amount, settled.pending_id) == (ALICE_ESCROW, BOB, 150, "h1")
    assert (rest.transfer_id, rest.kind, rest.phase) == ("p1/rest", TransferKind.release, Phase.post)
    assert (rest.debit, rest.credit, rest.amount, rest.pending_id) == (ALICE_ESCROW, ALICE, 250, "h1")
    assert book.balances == {BANK: -1_000, ALICE: 850, ALICE_ESCROW: 0, BOB: 150}
    assert (book.pendings["h1"].status, book.pendings["h1"].remaining, book.pendings["h1"].amount) == (PendingStatus.posted, 0, 400)


def test_partial_post_rest_id_cannot_be_a_client_transfer_id() -> None:
    """The rest of `p1` is recorded as transfer `p1/rest`; the ledger keeps transfer ids unique,
    and a client cannot send an id with `/`, so the two can never clash."""
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    movements = book.apply([post("p1", "h1", 150), move("p1.rest", ALICE, CAROL, 1)])

    assert [m.transfer_id for m in movements] == ["p1", "p1/rest", "p1.rest"]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "p1/rest", "kind": "settle", "phase": "post", "pending_id": "h1"}, Transfer)


def test_void_sends_the_whole_hold_back() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    [voided] = book.apply([void("v1", "h1")])

    assert (voided.transfer_id, voided.kind, voided.phase) == ("v1", TransferKind.release, Phase.void)
    assert (voided.debit, voided.credit, voided.amount, voided.pending_id) == (ALICE_ESCROW, ALICE, 400, "h1")
    assert book.balances == {BANK: -1_000, ALICE: 1_000, ALICE_ESCROW: 0}
    assert (book.pendings["h1"].status, book.pendings["h1"].remaining) == (PendingStatus.voided, 0)


def test_void_accepts_an_amount_equal_to_the_hold_and_refuses_any_other() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    refusal = refuse(book, [void("v1", "h1", 399)])
    [voided] = book.apply([void("v2", "h1", 400)])

    assert (refusal.field, refusal.code) == ("amount", "pending_mismatch")
    assert voided.amount == 400


def test_hold_posted_to_clearing_is_a_withdrawal() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, ECNY, 300, kind=TransferKind.withdrawal)])
    book.apply([Transfer(id="p1", kind=TransferKind.withdrawal, phase=Phase.post, pending_id="h1")])

    assert book.balances == {BANK: -1_000, ECNY: 300, ALICE: 700, ALICE_ESCROW: 0}


def test_hold_and_post_in_the_same_journal() -> None:
    book = funded(alice=1_000)
    movements = book.apply([hold("h1", ALICE, BOB, 400), post("p1", "h1", 100)])

    assert [(m.transfer_id, m.amount) for m in movements] == [("h1", 400), ("p1", 100), ("p1/rest", 300)]
    assert book.balances == {BANK: -1_000, ALICE: 900, ALICE_ESCROW: 0, BOB: 100}


def test_completing_a_pending_does_not_change_the_record_the_book_was_given() -> None:
    given = Pending(id="h1", debit=ALICE, credit=BOB, escrow=ALICE_ESCROW, currency=CNY, amount=400, remaining=400, status=PendingStatus.pending)
    book = Book({BANK: -400, ALICE_ESCROW: 400}, {"h1": given})

    book.apply([post("p1", "h1", 100)])

    assert (given.status, given.remaining) == (PendingStatus.pending, 400)
    assert book.pendings["h1"].status is PendingStatus.posted
    assert book.changed_pendings == {"h1"}


@pytest.mark.parametrize("complete", [post, void], ids=["post", "void"])
def test_completing_an_unknown_pending_is_refused(complete) -> None:
    book = funded(alice=1_000)

    refusal = refuse(book, [complete("c1", "no-such-hold")])

    assert (refusal.transfer_id, refusal.field, refusal.code) == ("c1", "pending_id", "pending_not_found")


@pytest.mark.parametrize("first", [post, void], ids=["posted", "voided"])
@pytest.mark.parametrize("then", [post, void], ids=["post", "void"])
def test_completing_a_completed_pending_is_refused(first, then) -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])
    book.apply([first("c1", "h1")])

    refusal = refuse(book, [then("c2", "h1")])

    assert (refusal.transfer_id, refusal.field, refusal.code) == ("c2", "pending_id", "pending_not_pending")


def test_completing_a_pending_twice_in_one_journal_is_refused() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    refusal = refuse(book, [post("p1", "h1", 100), void("v1", "h1")])

    assert (refusal.transfer_id, refusal.code) == ("v1", "pending_not_pending")


def test_post_of_more_than_the_hold_is_refused() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    refusal = refuse(book, [post("p1", "h1", 401)])

    assert (refusal.transfer_id, refusal.field, refusal.code) == ("p1", "amount", "exceeds_pending")
    assert book.pendings["h1"].status is PendingStatus.pending


@pytest.mark.parametrize(
    ("field", "value"),
    [("debit_account", CAROL), ("credit_account", CAROL), ("currency", "USD")],
)
def test_post_naming_other_accounts_or_currency_than_the_pending_is_refused(field: str, value: str) -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    refusal = refuse(book, [post("p1", "h1", **{field: value})])

    assert (refusal.field, refusal.code) == (field, "pending_mismatch")


def test_post_naming_the_pendings_own_accounts_is_accepted() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 400)])

    [posted] = book.apply([post("p1", "h1", debit_account=ALICE, credit_account=BOB, currency=CNY)])

    assert posted.amount == 400


@pytest.mark.parametrize("phase", [Phase.post, Phase.void])
def test_post_or_void_without_pending_id_is_refused(phase: Phase) -> None:
    refusal = refuse(funded(alice=10), [Transfer(id="c1", kind=TransferKind.settle, phase=phase)])

    assert (refusal.field, refusal.code) == ("pending_id", "invalid_transfer")


def test_pending_id_on_a_single_transfer_is_refused() -> None:
    refusal = refuse(funded(alice=10), [move("t1", ALICE, BOB, 5, pending_id="h1")])

    assert (refusal.field, refusal.code) == ("pending_id", "invalid_transfer")


def test_pending_from_an_exchange_account_is_refused() -> None:
    book = funded(alice=100)
    book.apply([move("t1", ALICE, FEES, 50, kind=TransferKind.fee)])

    refusal = refuse(book, [hold("h1", FEES, BOB, 10)])

    assert (refusal.field, refusal.code) == ("debit_account", "invalid_transfer")


def test_pending_reusing_a_pending_id_is_refused() -> None:
    book = funded(alice=1_000)
    book.apply([hold("h1", ALICE, BOB, 100)])
    book.apply([void("v1", "h1")])

    assert refuse(book, [hold("h1", ALICE, BOB, 100)]).code == "transfer_id_reused"


# --- refusals of malformed transfers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("transfer", "field"),
    [
        (move("t1", ALICE_ESCROW, BOB, 1), "debit_account"),
        (move("t1", ALICE, ALICE_ESCROW, 1), "credit_account"),
        (move("t1", ALICE, BOB_ESCROW, 1), "credit_account"),
        (hold("h1", ALICE, BOB_ESCROW, 1), "credit_account"),
        (hold("h1", ALICE_ESCROW, BOB, 1), "debit_account"),
    ],
    ids=["single-from-escrow", "single-to-own-escrow", "single-to-other-escrow", "pending-to-escrow", "pending-from-escrow"],
)
def test_escrow_accounts_cannot_be_named_by_single_or_pending_transfers(transfer: Transfer, field: str) -> None:
    book = funded(alice=1_000)
    book.apply([hold("h0", ALICE, BOB, 500)])  # so alice's escrow holds money that could be misused

    refusal = refuse(book, [transfer])

    assert (refusal.field, refusal.code) == (field, "escrow_direct")


@pytest.mark.parametrize(
    "transfer",
    [
        move("t1", BANK, ALICE, 1, kind=TransferKind.settle),
        move("t1", BANK, ALICE, 1, kind=TransferKind.withdrawal),
        move("t1", ALICE, BANK, 1, kind=TransferKind.fee),
        move("t1", ALICE, ECNY, 1, kind=TransferKind.deposit),
        move("t1", BANK, ECNY, 1, kind=TransferKind.deposit),
        hold("h1", ALICE, BANK, 1, kind=TransferKind.hold),
    ],
    ids=["in-by-settle", "in-by-withdrawal", "out-by-fee", "out-by-deposit", "rail-to-rail-by-deposit", "pending-out-by-hold"],
)
def test_clearing_accounts_move_only_by_their_kinds(transfer: Transfer) -> None:
    refusal = refuse(funded(alice=1_000), [transfer])

    assert (refusal.field, refusal.code) == ("kind", "clearing_kind")


def test_adjustment_moves_clearing_accounts_both_ways() -> None:
    book = funded(alice=100)
    book.apply([move("a1", ALICE, BANK, 30, kind=TransferKind.adjustment), move("a2", BANK, ECNY, 5, kind=TransferKind.adjustment)])

    assert book.balances == {BANK: -75, ECNY: 5, ALICE: 70}


def test_duplicate_transfer_id_in_one_journal_is_refused() -> None:
    book = funded(alice=1_000)

    refusal = refuse(book, [move("t1", ALICE, BOB, 1), move("t1", ALICE, CAROL, 1)])

    assert (refusal.transfer_id, refusal.field, refusal.code) == ("t1", "id", "duplicate_transfer_id")


@pytest.mark.parametrize("currency", ["USD", None])
def test_currency_not_matching_the_accounts_is_refused(currency: str | None) -> None:
    transfer = Transfer(id="t1", kind=TransferKind.settle, debit_account=ALICE, credit_account=BOB, amount=1, currency=currency)

    refusal = refuse(funded(alice=10), [transfer])

    assert (refusal.field, refusal.code) == ("currency", "currency_mismatch")


@pytest.mark.parametrize("transfer", [move("t1", ALICE, ALICE, 1), hold("h1", ALICE, ALICE, 1)], ids=["single", "pending"])
def test_same_debit_and_credit_account_is_refused(transfer: Transfer) -> None:
    refusal = refuse(funded(alice=10), [transfer])

    assert (refusal.field, refusal.code) == ("credit_account", "same_account")


@pytest.mark.parametrize(
    "name",
    [
        "alice:available",
        "alice:available:CNY:x",
        "alice:wallet:CNY",
        "alice:fees:CNY",
        "alice:available:USD",
        ":available:CNY",
        "exchange:available:CNY",
        "exchange:escrow:CNY",
        "exchange:paypal:CNY",
        "",
    ],
)
def test_unknown_account_format_is_refused(name: str) -> None:
    book = funded(alice=10)

    as_credit = refuse(book, [move("t1", ALICE, name, 1)])
    as_debit = refuse(book, [move("t1", name, ALICE, 1)])

    assert parse_account(name) is None
    assert (as_credit.field, as_credit.code) == ("credit_account", "unknown_account")
    assert (as_debit.field, as_debit.code) == ("debit_account", "unknown_account")


@pytest.mark.parametrize("missing", ["debit_account", "credit_account", "amount"])
def test_single_transfer_missing_a_field_is_refused(missing: str) -> None:
    transfer = msgspec.structs.replace(move("t1", ALICE, BOB, 1), **{missing: None})

    refusal = refuse(funded(alice=10), [transfer])

    assert (refusal.field, refusal.code) == (missing, "invalid_transfer")


@pytest.mark.parametrize(
    ("name", "owner", "kind", "is_clearing"),
    [
        (ALICE, "alice", "available", False),
        (ALICE_ESCROW, "alice", "escrow", False),
        (FEES, "exchange", "fees", False),
        (BANK, "exchange", "bank", True),
        (ECNY, "exchange", "ecny", True),
    ],
)
def test_parse_account_reads_owner_kind_and_whether_it_is_clearing(name: str, owner: str, kind: str, is_clearing: bool) -> None:
    account = parse_account(name)

    assert account is not None
    assert (account.owner, account.kind, account.currency, account.clearing, account.id) == (owner, kind, CNY, is_clearing, name)


# --- accounts_named ---------------------------------------------------------------------------


def test_accounts_named_includes_the_escrow_of_a_pending_transfer() -> None:
    named = accounts_named([hold("h1", ALICE, BOB, 1)])

    assert {ALICE, BOB, ALICE_ESCROW} <= named


def test_accounts_named_adds_no_escrow_for_single_transfers_or_clearing_accounts() -> None:
    named = accounts_named([move("t1", ALICE, BOB, 1), deposit("d1", CAROL, 1)])

    assert named == {ALICE, BOB, BANK, CAROL}
    assert accounts_named([hold("h1", ALICE, BANK, 1, kind=TransferKind.withdrawal)]) == {ALICE, ALICE_ESCROW, BANK}


def test_accounts_named_lists_only_accounts_a_post_or_void_gives() -> None:
    assert accounts_named([post("p1", "h1"), void("v1", "h2")]) == set()
    assert accounts_named([post("p1", "h1", debit_account=ALICE, credit_account=BOB)]) == {ALICE, BOB}


def test_accounts_named_passes_unknown_names_through_for_the_book_to_refuse() -> None:
    assert accounts_named([hold("h1", "nobody", BOB, 1)]) >= {"nobody", BOB}


# --- properties of random journal sequences ---------------------------------------------------

PARTICIPANTS = ("alice", "bob", "carol")
SPENDABLE = (*(available(owner, CNY) for owner in PARTICIPANTS), FEES)


@dataclass(frozen=True)
class Deposit:
    rail: str
    owner: str
    amount: int


@dataclass(frozen=True)
class Pay:
    debit: str
    credit: str
    amount: int


@dataclass(frozen=True)
class Hold:
    owner: str
    credit: str
    amount: int


@dataclass(frozen=True)
class Post:
    pick: int
    amount: int | None


@dataclass(frozen=True)
class Void:
    pick: int


@dataclass(frozen=True)
class Withdraw:
    owner: str
    rail: str
    amount: int


owners = st.sampled_from(PARTICIPANTS)
rails = st.sampled_from(RAILS)
amounts = st.integers(min_value=1, max_value=300)
picks = st.integers(min_value=0, max_value=9)
deposits = st.builds(Deposit, rails, owners, st.integers(min_value=1, max_value=1_000))
pays = st.builds(Pay, st.sampled_from(SPENDABLE), st.sampled_from(SPENDABLE), amounts)  # a quarter pay themselves: refused
holds = st.builds(Hold, owners, st.sampled_from(SPENDABLE) | rails.map(lambda rail: clearing(rail, CNY)), amounts)
posts = st.builds(Post, picks, st.none() | st.integers(min_value=1, max_value=200))  # some exceed the hold
voids = st.builds(Void, picks)
withdrawals = st.builds(Withdraw, owners, rails, amounts)
# one_of draws its branches evenly: repeating one makes it likelier
operations = st.one_of(deposits, deposits, pays, holds, holds, holds, posts, posts, voids, withdrawals)
journal_scripts = st.lists(st.lists(operations, min_size=1, max_size=3), min_size=1, max_size=30)
PROPERTIES = settings(max_examples=300, deadline=None)


class Scripter:
    """Turns operations into transfers with fresh ids, looking at the book as it is now: a post or
    void mostly names an open hold, sometimes any hold made so far (refused or completed) or one
    that never existed, so every completion outcome comes up."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.count = 0
        self.holds: list[str] = []

    def fresh_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def pick_hold(self, pick: int) -> str:
        open_holds = [p.id for p in self.book.pendings.values() if p.status is PendingStatus.pending]
        if open_holds and pick < 7:
            return open_holds[pick % len(open_holds)]
        candidates = [*self.holds, "no-such-hold"]
        return candidates[pick % len(candidates)]

    def transfer(self, operation: object) -> Transfer:
        match operation:
            case Deposit(rail, owner, amount):
                return deposit(self.fresh_id("d"), available(owner, CNY), amount, rail=clearing(rail, CNY))
            case Pay(debit, credit, amount):
                return move(self.fresh_id("t"), debit, credit, amount, kind=TransferKind.fee if credit == FEES else TransferKind.settle)
            case Hold(owner, credit, amount):
                kind = TransferKind.withdrawal if parse_account(credit).clearing else TransferKind.hold
                transfer = hold(self.fresh_id("h"), available(owner, CNY), credit, amount, kind=kind)
                self.holds.append(transfer.id)
                return transfer
            case Post(pick, amount):
                return post(self.fresh_id("p"), self.pick_hold(pick), amount)
            case Void(pick):
                return void(self.fresh_id("v"), self.pick_hold(pick))
            case Withdraw(owner, rail, amount):
                return withdraw(self.fresh_id("w"), available(owner, CNY), amount, rail=clearing(rail, CNY))
        raise AssertionError(operation)


@dataclass
class Outcome:
    book: Book
    before: tuple[dict[str, int], dict[str, Pending]]
    journal: list[Transfer]
    movements: list[Movement] | None
    """None when the journal was refused."""


def outcomes(scripts: list[list[object]]) -> Iterator[Outcome]:
    """Write each journal against the book as it stands, apply it, and yield what happened. A first
    journal gives every participant some money, so that more of the random ones are accepted."""
    book = Book({}, {})
    scripter = Scripter(book)
    funding = [Deposit("bank", owner, 1_000) for owner in PARTICIPANTS]
    for script in [funding, *scripts]:
        journal = [scripter.transfer(operation) for operation in script]
        before = snapshot(book)
        try:
            movements: list[Movement] | None = book.apply(journal)
        except Refused:
            movements = None
        yield Outcome(book, before, journal, movements)


def replay(movements: list[Movement]) -> dict[str, int]:
    balances: dict[str, int] = defaultdict(int)
    for movement in movements:
        balances[movement.debit] -= movement.amount
        balances[movement.credit] += movement.amount
    return dict(balances)


@PROPERTIES
@given(journal_scripts)
def test_ledger_rules_hold_after_every_journal(scripts: list[list[object]]) -> None:
    accepted: list[Movement] = []
    for outcome in outcomes(scripts):
        book = outcome.book
        if outcome.movements is None:
            assert snapshot(book) == outcome.before, "a refused journal changed the book"
        else:
            accepted.extend(outcome.movements)

        assert sum(book.balances.values()) == 0
        for name, amount in book.balances.items():
            assert parse_account(name) is not None, name
            assert amount >= 0 or parse_account(name).clearing, f"{name} is {amount}"
        for owner in PARTICIPANTS:
            open_holds = [p for p in book.pendings.values() if p.escrow == escrow(owner, CNY) and p.status is PendingStatus.pending]
            assert balance(book, escrow(owner, CNY)) == sum(p.remaining for p in open_holds)
        for pending in book.pendings.values():
            assert pending.remaining == (pending.amount if pending.status is PendingStatus.pending else 0)
            assert pending.escrow == escrow(parse_account(pending.debit).owner, CNY)
        assert replay(accepted) == book.balances


@PROPERTIES
@given(journal_scripts)
def test_every_movement_moves_a_positive_amount_between_two_accounts(scripts: list[list[object]]) -> None:
    for outcome in outcomes(scripts):
        for movement in outcome.movements or []:
            assert movement.amount > 0
            assert movement.debit != movement.credit
            assert movement.currency == CNY
            assert parse_account(movement.debit) is not None and parse_account(movement.credit) is not None


@PROPERTIES
@given(journal_scripts)
def test_a_completion_empties_its_hold_to_the_pendings_own_accounts(scripts: list[list[object]]) -> None:
    """A post sends money from escrow to the credit account and any rest back to the debit
    account; a void sends it all back; either way exactly the held amount leaves escrow."""
    for outcome in outcomes(scripts):
        if outcome.movements is None:
            continue
        ids = [movement.transfer_id for movement in outcome.movements]
        assert len(ids) == len(set(ids)), "two movements of one journal share a transfer id"
        assert [t.id for t in outcome.journal] == [i for i in ids if "/" not in i]
        out_of_escrow: dict[str, int] = defaultdict(int)
        for movement in outcome.movements:
            if movement.phase not in (Phase.post, Phase.void):
                continue
            pending = outcome.book.pendings[movement.pending_id]
            assert movement.debit == pending.escrow
            goes_on = movement.phase is Phase.post and not movement.transfer_id.endswith("/rest")
            assert movement.credit == (pending.credit if goes_on else pending.debit)
            out_of_escrow[pending.id] += movement.amount
        for pending_id, amount in out_of_escrow.items():
            assert amount == outcome.book.pendings[pending_id].amount


@PROPERTIES
@given(journal_scripts)
def test_refused_journals_count_for_nothing(scripts: list[list[object]]) -> None:
    """The book after all journals equals a fresh book given only the accepted ones."""
    results = list(outcomes(scripts))
    final = results[-1].book  # the one book every journal was applied to
    kept = [outcome for outcome in results if outcome.movements is not None]

    fresh = Book({}, {})
    for outcome in kept:
        assert fresh.apply(outcome.journal) == outcome.movements

    assert snapshot(fresh) == snapshot(final)
    assert fresh.changed_pendings == final.changed_pendings
