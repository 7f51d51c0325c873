"""`new_row` builds the same row as the model's constructor, defaults and all (every order test
stores rows built by it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange.tables import IdempotencyRecord, Order, Trade, new_row

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
ORDER = dict(id="ord_1", listing_id="lst_1", revision=1, plan_id="pln_1", plan_kind="quota", participant_id="par_1", side="buy",
             type="limit", price=100, quantity=5, remaining=5, time_in_force="gtc", status="open", seq=1, rulebook_hash="h",
             created_at=NOW, updated_at=NOW)


@pytest.mark.parametrize(("model", "values"), [
    (Order, ORDER),
    (Trade, dict(id="trd_1", listing_id="lst_1", contract_id="ctr_1", buy_order_id="ord_1", price=100, quantity=2, seq=1, at=NOW)),
    (IdempotencyRecord, dict(participant_id="par_1", key="k", request_hash="h", status_code=201, response=b"{}", created_at=NOW)),
])
def test_a_new_row_is_what_the_constructor_builds(model: type, values: dict) -> None:  # type: ignore[type-arg]
    built, fast = model(**values), new_row(model, **values)
    assert fast.model_dump() == built.model_dump()
    assert fast.model_dump()  # defaults were filled in, not left out
