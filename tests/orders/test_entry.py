"""Order entry (exchange/orders/entry.py): the orders and cancels the desk answers are handed to it
straight from the ASGI messages, and answered exactly as the handler answers them; everything
else reaches the handler as it always did, and the desk is asked once. A query string sends a
request the handler's way (the entry path leaves those to Litestar), which is how these tests
get the handler's answer to compare. The desk runs on PostgreSQL only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from exchange.orders import desk
from tests.harness import Api
from tests.orders.conftest import Market, money

pytestmark = pytest.mark.postgres_only

_ID = re.compile(r'"(ord|ctr|trd|par|lst|pln)_[0-9a-z]+"')
_TIME = re.compile(r'"20\d\d-[0-9-]+T[0-9:.]+Z"')


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the desk was asked, by kind."""
    seen: list[str] = []
    place = desk.OrderDesk.place

    async def counted(self: desk.OrderDesk, ticket: Any) -> Any:
        seen.append(type(ticket).__name__)
        return await place(self, ticket)

    monkeypatch.setattr(desk.OrderDesk, "place", counted)
    return seen


def shape(response: Any) -> tuple[int, dict[str, str], str]:
    """Status, headers (but the request id) and body with its ids and times blanked."""
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, headers, _TIME.sub('"T"', _ID.sub('"ID"', response.text))


async def test_orders_and_cancels_are_answered_as_the_handler_answers_them(market: Market, api: Api, asked: list[str]) -> None:
    listing = await market.listing({"kind": "quota", "unit": "1,000 calls", "reference_price": money(100)})
    _, buyer = await market.buyer(10_000_000)
    resting = {"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "quantity": 3, "price": 90, "time_in_force": "gtc"}
    keyed = {"Authorization": f"Bearer {buyer}", "Idempotency-Key": "entry-1"}

    entered = await api.client.post("/v1/orders", json=resting, headers=keyed)
    handled = await api.client.post("/v1/orders?via=handler", json=resting, headers={**keyed, "Idempotency-Key": "entry-2"})
    assert entered.status_code == 201, entered.text
    assert shape(entered) == shape(handled)
    assert asked == ["Ticket", "Ticket"]

    replayed = await api.client.post("/v1/orders", json=resting, headers=keyed)
    replayed_by_handler = await api.client.post("/v1/orders?via=handler", json=resting, headers=keyed)
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == entered.content
    assert shape(replayed) == shape(replayed_by_handler)

    auth = {"Authorization": f"Bearer {buyer}"}
    cancelled = await api.client.delete(f"/v1/orders/{entered.json()['id']}", headers=auth)
    cancelled_by_handler = await api.client.delete(f"/v1/orders/{handled.json()['id']}?via=handler", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert shape(cancelled) == shape(cancelled_by_handler)
    assert asked == ["Ticket", "Ticket", "Ticket", "Ticket", "Cancel", "Cancel"]

    again = await api.client.delete(f"/v1/orders/{entered.json()['id']}", headers=auth)
    again_by_handler = await api.client.delete(f"/v1/orders/{entered.json()['id']}?via=handler", headers=auth)
    assert again.status_code == 409  # the desk leaves it to the single-order path, which refuses it
    assert shape(again) == shape(again_by_handler)
    assert asked[6:] == ["Cancel", "Cancel"]  # asked once each: the handler took the entry path's answer


async def test_what_the_desk_refuses_or_leaves_is_answered_by_the_handler_without_asking_again(market: Market, api: Api, asked: list[str]) -> None:
    listing = await market.listing({"kind": "quota", "unit": "1,000 calls", "reference_price": money(100)})
    _, buyer = await market.buyer(1_000)
    body = {"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "quantity": 1, "price": 500, "time_in_force": "ioc"}
    outside = await market.order(buyer, listing, **body | {"listing_id": listing["id"]})
    assert outside.status_code == 422 and "price_band" in outside.text  # the single-order path words the refusal
    poor = await market.order(buyer, listing, quantity=1000, price=100)
    assert poor.status_code == 422 and "insufficient" in poor.text.lower()
    assert asked == ["Ticket", "Ticket"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"Content-Type": "text/plain"}, b'{"quantity": 1}', 415, None),
        ({}, b'{"listing_id": "x", "listing_id": "y", "plan_id": "p", "quantity": 1}', 400, "listing_id"),
        ({}, b'{"listing_id": "lst_x", "plan_id": "pln_x", "quantity": "1"}', 400, "quantity"),
        ({}, b'{"listing_id": "lst_\\u0000", "plan_id": "pln_x", "quantity": 1}', 400, "listing_id"),
        ({"Idempotency-Key": "k" * 201}, b'{"listing_id": "lst_x", "plan_id": "pln_x", "quantity": 1}', 422, "Idempotency-Key"),
        ({}, b'{"listing_id": "lst_x", "plan_id": "pln_x", "quantity": 1, "colour": "red"}', 400, "colour"),
        ({}, b"[" * 40 + b"]" * 40, 400, None),
        ({}, b"", 400, None),
    ],
)
async def test_bodies_the_checks_would_refuse_reach_them_and_are_refused_as_before(
    market: Market, api: Api, asked: list[str], headers: dict[str, str], body: bytes, status: int, field: str | None
) -> None:
    _, buyer = await market.buyer(1_000)
    answer = await api.client.post("/v1/orders", content=body, headers={"Authorization": f"Bearer {buyer}", "Content-Type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert field in answer.text
    assert asked == []  # refused before the desk, as the handler's checks always refused it


async def test_a_body_over_the_limit_is_refused_without_being_read_whole(market: Market, api: Api, asked: list[str]) -> None:
    _, buyer = await market.buyer(1_000)
    huge = b'{"listing_id": "' + b"x" * (api.settings.body_bytes_max + 10) + b'", "plan_id": "p", "quantity": 1}'
    answer = await api.client.post("/v1/orders", content=huge, headers={"Authorization": f"Bearer {buyer}", "Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert asked == []
