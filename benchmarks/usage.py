"""Usage billing throughput of the pure core: records per second through `UsageLedger.add_batch`,
and bills per second through `metered_bill`. Prints figures only; no assertions on time.

    .venv/bin/python benchmarks/usage.py [--records 1000000] [--batch 1000] [--bills 200000] [--seed 1]

The usage stream is a month of gateway reports: batches of `--batch` records, timestamps rising
through March 2025 (UTC, to the microsecond), 1 to 50 calls each, and about one record in a
thousand repeated within its batch (counted once). The stream is made first as plain tuples,
untimed; building the UsageRecord objects from them is timed on its own line; the add_batch
figure is the records handed to add_batch divided by the wall time of all the add_batch calls.
Then every batch is delivered a second time (all ignored, idempotent per batch id), and
`calls_between` is timed on the 31 days of the month, on the hour, and on the same days
shifted by a second, which makes it scan the two hours it cuts.

Bills: `metered_bill` on a four-tier plan with free calls, a monthly fee and a cap, once with the
plan as the catalogue stores it (a dict, validated on every call) and once pre-parsed into a
`MeteredPlan`; call counts drawn from 0 to 10 million.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, result  # noqa: E402

from exchange.listings.schemas import MeteredPlan  # noqa: E402
from exchange.orders.billing import UsageLedger, UsageRecord, metered_bill  # noqa: E402

MONTH_START = datetime(2025, 3, 1, tzinfo=UTC)
MONTH = timedelta(days=31)
REPEAT_ONE_IN = 1000

PLAN = {
    "kind": "metered",
    "id": "bench-plan",
    "tiers": [
        {"up_to": 10_000, "price": {"amount": 10, "currency": "CNY"}},
        {"up_to": 100_000, "price": {"amount": 8, "currency": "CNY"}},
        {"up_to": 1_000_000, "price": {"amount": 5, "currency": "CNY"}},
        {"up_to": None, "price": {"amount": 3, "currency": "CNY"}},
    ],
    "free_calls": 1_000,
    "monthly_fee": {"amount": 99_00, "currency": "CNY"},
    "monthly_cap": {"amount": 5_000_000, "currency": "CNY"},
}


def make_rows(rng: random.Random, records: int, batch_size: int) -> list[tuple[str, list[tuple[str, str, datetime, int]]]]:
    """The stream as plain tuples (batch id, record id, at, calls), batch by batch."""
    step_us = MONTH // timedelta(microseconds=1) // max(records, 1)
    batches = []
    made = 0
    while made < records:
        batch_id = f"gw-1:{len(batches):08d}"
        rows: list[tuple[str, str, datetime, int]] = []
        for _ in range(min(batch_size, records - made)):
            if rows and rng.randrange(REPEAT_ONE_IN) == 0:
                rows.append(rows[rng.randrange(len(rows))])  # a repeat within the batch
            else:
                at = MONTH_START + timedelta(microseconds=made * step_us + rng.randrange(step_us))
                rows.append((batch_id, f"r{made:09d}", at, rng.randint(1, 50)))
            made += 1
        batches.append((batch_id, rows))
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--bills", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    header()
    rng = random.Random(args.seed)

    stream = make_rows(rng, args.records, args.batch)
    gc.collect()
    started = time.perf_counter()
    batches = [(batch_id, [UsageRecord(*row) for row in rows]) for batch_id, rows in stream]
    built_s = time.perf_counter() - started
    print(f"UsageRecord(...), validated:      {args.records / built_s:>12,.0f} records/s  ({args.records:,} in {built_s:.2f} s; "
          f"not part of the add_batch figure)")

    gc.collect()
    gc.freeze()  # the pre-built records are long-lived input: keep full collections from rescanning them
    ledger = UsageLedger()
    started = time.perf_counter()
    for batch_id, rows in batches:
        ledger.add_batch(batch_id, rows)
    elapsed = time.perf_counter() - started
    print(f"add_batch:                        {args.records / elapsed:>12,.0f} records/s  ({args.records:,} in {len(batches):,} batches "
          f"of {args.batch:,}, {elapsed:.2f} s, one core; {ledger.record_count:,} counted after repeats, "
          f"{ledger.total_calls:,} calls)")
    result("usage rating core: add_batch", round(args.records / elapsed), "records/s", size=f"{args.records:,} records, batches of {args.batch:,}",
           note="the pure core, no HTTP or database")

    started = time.perf_counter()
    for batch_id, rows in batches:
        ledger.add_batch(batch_id, rows)
    elapsed = time.perf_counter() - started
    print(f"add_batch, redelivered (ignored):  {len(batches) / elapsed:>12,.0f} batches/s")

    for label, shift in (("one day each, on the hour", timedelta(0)), ("one day each, cut hours", timedelta(seconds=1))):
        days = [(MONTH_START + timedelta(days=day) + shift, MONTH_START + timedelta(days=day + 1) + shift) for day in range(31)]
        started = time.perf_counter()
        for _ in range(10):
            daily = [ledger.calls_between(start, end) for start, end in days]
        elapsed = time.perf_counter() - started
        # The stream lies within March, so the days on the hour must add up to every call.
        adds_up = f"  (days sum to the total: {sum(daily) == ledger.total_calls})" if not shift else ""
        print(f"calls_between, {label + ':':<27}{10 * len(days) / elapsed:>10,.0f} queries/s{adds_up}")
    gc.unfreeze()

    call_counts = [rng.randrange(10_000_000) for _ in range(args.bills)]
    parsed = msgspec.convert(PLAN, MeteredPlan)
    for label, plan in (("plan as dict", PLAN), ("plan pre-parsed", parsed)):
        started = time.perf_counter()
        for calls in call_counts:
            metered_bill(plan, calls)
        elapsed = time.perf_counter() - started
        print(f"metered_bill, {label + ':':<21}{args.bills / elapsed:>12,.0f} bills/s  ({args.bills:,} in {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
