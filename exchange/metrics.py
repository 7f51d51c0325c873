"""GET /metrics in Prometheus text format: this process's requests, latencies, retried
transactions, order desk batches (their sizes, how long each gathered its requests and how long
it took) and public searches answered from its cache, and the exchange's orders, fills, ledger
size and head age read from the database at scrape time (the same for every process, so any one
can be scraped)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from exchange.settlement.ledger import millis
from exchange.tables import Order, Trade

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("exchange_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("exchange_http_request_duration_seconds", "Time to serve a request", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.orders = Gauge("exchange_orders", "Orders by status", ["status"], registry=self.registry)
        self.fills = Gauge("exchange_fills", "Fills (trades) made", registry=self.registry)
        self.filled_quantity = Gauge("exchange_filled_quantity", "Units, licences and periods filled", registry=self.registry)
        self.ledger_size = Gauge("exchange_ledger_entries", "Entries in the Merkle log", registry=self.registry)
        self.unsigned = Gauge("exchange_ledger_unsigned_entries", "Entries not yet covered by a signed head", registry=self.registry)
        self.head_age = Gauge("exchange_ledger_head_age_seconds", "Age of the latest signed tree head", registry=self.registry)
        self.retries = Counter("exchange_db_transaction_retries", "Write transactions run again after a deadlock or serialisation failure",
                               ["sqlstate"], registry=self.registry)
        self.batches = Histogram("exchange_order_batch_orders", "Quota orders placed together in one transaction by the order desk",
                                 buckets=BATCH_BUCKETS, registry=self.registry)
        self.search_answers = Gauge("exchange_search_answers", "Public catalogue searches this process answered, by where from (kept: its cache)",
                                    ["source"], registry=self.registry)
        self.batches_failed = Counter("exchange_order_batches_failed", "Order desk batches that failed, their orders then placed one at a time",
                                      registry=self.registry)
        # Where an order's time on the desk goes: waiting for the requests on their way to join its
        # batch, then the batch's transaction (its own work and its statements' round trips).
        self.batch_gathering = Histogram("exchange_order_batch_gathering_seconds",
                                         "Time the order desk waited for requests to join a batch before placing it",
                                         buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_duration = Histogram("exchange_order_batch_duration_seconds", "Time the order desk took to place a batch (its transaction)",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)

    def batched(self, placed: int, failed: bool, gathered_s: float, took_s: float) -> None:
        if failed:
            self.batches_failed.inc()
        else:
            self.batches.observe(placed)
        self.batch_gathering.observe(gathered_s)
        self.batch_duration.observe(took_s)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def retried(self, sqlstate: str) -> None:
        self.retries.labels(sqlstate).inc()

    async def render(self, exchange: Any) -> tuple[bytes, str]:
        async with exchange.db.read() as session:
            for status, count in (await session.execute(sa.select(Order.status, sa.func.count()).group_by(Order.status))).all():
                self.orders.labels(status).set(count)
            fills, quantity = (await session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Trade.quantity), 0)))).one()
            self.fills.set(fills)
            self.filled_quantity.set(quantity)
            size = await exchange.ledger.size(session)
            head = await exchange.ledger.latest_head(session)
        self.ledger_size.set(size)
        if exchange.search_cache is not None:
            self.search_answers.labels("kept").set(exchange.search_cache.hits)
            self.search_answers.labels("database").set(exchange.search_cache.misses)
        self.unsigned.set(size - (head.size if head else 0))
        self.head_age.set((millis(exchange.clock()) - head.timestamp_ms) / 1000 if head else 0)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
