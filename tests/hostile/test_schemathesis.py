"""Schemathesis against the served OpenAPI document, with valid API keys: no 5xx, every error is
application/problem+json, and statuses, content types, headers and bodies are what the document
says. Negative cases (data the document forbids) must be refused with a 4xx.

Cases are drawn from the document the app serves (GET /schema/openapi.json) once per session and
sent through the test client to the app on each database; `derandomize` keeps the run the same on
every machine. Besides random ids (which mostly meet 404), each operation on a listing, contract,
order or participant also gets cases aimed at a real one, so the 200 bodies are checked too."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import MovableClock
from tests.harness import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
POSITIVE_EXAMPLES = 6
NEGATIVE_EXAMPLES = 6
SEEDED_EXAMPLES = 4
REQUEST_SECONDS = 10
PROBLEM_MEMBERS = {"type", "code", "title", "status", "detail", "instance"}
# Path parameters that get a real object's id in the seeded cases; cases carry a placeholder,
# replaced in the URL when sent, so one generation serves both databases.
SEEDED = ("listing_id", "contract_id", "order_id", "participant_id")
PLACEHOLDER = "seeded-{}"
# What the schemas cannot say, so a body they allow may still be refused as malformed: rules
# across fields, and what the document's description says instead (no U+0000 or lone
# surrogates in text, no member named twice, integers without a fraction: JSON Schema counts
# 100.0 as an integer, the exchange takes no float for fen).
UNSTATED_RULES = (
    "tiers must have strictly increasing `up_to`",
    "only the last tier may have `up_to` null",
    "schema is larger than",
    "contains the character U+0000",
    "contains a lone surrogate",
    "is given twice in one object",
    "got `float`",  # `int`, `int | null`
)


@dataclass(frozen=True)
class Drawn:
    case: Any
    label: str


_DRAWN: dict[str, list[Drawn]] = {}


def _draw(strategy: Any, count: int) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        found.append(case)

    collect()
    return found


def drawn_cases(document: dict[str, Any]) -> list[Drawn]:
    key = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    if key in _DRAWN:
        return _DRAWN[key]
    schema = schemathesis.openapi.from_dict(document)
    cases: list[Drawn] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases += [Drawn(case, "positive") for case in _draw(operation.as_strategy(), POSITIVE_EXAMPLES)]
        # A bare string in the path cannot be made invalid; a body or a query can.
        if list(operation.body) or list(operation.query):
            strategy = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
            cases += [Drawn(case, "negative") for case in _draw(strategy, NEGATIVE_EXAMPLES)]
        names = {parameter.name for parameter in operation.path_parameters}
        if names & set(SEEDED):
            fixed = {name: PLACEHOLDER.format(name) for name in names & set(SEEDED)}
            strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=fixed)
            cases += [Drawn(case, "seeded") for case in _draw(strategy, SEEDED_EXAMPLES)]
    _DRAWN[key] = cases
    return cases


async def seed(api: Api) -> tuple[str, dict[str, str]]:
    """A listed product of a vendor that also buys, a buyer with money, an order that filled and
    its contract. Returns the vendor's key and the ids."""
    vendor_id, vendor = await api.participant("vendor", "buyer", qualifications=["data-merchant"], name="Vendor 供应商")
    buyer_id, buyer = await api.participant("buyer", name="Buyer")
    deposit = {"participant_id": buyer_id, "amount": 10_000_000, "currency": "CNY", "rail": "bank", "reference": "seed"}
    assert (await api.request("POST", "/v1/accounts/deposits", api.operator_key, json=deposit)).status_code == 201
    listing = await api.listed(vendor)
    order = await api.request("POST", "/v1/orders", buyer, json={"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"]})
    assert order.status_code == 201, order.text
    return vendor, {
        "listing_id": listing["id"],
        "contract_id": order.json()["contract_ids"][0],
        "order_id": order.json()["id"],
        "participant_id": vendor_id,
    }


