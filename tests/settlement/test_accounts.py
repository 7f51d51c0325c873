"""Money through the API: deposits, journals with holds, posts and voids, withdrawals, refunds;
every balance check, and the books always summing to zero."""

from __future__ import annotations

from typing import Any

from tests.conftest import MovableClock
from tests.harness import Api


async def deposit(api: Api, participant_id: str, amount: int, reference: str, rail: str = "bank", **headers: str) -> Any:
    body = {"participant_id": participant_id, "amount": amount, "currency": "CNY", "rail": rail, "reference": reference}
    return await api.request("POST", "/v1/accounts/deposits", api.operator_key, json=body, headers=headers)


async def journal(api: Api, *transfers: dict[str, Any], journal_id: str | None = None) -> Any:
    body: dict[str, Any] = {"transfers": list(transfers)}
    if journal_id is not None:
        body["id"] = journal_id
    return await api.request("POST", "/v1/ledger/journals", api.operator_key, json=body)


async def balances(api: Api, key: str) -> dict[str, int]:
    out = (await api.request("GET", "/v1/accounts/me", key)).json()
    [cny] = [b for b in out["balances"] if b["currency"] == "CNY"] or [{"available": 0, "escrow": 0}]
    return {"available": cny["available"], "escrow": cny["escrow"]}


async def totals(api: Api) -> dict[str, int]:
    out = (await api.request("GET", "/v1/accounts", api.operator_key)).json()
    return out["totals"]  # type: ignore[no-any-return]


def available(pid: str) -> str:
    return f"{pid}:available:CNY"


async def test_a_deposit_credits_the_participant_and_a_second_with_the_same_reference_is_refused(api: Api) -> None:
    buyer, buyer_key = await api.participant("buyer")
    first = await deposit(api, buyer, 500_000, "BANK-2026-0001")
    assert first.status_code == 201, first.text
    [entry] = first.json()["entries"]
    assert entry["debit"] == "exchange:bank:CNY" and entry["credit"] == available(buyer) and entry["amount"] == 500_000
    assert entry["kind"] == "deposit" and entry["refs"] == {"payment": "BANK-2026-0001"}
    assert len(entry["leaf_hash"]) == 64 and entry["canonical"]

    again = await deposit(api, buyer, 500_000, "BANK-2026-0001")
    assert again.status_code == 409 and again.json()["code"] == "duplicate_deposit"
    assert await balances(api, buyer_key) == {"available": 500_000, "escrow": 0}
    assert await totals(api) == {"CNY": 0}


