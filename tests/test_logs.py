"""Logs are JSON lines with a request id, and never carry an API key."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from exchange.log import configure_logging
from tests.harness import Api


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream)
    yield stream
    structlog.reset_defaults()


async def test_each_request_logs_one_json_line_with_its_id_and_no_key(api: Api, json_logs: io.StringIO) -> None:
    vendor_id, vendor_key = await api.participant("vendor")
    response = await api.request("GET", "/v1/participants/me", vendor_key, headers={"x-request-id": "trace-42"})
    refused = await api.request("GET", "/v1/participants/me", vendor_key + "x")
    assert response.status_code == 200 and refused.status_code == 401
    assert response.headers["x-request-id"] == "trace-42"

    err = json_logs.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    completed = [line for line in lines if line["event"] == "request.completed"]
    assert [(line["path"], line["status"]) for line in completed] == [("/v1/participants/me", 200), ("/v1/participants/me", 401)]
    assert completed[0]["request_id"] == "trace-42"
    assert completed[1]["request_id"] != "trace-42" and len(completed[1]["request_id"]) == 32
    assert vendor_key not in err and vendor_key[4:20] not in err