def problem_failure(response: Any) -> str | None:
    """Why an error response is not a proper problem, or None when it is."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("application/problem+json"):
        return f"error with content type {content_type!r}"
    try:
        body = response.json()
    except ValueError:
        return "problem body is not JSON"
    if not isinstance(body, dict) or not PROBLEM_MEMBERS <= set(body):
        return f"problem without {sorted(PROBLEM_MEMBERS - set(body if isinstance(body, dict) else {}))}"
    if body["status"] != response.status_code or not body["code"] or not body["detail"]:
        return f"problem status {body['status']} / code {body['code']!r} / detail {body['detail']!r}"
    if not body["type"].startswith("urn:exchange:problem:"):
        return f"problem type {body['type']!r}"
    return None


async def send(api: Api, drawn: Drawn, key: str, ids: dict[str, str]) -> tuple[Any, str]:
    kwargs = drawn.case.as_transport_kwargs(base_url=str(api.client.base_url), headers={"Authorization": f"Bearer {key}"})
    for name, value in ids.items():
        kwargs["url"] = kwargs["url"].replace(PLACEHOLDER.format(name), value)
    allowed = ("method", "url", "headers", "params", "json", "data", "files", "cookies")
    prepared = requests.Request(**{name: value for name, value in kwargs.items() if name in allowed}).prepare()
    response = await asyncio.wait_for(
        api.client.request(prepared.method or "GET", prepared.url or "", headers=dict(prepared.headers), content=prepared.body),
        REQUEST_SECONDS,
    )
    return response, f"{prepared.method} {prepared.url} {prepared.body!r:.300}"


async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(api: Api, clock: MovableClock) -> None:
    document = (await api.client.get("/schema/openapi.json")).json()
    trader, ids = await seed(api)
    cases = drawn_cases(document)
    statuses: dict[int, int] = {}
    failures: list[str] = []
    sent_count = 0
    for drawn in cases:
        # Every case as the operator; valid ones again as a vendor that also buys, to get past
        # the role checks of selling and buying.
        for who, key in (("operator", api.operator_key), ("trader", trader)):
            if who == "trader" and drawn.label == "negative":
                continue
            response, sent = await send(api, drawn, key, ids)
            sent_count += 1
            if sent_count % 500 == 0:
                clock.advance(minutes=1)  # stay under trading.toml's api.requests_per_minute
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            found: list[str] = []
            try:
                drawn.case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                found += [f"{type(failure).__name__}: {failure.title}" for failure in group.exceptions]
            if (problem := problem_failure(response)) is not None:
                found.append(problem)
            if drawn.label != "negative" and response.status_code == 400 and not any(rule in response.text for rule in UNSTATED_RULES):
                found.append("valid by the document, refused by the server as malformed")
            if found:
                failures.append(f"{drawn.case.operation.label} [{drawn.label}, {who}] -> {response.status_code}: {'; '.join(found)}\n    {sent}\n    {response.text[:300]}")
    assert not failures, f"{len(failures)} of {sent_count} requests failed:\n" + "\n".join(failures[:30])
    # The run reached past validation: real objects were found and many requests succeeded.
    assert sent_count > 1000
    assert sum(count for status, count in statuses.items() if status < 300) > 100, statuses
    assert all(statuses.get(status) for status in (201, 400, 403, 404)), statuses


async def test_a_document_that_disagrees_with_the_server_is_caught(api: Api) -> None:
    """The checks above bite: describe errors as plain JSON, as Litestar would by default, and
    the same kind of request fails conformance."""
    document = (await api.client.get("/schema/openapi.json")).json()
    for responses in (operation["responses"] for item in document["paths"].values() for operation in item.values() if isinstance(operation, dict) and "responses" in operation):
        for response in responses.values():
            if "application/problem+json" in response.get("content", {}):
                response["content"] = {"application/json": response["content"]["application/problem+json"]}
    schema = schemathesis.openapi.from_dict(document)
    operation = schema["/v1/listings"]["GET"]
    case = operation.Case(query={"limit": 0})
    response = await api.request("GET", "/v1/listings", api.operator_key, params={"limit": 0})
    assert response.status_code == 400
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        assert any("Content-Type" in failure.title for failure in group.exceptions)
    else:
        raise AssertionError("an undocumented content type passed")