async def test_deposit_honours_idempotency_key_and_checks_its_input(api: Api) -> None:
    buyer, _ = await api.participant("buyer")
    first = await deposit(api, buyer, 100, "ECNY-1", rail="ecny", **{"Idempotency-Key": "dep-1"})
    replay = await deposit(api, buyer, 100, "ECNY-1", rail="ecny", **{"Idempotency-Key": "dep-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()

    for body, field in (
        ({"participant_id": buyer, "amount": 0, "currency": "CNY", "rail": "bank", "reference": "r"}, "amount"),
        ({"participant_id": buyer, "amount": 1.5, "currency": "CNY", "rail": "bank", "reference": "r"}, "amount"),
        ({"participant_id": buyer, "amount": 1, "currency": "CNY", "rail": "paypal", "reference": "r"}, "rail"),
    ):
        refused = await api.request("POST", "/v1/accounts/deposits", api.operator_key, json=body)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == field
    unknown = await deposit(api, "par_nobody", 1, "r-2")
    assert unknown.status_code == 404
    buyer_self = await api.request("POST", "/v1/accounts/deposits", (await api.participant("buyer"))[1],
                                   json={"participant_id": buyer, "amount": 1, "currency": "CNY", "rail": "bank", "reference": "r-3"})
    assert buyer_self.status_code == 403


async def test_hold_then_partial_post_settles_and_returns_the_rest(api: Api) -> None:
    buyer, buyer_key = await api.participant("buyer")
    vendor, vendor_key = await api.participant("vendor")
    await deposit(api, buyer, 100_000, "B-1")
    held = await journal(api, {"id": "order-1.hold", "kind": "hold", "phase": "pending", "debit_account": available(buyer),
                               "credit_account": available(vendor), "amount": 80_000, "currency": "CNY",
                               "references": {"order": "order-1"}})
    assert held.status_code == 201, held.text
    assert held.json()["entries"][0]["credit"] == f"{buyer}:escrow:CNY"
    assert await balances(api, buyer_key) == {"available": 20_000, "escrow": 80_000}

    settled = await journal(
        api,
        {"id": "order-1.settle", "kind": "settle", "phase": "post", "pending_id": "order-1.hold", "amount": 70_000},
        {"id": "order-1.fee", "kind": "fee", "debit_account": available(vendor), "credit_account": "exchange:fees:CNY", "amount": 700, "currency": "CNY"},
    )
    assert settled.status_code == 201, settled.text
    legs = settled.json()["entries"]
    assert [(e["transfer"], e["amount"], e["legs"]) for e in legs] == [
        ("order-1.settle", 70_000, 3), ("order-1.settle/rest", 10_000, 3), ("order-1.fee", 700, 3)
    ]
    assert await balances(api, buyer_key) == {"available": 30_000, "escrow": 0}
    assert await balances(api, vendor_key) == {"available": 69_300, "escrow": 0}
    assert await totals(api) == {"CNY": 0}

    twice = await journal(api, {"id": "order-1.settle-again", "kind": "settle", "phase": "post", "pending_id": "order-1.hold"})
    assert twice.status_code == 422 and twice.json()["code"] == "pending_not_pending"


async def test_void_returns_the_hold_and_a_refund_moves_money_back(api: Api) -> None:
    buyer, buyer_key = await api.participant("buyer")
    vendor, vendor_key = await api.participant("vendor")
    await deposit(api, buyer, 50_000, "B-2")
    await journal(api, {"id": "h2", "kind": "hold", "phase": "pending", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 50_000, "currency": "CNY"})
    voided = await journal(api, {"id": "h2.void", "kind": "release", "phase": "void", "pending_id": "h2"})
    assert voided.status_code == 201, voided.text
    assert await balances(api, buyer_key) == {"available": 50_000, "escrow": 0}

    await journal(api, {"id": "sale-3", "kind": "settle", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 30_000, "currency": "CNY"})
    refund = await journal(api, {"id": "sale-3.refund", "kind": "refund", "debit_account": available(vendor), "credit_account": available(buyer), "amount": 30_000, "currency": "CNY", "references": {"note": "data not delivered"}})
    assert refund.status_code == 201
    assert await balances(api, buyer_key) == {"available": 50_000, "escrow": 0}
    assert await balances(api, vendor_key) == {"available": 0, "escrow": 0}
    assert await totals(api) == {"CNY": 0}


async def test_a_journal_that_would_overdraw_is_refused_whole(api: Api) -> None:
    buyer, buyer_key = await api.participant("buyer")
    vendor, _ = await api.participant("vendor")
    await deposit(api, buyer, 1_000, "B-4")
    refused = await journal(
        api,
        {"id": "ok-part", "kind": "settle", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 600, "currency": "CNY"},
        {"id": "too-much", "kind": "settle", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 600, "currency": "CNY"},
    )
    problem = refused.json()
    assert refused.status_code == 422 and problem["code"] == "insufficient_funds" and problem["transfer_id"] == "too-much"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await balances(api, buyer_key) == {"available": 1_000, "escrow": 0}
    entries = (await api.request("GET", "/v1/accounts/me/transfers", buyer_key)).json()["items"]
    assert [e["transfer"] for e in entries] == [f"deposit.bank.{entries[0]['transfer'].split('.')[-1]}"]

    for transfer, code in (
        ({"id": "x1", "kind": "settle", "debit_account": f"{buyer}:escrow:CNY", "credit_account": available(vendor), "amount": 1, "currency": "CNY"}, "escrow_direct"),
        ({"id": "x2", "kind": "settle", "debit_account": "exchange:bank:CNY", "credit_account": available(vendor), "amount": 1, "currency": "CNY"}, "clearing_kind"),
        ({"id": "x3", "kind": "settle", "debit_account": "nobody:available:CNY", "credit_account": available(vendor), "amount": 1, "currency": "CNY"}, "unknown_account"),
        ({"id": "x4", "kind": "settle", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 1, "currency": "USD"}, "currency_mismatch"),
    ):
        response = await journal(api, transfer)
        assert response.status_code == 422 and response.json()["code"] == code, response.text


async def test_transfer_ids_are_idempotent(api: Api) -> None:
    buyer, buyer_key = await api.participant("buyer")
    vendor, _ = await api.participant("vendor")
    await deposit(api, buyer, 1_000, "B-5")
    transfer = {"id": "pay-5", "kind": "settle", "debit_account": available(buyer), "credit_account": available(vendor), "amount": 400, "currency": "CNY"}
    first = await journal(api, transfer)
    retry = await journal(api, transfer)
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    assert await balances(api, buyer_key) == {"available": 600, "escrow": 0}
    other = await journal(api, {**transfer, "amount": 300})
    assert other.status_code == 409 and other.json()["code"] == "transfer_id_reused"


async def test_withdrawal_is_held_until_confirmed_or_cancelled(api: Api) -> None:
    vendor, vendor_key = await api.participant("vendor")
    await deposit(api, vendor, 9_000, "B-6")
    asked = await api.request("POST", "/v1/accounts/withdrawals", vendor_key,
                              json={"amount": 5_000, "currency": "CNY", "rail": "bank", "destination": "ICBC 6222 0000 1234"})
    assert asked.status_code == 201, asked.text
    withdrawal = asked.json()
    assert withdrawal["status"] == "requested"
    assert await balances(api, vendor_key) == {"available": 4_000, "escrow": 5_000}

    too_much = await api.request("POST", "/v1/accounts/withdrawals", vendor_key, json={"amount": 5_000, "currency": "CNY", "rail": "bank", "destination": "x"})
    assert too_much.status_code == 422 and too_much.json()["code"] == "insufficient_funds"

    not_operator = await api.request("POST", f"/v1/accounts/withdrawals/{withdrawal['id']}/confirm", vendor_key, json={"reference": "PAY-1"})
    assert not_operator.status_code == 403
    paid = await api.request("POST", f"/v1/accounts/withdrawals/{withdrawal['id']}/confirm", api.operator_key, json={"reference": "PAY-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert await balances(api, vendor_key) == {"available": 4_000, "escrow": 0}
    again = await api.request("POST", f"/v1/accounts/withdrawals/{withdrawal['id']}/confirm", api.operator_key, json={"reference": "PAY-2"})
    assert again.status_code == 409

    second = (await api.request("POST", "/v1/accounts/withdrawals", vendor_key, json={"amount": 1_000, "currency": "CNY", "rail": "ecny", "destination": "wallet 0042"})).json()
    cancelled = await api.request("POST", f"/v1/accounts/withdrawals/{second['id']}/cancel", vendor_key)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert await balances(api, vendor_key) == {"available": 4_000, "escrow": 0}
    accounts = (await api.request("GET", "/v1/accounts", api.operator_key)).json()
    by_id = {a["id"]: a["balance"] for a in accounts["accounts"]}
    assert by_id["exchange:bank:CNY"] == -9_000 + 5_000
    assert accounts["totals"] == {"CNY": 0}


async def test_history_is_paginated_and_private(api: Api, clock: MovableClock) -> None:
    buyer, buyer_key = await api.participant("buyer")
    other, other_key = await api.participant("buyer")
    for n in range(5):
        await deposit(api, buyer, 100 + n, f"B-7-{n}")
    await deposit(api, other, 1, "B-7-other")
    first = (await api.request("GET", "/v1/accounts/me/transfers", buyer_key, params={"limit": 3})).json()
    second = (await api.request("GET", "/v1/accounts/me/transfers", buyer_key, params={"limit": 3, "cursor": first["next_cursor"]})).json()
    amounts = [e["amount"] for e in first["items"] + second["items"]]
    assert amounts == [104, 103, 102, 101, 100] and second["next_cursor"] is None
    assert [e["amount"] for e in (await api.request("GET", "/v1/accounts/me/transfers", other_key)).json()["items"]] == [1]

    size = (await api.request("GET", "/v1/ledger/entries", api.operator_key)).json()["size"]
    seen_by_other = (await api.request("GET", "/v1/ledger/entries", other_key, params={"start": 0, "end": size})).json()["entries"]
    transfers = [e for e in seen_by_other if e["type"] == "transfer"]
    assert [e["amount"] for e in transfers] == [1]
    assert any(e["type"] == "rules" for e in seen_by_other)  # rule activations are public records
    assert (await api.request("GET", "/v1/ledger/entries")).status_code == 401
    regulator_key = (await api.participant("regulator"))[1]
    assert len((await api.request("GET", "/v1/ledger/entries", regulator_key, params={"start": 0, "end": size})).json()["entries"]) == size
    regulator_write = await api.request("POST", "/v1/ledger/journals", regulator_key, json={"transfers": [{"id": "r", "kind": "fee", "debit_account": available(buyer), "credit_account": "exchange:fees:CNY", "amount": 1, "currency": "CNY"}]})
    assert regulator_write.status_code == 403
