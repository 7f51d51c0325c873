"""Errors leave as RFC 9457 problem+json with a stable code."""

from exchange.core import errors
from exchange.problems import STATUS_BY_CODE
from tests.harness import Api


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_every_operating_error_has_a_status() -> None:
    missing = [c.__name__ for c in _subclasses(errors.ExchangeError) if c.code not in STATUS_BY_CODE]
    assert not missing
    assert all(400 <= status < 500 for status in STATUS_BY_CODE.values())


async def test_unknown_route_and_wrong_method_are_problems(api: Api) -> None:
    for method, path, status in (("GET", "/v1/nowhere", 404), ("DELETE", "/v1/listings", 405)):
        response = await api.client.request(method, path)
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == status and body["code"] and body["type"].startswith("urn:exchange:problem:")
        assert body["instance"] == path


async def test_malformed_json_and_wrong_types_are_400_problems(api: Api) -> None:
    headers = api.auth(api.operator_key, **{"content-type": "application/json"})
    for raw in (b"{", b"\xff\xfe", b"[]", b'{"name": 1, "roles": ["buyer"]}', b'{"name": "x", "roles": ["buyer"], "extra": 1}'):
        response = await api.client.post("/v1/participants", content=raw, headers=headers)
        assert response.status_code == 400, raw
        assert response.json()["code"] == "invalid_request"


async def test_oversized_body_is_refused(api: Api) -> None:
    body = b'{"name": "' + b"x" * (api.settings.body_bytes_max + 10) + b'"}'
    response = await api.client.post("/v1/participants", content=body, headers=api.auth(api.operator_key, **{"content-type": "application/json"}))
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


async def test_health_reports_the_database_and_rules(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["rules_version"] == 1
    assert response.headers["x-request-id"]


async def test_openapi_document_is_served(api: Api) -> None:
    schema = (await api.client.get("/schema/openapi.json")).json()
    assert "/v1/listings" in schema["paths"] and "/v1/rules/dry-run" in schema["paths"]
    # Clients generated from the document know how to send their key.
    assert schema["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer", "description": "A participant's API key"}
    assert {"apiKey": []} in schema["security"]
