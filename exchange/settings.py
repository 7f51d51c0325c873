"""Settings: one frozen, typed object built once from EXCHANGE_* variables at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

PREFIX = "EXCHANGE_"


def shipped_rules_dir() -> Path:
    """The rules/ folder shipped with the code: the source checkout's, else the wheel's copy."""
    checkout = Path(__file__).resolve().parent.parent / "rules"
    if (checkout / "catalogue.toml").is_file():
        return checkout
    import exchange._rules  # the wheel maps rules/ to this package

    return Path(exchange._rules.__file__).resolve().parent


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` and pick the async driver we ship with."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the exchange reads from its environment. Tests build it directly."""

    database_url: str = "sqlite+aiosqlite:///var/exchange.db"
    """SQLAlchemy URL; `postgresql://…` and `sqlite:///…` are accepted too."""
    rules_dir: str = ""
    """Folder with the rule files; empty means the shipped rules/."""
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    operator_key_file: str = "var/operator.key"
    """Where `exchange bootstrap` writes the first operator's API key (mode 0600)."""
    log_level: str = "info"
    db_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    """Longest a single database statement may run."""
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 30
    """PostgreSQL connections one process keeps (opened as needed, then kept); past them, a
    request waits for one (up to db_timeout_s)."""
    body_bytes_max: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    signing_key_file: str = "var/signing.key"
    """The ledger's Ed25519 private key (PKCS#8 PEM), created with mode 0600 on first use."""
    ledger_head_every_entries: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """Sign a new tree head at least every this many entries ..."""
    ledger_head_interval_ms: Annotated[int, msgspec.Meta(ge=10)] = 1000
    """... and at least this often while entries wait for one."""
    sweep_interval_ms: Annotated[int, msgspec.Meta(ge=0)] = 1000
    """How often each process sweeps lapsed orders, contracts due to confirm or end, and bills;
    0: never (tests that run the sweep themselves, on their own clock)."""
    search_cache_pages: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 256
    """Public catalogue search answers each process keeps while the catalogue stays as it was
    (exchange/listings/cache.py); 0: none (every search reads the database)."""
    rate_share_interval_ms: Annotated[int, msgspec.Meta(ge=0)] = 250
    """How often each process shares its participants' request spending with the others (the
    request rate limit holds across processes, give or take what a participant spends in one
    process in this time); PostgreSQL only; 0: never (each process limits alone)."""
    write_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    """Write transactions one process runs at once; the rest queue in the process. Money moves
    under one ledger lock: with many writers in flight, the lock holder waits behind the others
    for its turn on the event loop, and every order waits behind it."""

    order_batch_max: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 256
    """Quota orders arriving together are placed in one transaction, up to this many (group
    commit: one book lock, one ledger lock and one commit for them all); 0: one at a time.
    PostgreSQL only: on SQLite orders are always placed one at a time."""

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "database_url", normalise_database_url(self.database_url))

    @property
    def rules_path(self) -> Path:
        return Path(self.rules_dir) if self.rules_dir else shipped_rules_dir()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        fields = {name.lower(): value for name, value in _own(environ).items()}
        known = set(cls.__struct_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            names = ", ".join(PREFIX + name.upper() for name in unknown)
            raise SystemExit(f"unknown setting(s): {names}; known: {', '.join(PREFIX + n.upper() for n in sorted(known))}")
        try:
            return msgspec.convert(fields, cls, strict=False)
        except msgspec.ValidationError as error:
            raise SystemExit(f"bad setting: {error}") from None


def _own(environ: Mapping[str, str]) -> dict[str, str]:
    # EXCHANGE_TEST_* and EXCHANGE_BENCH_* belong to the test suite and the benchmarks.
    return {
        key[len(PREFIX) :]: value
        for key, value in environ.items()
        if key.startswith(PREFIX) and not key.startswith((PREFIX + "TEST_", PREFIX + "BENCH_"))
    }
