"""The retry policy for write transactions, without a database: which errors run a transaction
again, how long to wait, and that the loop gives up after a bounded number of attempts."""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from exchange.core import retry
from exchange.db import retrying


def wrapped(driver_error: Exception) -> sa.exc.DBAPIError:
    """What SQLAlchemy raises for an asyncpg error: DBAPIError -> the adapter's error -> asyncpg's."""
    try:
        raise AsyncAdapt_asyncpg_dbapi.Error(str(driver_error), driver_error) from driver_error
    except AsyncAdapt_asyncpg_dbapi.Error as adapted:
        return sa.exc.DBAPIError("UPDATE books SET seq = seq + 1", None, adapted)


def cause_only(driver_error: Exception) -> sa.exc.DBAPIError:
    """A DBAPI error that keeps the SQLSTATE only on the exception it wraps."""
    try:
        raise RuntimeError("driver error") from driver_error
    except RuntimeError as orig:
        return sa.exc.OperationalError("UPDATE books SET seq = seq + 1", None, orig)


def test_deadlocks_and_serialisation_failures_are_retryable_and_nothing_else() -> None:
    assert retry.retryable(wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))) == "40P01"
    assert retry.retryable(cause_only(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))) == "40P01"
    assert retry.retryable(wrapped(asyncpg.exceptions.SerializationError("could not serialize access"))) == "40001"
    unique = wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert retry.sqlstate(unique) == "23505" and retry.retryable(unique) is None
    locked = sa.exc.OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
    assert retry.sqlstate(locked) is None and retry.retryable(locked) is None
    assert retry.retryable(ValueError("not a database error")) is None


def test_the_backoff_doubles_from_5_ms_to_a_cap_with_jitter() -> None:
    ceilings = [retry.delay_s(attempt, 0.999999) for attempt in range(1, 9)]
    assert ceilings[:4] == pytest.approx([0.005, 0.010, 0.020, 0.040], rel=1e-5)
    assert max(ceilings) == pytest.approx(retry.DELAY_CAP_S, rel=1e-5)
    for attempt in range(1, 9):
        assert retry.delay_s(attempt, 0.0) == pytest.approx(retry.delay_s(attempt, 0.999999) / 2, rel=1e-5)


class Flaky:
    """A transaction that fails with `errors` in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "committed"


async def test_a_deadlock_victim_is_run_again_until_it_commits() -> None:
    deadlock = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    action = Flaky(wrapped(deadlock), cause_only(deadlock))
    slept: list[float] = []
    counted: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with structlog.testing.capture_logs() as logs:
        assert await retrying(action, sleep=sleep, jitter=lambda: 0.5, on_retry=counted.append) == "committed"
    assert action.calls == 3 and counted == ["40P01", "40P01"]
    assert slept == pytest.approx([retry.delay_s(1, 0.5), retry.delay_s(2, 0.5)]) and slept[0] < slept[1]
    warnings = [(e["log_level"], e["event"], e["attempt"], e["sqlstate"]) for e in logs]
    assert warnings == [("warning", "db.transaction_retried", 1, "40P01"), ("warning", "db.transaction_retried", 2, "40P01")]


@pytest.mark.parametrize("error", [
    wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")),
    sa.exc.OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")),
    ValueError("a bug"),
], ids=["unique-violation", "sqlite-locked", "not-a-database-error"])
async def test_other_errors_are_not_retried(error: Exception) -> None:
    action = Flaky(error)

    async def sleep(seconds: float) -> None:
        raise AssertionError("no wait for an error that is not retried")

    with pytest.raises(type(error)):
        await retrying(action, sleep=sleep)
    assert action.calls == 1


async def test_attempts_are_bounded_and_the_last_error_goes_to_the_caller() -> None:
    failures = [wrapped(asyncpg.exceptions.SerializationError("could not serialize access")) for _ in range(10)]
    action = Flaky(*failures)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(sa.exc.DBAPIError) as raised:
        await retrying(action, sleep=sleep)
    assert action.calls == retry.ATTEMPTS == 5 and len(slept) == 4
    assert raised.value is failures[4] and retry.retryable(raised.value) == "40001"
    assert sum(slept) < 0.2  # bounded waiting too: 5 + 10 + 20 + 40 ms at most

    once = Flaky(wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")))
    with pytest.raises(sa.exc.DBAPIError):
        await retrying(once, attempts=1, sleep=sleep)  # retry switched off: the victim fails
    assert once.calls == 1
