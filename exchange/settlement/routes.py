"""HTTP for accounts and the ledger. Heads, proofs and keys are public so anyone can check a
receipt they hold; entries and balances need a key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from exchange.auth import Caller, require
from exchange.context import Exchange, IdempotencyKey, Unit
from exchange.core.errors import InvalidInput, NotFound
from exchange.settlement import service
from exchange.settlement.service import (
    AccountsOut,
    BalancesOut,
    DepositIn,
    EntryPage,
    JournalIn,
    JournalOut,
    PayoutIn,
    WithdrawalIn,
    WithdrawalOut,
    WithdrawalPage,
)
from exchange.settlement.signing import SignedTreeHead
from exchange.tables import SigningKey

ENTRIES_PER_READ = 1000
Index = Annotated[int, QueryParameter(ge=0)]
Size = Annotated[int, QueryParameter(ge=1)]


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    size: int
    leaf_hash: str
    path: list[str]


class ConsistencyProof(msgspec.Struct, frozen=True, kw_only=True):
    first: int
    second: int
    path: list[str]


class KeyOut(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    public_key_pem: str
    """SubjectPublicKeyInfo PEM."""
    active: bool
    created_at: datetime


class KeysOut(msgspec.Struct, frozen=True, kw_only=True):
    keys: list[KeyOut]


class EntriesOut(msgspec.Struct, frozen=True, kw_only=True):
    start: int
    end: int
    size: int
    entries: list[dict[str, Any]]


# ── money in and out ──


@post("/v1/accounts/deposits", status_code=201, summary="Record a confirmed incoming payment (operator)")
async def record_deposit(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[DepositIn], idempotency_key: IdempotencyKey = None
) -> Response[JournalOut]:
    async def action(unit: Unit, caller: Caller) -> JournalOut:
        return await service.deposit(unit.session, exchange.ledger, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("operator",))


@post("/v1/accounts/withdrawals", status_code=201, summary="Ask to be paid out: the amount is held until an operator confirms")
async def request_withdrawal(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[WithdrawalIn], idempotency_key: IdempotencyKey = None
) -> Response[WithdrawalOut]:
    async def action(unit: Unit, caller: Caller) -> WithdrawalOut:
        return await service.request_withdrawal(unit.session, exchange.ledger, caller, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("vendor", "buyer"))


@post("/v1/accounts/withdrawals/{withdrawal_id:str}/confirm", status_code=200, summary="Confirm a payout was made (operator)")
async def confirm_withdrawal(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], withdrawal_id: FromPath[str], data: JSONBody[PayoutIn]
) -> WithdrawalOut:
    async def action(unit: Unit) -> WithdrawalOut:
        require(unit.caller, "operator")
        return await service.confirm_withdrawal(unit.session, exchange.ledger, withdrawal_id, data, unit.now)

    return await exchange.write(request, action)


@post("/v1/accounts/withdrawals/{withdrawal_id:str}/cancel", status_code=200, summary="Cancel a withdrawal: the hold goes back")
async def cancel_withdrawal(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], withdrawal_id: FromPath[str]) -> WithdrawalOut:
    return await exchange.write(
        request, lambda unit: service.cancel_withdrawal(unit.session, exchange.ledger, require(unit.caller, "vendor", "buyer", "operator"), withdrawal_id, unit.now)
    )


@get("/v1/accounts/withdrawals", summary="Withdrawals: your own; operators and regulators see all")
async def list_withdrawals(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    status: Annotated[str | None, QueryParameter(pattern="^(requested|paid|cancelled)$")] = None,
    participant_id: FromQuery[str | None] = None,
) -> WithdrawalPage:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        if not caller.has("operator", "regulator"):
            participant_id = caller.id
        return await service.withdrawals(unit.session, participant_id, status)


# ── balances and history ──


@get("/v1/accounts/me", summary="The caller's balances per currency")
async def my_balances(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> BalancesOut:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        return await service.balances(unit.session, caller.id)


@get("/v1/accounts/me/transfers", summary="Ledger entries that moved the caller's money, newest first")
async def my_transfers(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    cursor: Annotated[str | None, QueryParameter(max_length=20)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=service.PAGE_MAX)] = 50,
) -> EntryPage:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        return await service.transfers_of(unit.session, caller.id, cursor, limit)


@get("/v1/accounts", summary="Every account with its balance, and the totals per currency (operator, regulator)")
async def list_accounts(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], owner_id: FromQuery[str | None] = None) -> AccountsOut:
    async with exchange.unit(request, write=False) as unit:
        require(unit.caller, "operator", "regulator")
        return await service.all_accounts(unit.session, owner_id)


# ── the ledger ──


@post("/v1/ledger/journals", status_code=201, summary="Apply transfers atomically: single, pending, post, void (operator)")
async def post_journal(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[JournalIn], idempotency_key: IdempotencyKey = None
) -> Response[JournalOut]:
    async def action(unit: Unit, caller: Caller) -> JournalOut:
        return await service.post_one(unit.session, exchange.ledger, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("operator",))


@get("/v1/ledger/head", summary="The latest signed tree head (public)")
async def ledger_head(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> SignedTreeHead:
    async with exchange.unit(request, write=False) as unit:  # a key, when sent, must be valid: as on every route
        session = unit.session
        head = await exchange.ledger.latest_head(session)
    if head is None:
        raise NotFound("No tree head has been signed yet.")
    return exchange.ledger.head_out(head)


@get("/v1/ledger/entries", summary="Entries [start, end): operators and regulators all, participants their own")
async def ledger_entries(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    start: Index = 0,
    end: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> EntriesOut:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        size = await exchange.ledger.size(unit.session)
        end = min(size, start + ENTRIES_PER_READ) if end is None else end
        if end < start or end - start > ENTRIES_PER_READ:
            raise InvalidInput(
                f"end: must be at least start and at most start + {ENTRIES_PER_READ}",
                errors=[{"field": "end", "reason": f"at most {ENTRIES_PER_READ} entries per read"}],
            )
        items = await service.entries(unit.session, caller, start, min(end, size))
        return EntriesOut(start=start, end=min(end, size), size=size, entries=items)


@get("/v1/ledger/proofs/inclusion", summary="RFC 6962 audit path of entry `index` in the tree of `size` entries (public)")
async def inclusion_proof(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], index: Index, size: Size) -> InclusionProof:
    async with exchange.unit(request, write=False) as unit:  # a key, when sent, must be valid: as on every route
        session = unit.session
        leaf, path = await exchange.ledger.inclusion_proof(session, index, size)
    return InclusionProof(index=index, size=size, leaf_hash=leaf.hex(), path=[node.hex() for node in path])


@get("/v1/ledger/proofs/consistency", summary="RFC 6962 consistency proof between tree sizes `first` and `second` (public)")
async def consistency_proof(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], first: Size, second: Size) -> ConsistencyProof:
    async with exchange.unit(request, write=False) as unit:  # a key, when sent, must be valid: as on every route
        session = unit.session
        path = await exchange.ledger.consistency_proof(session, first, second)
    return ConsistencyProof(first=first, second=second, path=[node.hex() for node in path])


@get("/v1/ledger/keys", summary="Every signing key ever used (public)")
async def signing_keys(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> KeysOut:
    async with exchange.unit(request, write=False) as unit:  # a key, when sent, must be valid: as on every route
        session = unit.session
        rows = (await session.execute(sa.select(SigningKey).order_by(SigningKey.created_at))).scalars()
        return KeysOut(keys=[KeyOut(key_id=r.key_id, public_key_pem=r.public_key_pem, active=r.active, created_at=r.created_at) for r in rows])


ROUTES = [
    record_deposit,
    request_withdrawal,
    confirm_withdrawal,
    cancel_withdrawal,
    list_withdrawals,
    my_balances,
    my_transfers,
    list_accounts,
    post_journal,
    ledger_head,
    ledger_entries,
    inclusion_proof,
    consistency_proof,
    signing_keys,
]
