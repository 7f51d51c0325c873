"""When a write transaction is run again. PostgreSQL aborts one of two transactions that
deadlock (SQLSTATE 40P01) or cannot be serialised (40001); the aborted one changed nothing, so
running it again from the start is correct, and waiting a little, with jitter, keeps the two
from colliding again at once. Pure: the loop that sleeps is `exchange.db.retrying`.

SQLite's "database is locked" is not retried: writers queue on BEGIN IMMEDIATE for the whole
busy timeout already, so that error means the database stayed locked for that long."""

from __future__ import annotations

RETRYABLE = {"40001": "serialization_failure", "40P01": "deadlock_detected"}
ATTEMPTS = 5
FIRST_DELAY_S = 0.005
DELAY_CAP_S = 0.2


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE on `error`, on the DBAPI error SQLAlchemy wraps (`orig`) or on what that
    wraps in turn (asyncpg's own exception is the adapter's `__cause__`)."""
    seen: BaseException | None = error
    for _ in range(4):  # SQLAlchemy error -> DBAPI adapter -> driver exception, and one more
        if seen is None:
            break
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return None


def retryable(error: BaseException) -> str | None:
    """The SQLSTATE when `error` means "run the transaction again", else None."""
    code = sqlstate(error)
    return code if code in RETRYABLE else None


def delay_s(attempt: int, jitter: float) -> float:
    """How long to wait after failed attempt `attempt` (1, 2, …): 5 ms doubling per attempt up to
    200 ms, of which a random half (`jitter` in [0, 1)) so racing retries spread out."""
    ceiling = min(DELAY_CAP_S, FIRST_DELAY_S * 2 ** (attempt - 1))
    return ceiling * (0.5 + jitter / 2)
