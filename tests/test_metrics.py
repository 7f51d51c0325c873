"""GET /metrics: Prometheus text with requests, latencies, orders, fills, ledger size, head age."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Api


async def test_metrics_count_requests_and_read_the_books(api: Api) -> None:
    for _ in range(3):
        assert (await api.request("GET", "/v1/listings")).status_code == 200
    response = await api.request("GET", "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(response.text) for s in f.samples}
    assert samples[("exchange_http_requests_total", (("method", "GET"), ("route", "/v1/listings"), ("status", "200")))] == 3
    assert samples[("exchange_http_request_duration_seconds_count", (("route", "/v1/listings"),))] == 3
    assert samples[("exchange_ledger_entries", ())] >= 1  # rule set 1 is logged
    assert ("exchange_ledger_head_age_seconds", ()) in samples and ("exchange_fills", ()) in samples
