"""Rule-set versions in the database: the first start stores the shipped files as version 1;
operators apply new versions while the exchange runs. Every process finds the active version
with one indexed query per use and decodes a version only once (cached by version number), so
a change applied by any process or by the CLI takes effect everywhere without a restart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.errors import Conflict, NotFound
from exchange.rulebook.load import decode_rulebook, rulebook_hash
from exchange.rulebook.model import Rulebook
from exchange.settlement.entries import RulesEntry
from exchange.settlement.ledger import Ledger, millis
from exchange.tables import RuleSet

SYSTEM_ACTOR = "system"


class ActiveRules(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    hash: str
    rulebook: Rulebook
    files: dict[str, str]


class RulebookCache:
    """Decoded rule sets by version: versions never change once stored."""

    def __init__(self) -> None:
        self._by_version: dict[int, ActiveRules] = {}

    def get(self, version: int) -> ActiveRules | None:
        return self._by_version.get(version)

    def put(self, rules: ActiveRules) -> None:
        self._by_version[rules.version] = rules


# Built once: every request asks it (for its rate limit), and building and keying a statement
# costs SQLAlchemy about as much as running it.
ACTIVE_VERSION = (
    sa.select(RuleSet.version)
    .where(RuleSet.effective_at <= sa.bindparam("now"))  # type: ignore[arg-type]
    .order_by(RuleSet.version.desc())  # type: ignore[attr-defined]
    .limit(1)
)


async def active(session: AsyncSession, cache: RulebookCache, now: datetime, *, version: int | None = None) -> ActiveRules:
    """The rule set in force at `now`; `version` when the caller already read which one it is."""
    if version is None:
        version = (await session.execute(ACTIVE_VERSION, {"now": now})).scalar_one_or_none()
    if version is None:
        raise NotFound("No rule set is in force; run `exchange migrate` and start the server once.")
    cached = cache.get(version)
    if cached is not None:
        return cached
    row = await session.get(RuleSet, version)
    assert row is not None
    rules = ActiveRules(
        version=row.version, hash=row.hash, rulebook=decode_rulebook(row.files), files=dict(row.files)
    )
    cache.put(rules)
    return rules


async def by_hash(session: AsyncSession, cache: RulebookCache, rules_hash: str) -> ActiveRules:
    """The rule set with this hash, as it judged what recorded the hash (the newest version if
    the same content was applied twice)."""
    query = sa.select(RuleSet.version).where(RuleSet.hash == rules_hash).order_by(RuleSet.version.desc()).limit(1)  # type: ignore[attr-defined]
    version = (await session.execute(query)).scalar_one_or_none()
    if version is None:
        raise NotFound(f"No rule set with hash {rules_hash}.")
    cached = cache.get(version)
    if cached is not None and cached.hash == rules_hash:  # a cache outliving its database must not answer
        return cached
    row = await session.get(RuleSet, version)
    assert row is not None
    rules = ActiveRules(version=row.version, hash=row.hash, rulebook=decode_rulebook(row.files), files=dict(row.files))
    cache.put(rules)
    return rules


async def ensure_initial(session: AsyncSession, ledger: Ledger, files: Mapping[str, str], now: datetime) -> bool:
    """Store `files` as version 1 unless a rule set exists; True when it stored them. Several
    processes starting at once queue on the ledger's lock, so only the first one stores."""
    await ledger.lock(session)
    if (await session.execute(sa.select(sa.func.count()).select_from(RuleSet))).scalar_one():
        return False
    await store(session, ledger, files, reason="initial rule set", actor_id=SYSTEM_ACTOR, effective_at=now, now=now)
    return True


async def store(
    session: AsyncSession,
    ledger: Ledger,
    files: Mapping[str, str],
    *,
    reason: str,
    actor_id: str,
    effective_at: datetime,
    now: datetime,
) -> RuleSet:
    """Validate `files` (raises RulebookInvalid naming file, key and reason) and store them as
    the next version, logged in the ledger with its hash so the activation is provable later.
    Two operators applying at once: one wins, the other gets a conflict."""
    decode_rulebook(files)
    latest = (await session.execute(sa.select(sa.func.max(RuleSet.version)))).scalar_one()
    row = RuleSet(
        version=(latest or 0) + 1,
        hash=rulebook_hash(files),
        files=dict(sorted(files.items())),
        reason=reason,
        created_by=actor_id,
        created_at=now,
        effective_at=effective_at,
    )
    session.add(row)
    try:
        await session.flush()
    except sa.exc.IntegrityError as error:
        raise Conflict("Another rule set was applied at the same moment; try again.") from error
    entry = RulesEntry(index=-1, at=millis(now), version=row.version, hash=row.hash, effective_at=millis(effective_at))
    await ledger.append(session, [entry], now)
    return row


async def history(session: AsyncSession) -> list[RuleSet]:
    return list(
        (await session.execute(sa.select(RuleSet).order_by(RuleSet.version.desc()))).scalars()  # type: ignore[attr-defined]
    )
