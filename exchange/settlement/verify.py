"""Check a ledger with nothing but its entries, heads and public keys. Pure and streaming: the
same code checks an export file offline and the live database.

Checked: every leaf hash against the entry's bytes; indexes without gaps; every head's root
against the tree rebuilt from the entries, and its Ed25519 signature with the published key
(all heads are checked against one sequence of leaves, so successive heads are consistent);
every journal's legs consecutive and complete, each leg one positive amount debited from
and credited to two accounts of its currency (so every journal balances); no account but a clearing account
below zero; the replayed balances equal the stated ones; every currency sums to zero."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from exchange.settlement import merkle
from exchange.settlement.entries import TransferEntry, decode
from exchange.settlement.posting import parse_account
from exchange.settlement.signing import SignedTreeHead, load_public_pem, verify_head

PROBLEMS_KEPT = 100
CHECKED_COLUMNS = ("transfer_id", "journal_id", "kind", "debit_account", "credit_account", "amount", "currency")


class Report(msgspec.Struct, kw_only=True):
    entries: int = 0
    heads: int = 0
    problems: list[str] = msgspec.field(default_factory=list)
    first_bad_index: int | None = None
    """The first entry found changed, missing or out of place; None when no entry is to blame."""
    balances: dict[str, int] = msgspec.field(default_factory=dict)
    totals: dict[str, int] = msgspec.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


class Verifier:
    """Feed entries in index order with `entry`, then call `finish`."""

    def __init__(self, heads: Sequence[SignedTreeHead], keys: Mapping[str, str]) -> None:
        self.report = Report()
        self.keys = {}
        for key_id, pem in keys.items():
            try:
                self.keys[key_id] = load_public_pem(pem)
            except ValueError:
                self._problem(None, f"key {key_id}: not an Ed25519 public key")
        self.heads = sorted(heads, key=lambda head: (head.size, head.timestamp))
        self._next_head = 0
        self._last_good_size = 0
        self.frontier = merkle.Frontier()
        self.balances: dict[str, int] = {}
        self._journal: str | None = None
        self._journal_legs = 0
        self._journal_seen = 0
        self._journal_start = 0
        self._check_heads()  # heads of the empty tree, if any

    def _problem(self, index: int | None, message: str) -> None:
        if index is not None and (self.report.first_bad_index is None or index < self.report.first_bad_index):
            self.report.first_bad_index = index
        if len(self.report.problems) < PROBLEMS_KEPT:
            self.report.problems.append(message)

    def entry(self, index: int, canonical: bytes, leaf_hash: bytes | None = None, columns: Mapping[str, Any] | None = None) -> None:
        expected = self.frontier.size
        if index != expected:
            self._problem(expected, f"entry {expected}: missing (the next entry given is {index})")
        leaf = merkle.leaf_hash(canonical)
        if leaf_hash is not None and leaf_hash != leaf:
            self._problem(index, f"entry {index}: its leaf hash does not match its bytes (the entry was changed)")
        self.frontier.append(leaf)
        self.report.entries += 1
        try:
            decoded = decode(canonical)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self._problem(index, f"entry {index}: not a ledger entry ({error})")
            decoded = None
        if decoded is not None:
            if decoded.index != index:
                self._problem(index, f"entry {index}: says it is entry {decoded.index}")
            if columns is not None:
                self._compare_columns(index, decoded, columns)
            if isinstance(decoded, TransferEntry):
                self._transfer(index, decoded)
            elif self._journal is not None:
                self._close_journal(index)
        self._check_heads()

    def _compare_columns(self, index: int, entry: Any, columns: Mapping[str, Any]) -> None:
        if not isinstance(entry, TransferEntry):
            return
        signed = {
            "transfer_id": entry.transfer, "journal_id": entry.journal, "kind": entry.kind, "debit_account": entry.debit,
            "credit_account": entry.credit, "amount": entry.amount, "currency": entry.currency,
        }
        for name in CHECKED_COLUMNS:
            if name in columns and columns[name] != signed[name]:
                self._problem(index, f"entry {index}: column {name} is {columns[name]!r} but the signed entry says {signed[name]!r}")

    def _transfer(self, index: int, entry: TransferEntry) -> None:
        if self._journal is not None and (entry.journal != self._journal or self._journal_seen == self._journal_legs):
            self._close_journal(index)
        if self._journal is None:
            self._journal, self._journal_legs, self._journal_seen, self._journal_start = entry.journal, entry.legs, 0, index
        self._journal_seen += 1
        debit, credit = parse_account(entry.debit), parse_account(entry.credit)
        if debit is None or credit is None or entry.amount <= 0 or debit.currency != entry.currency or credit.currency != entry.currency:
            self._problem(index, f"entry {index}: not a valid transfer ({entry.amount} {entry.currency} from {entry.debit} to {entry.credit})")
            return
        after = self.balances.get(entry.debit, 0) - entry.amount
        if after < 0 and not debit.clearing:
            self._problem(index, f"entry {index}: takes {entry.debit} below zero ({after})")
        self.balances[entry.debit] = after
        self.balances[entry.credit] = self.balances.get(entry.credit, 0) + entry.amount
        if self._journal_seen == self._journal_legs:
            self._close_journal(None)

    def _close_journal(self, next_index: int | None) -> None:
        if self._journal_seen != self._journal_legs:
            self._problem(
                self._journal_start + self._journal_seen,
                f"journal {self._journal}: has {self._journal_seen} of its {self._journal_legs} legs from entry {self._journal_start}",
            )
        self._journal = None

    def _check_heads(self) -> None:
        while self._next_head < len(self.heads) and self.heads[self._next_head].size == self.frontier.size:
            head = self.heads[self._next_head]
            self._next_head += 1
            self.report.heads += 1
            key = self.keys.get(head.key_id)
            if key is None:
                self._problem(None, f"head of size {head.size}: signed by unknown key {head.key_id}")
            elif not verify_head(head, key):
                self._problem(None, f"head of size {head.size}: the signature does not verify with key {head.key_id}")
            if head.root_hash != self.frontier.root().hex():
                self._problem(
                    None if self.report.first_bad_index is not None else self._last_good_size,
                    f"head of size {head.size}: the entries give another root than the signed one; "
                    f"an entry from {self._last_good_size} to {head.size - 1} was changed",
                )
            else:
                self._last_good_size = head.size

    def finish(self, stated_balances: Mapping[str, int] | None) -> Report:
        if self._journal is not None:
            self._close_journal(None)
        for head in self.heads[self._next_head :]:
            self._problem(None, f"head of size {head.size}: the log has only {self.frontier.size} entries")
        if stated_balances is not None:
            for account in sorted(set(stated_balances) | set(self.balances)):
                replayed, stated = self.balances.get(account, 0), stated_balances.get(account, 0)
                if replayed != stated:
                    self._problem(None, f"account {account}: balance is {stated} but the entries give {replayed}")
        totals: dict[str, int] = {}
        for account, balance in self.balances.items():
            currency = account.rsplit(":", 1)[-1]
            totals[currency] = totals.get(currency, 0) + balance
        for currency, total in totals.items():
            if total:
                self._problem(None, f"currency {currency}: balances sum to {total}, not 0")
        self.report.balances = dict(sorted(self.balances.items()))
        self.report.totals = totals
        return self.report


def verify(
    entries: Iterable[tuple[int, bytes, bytes | None, Mapping[str, Any] | None]],
    heads: Sequence[SignedTreeHead],
    keys: Mapping[str, str],
    stated_balances: Mapping[str, int] | None,
) -> Report:
    verifier = Verifier(heads, keys)
    for index, canonical, leaf_hash, columns in entries:
        verifier.entry(index, canonical, leaf_hash, columns)
    return verifier.finish(stated_balances)
