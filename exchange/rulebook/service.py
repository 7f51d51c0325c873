"""Rule-set use cases: show, apply, dry-run. Validation errors name file, key and reason."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.errors import InvalidInput
from exchange.listings.impact import newly_failing_listings
from exchange.rulebook import store
from exchange.rulebook.load import decode_rulebook, rulebook_hash
from exchange.rulebook.schemas import DryRunReport, RuleSetHistory, RuleSetOut
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger
from exchange.tables import RuleSet


def candidate_files(active: ActiveRules, given: Mapping[str, str]) -> dict[str, str]:
    return {**active.files, **given}


def _out(row: RuleSet, active_version: int | None, *, with_files: bool) -> RuleSetOut:
    return RuleSetOut(
        version=row.version,
        hash=row.hash,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        effective_at=row.effective_at,
        active=row.version == active_version,
        files=dict(row.files) if with_files else None,
    )


async def show_active(session: AsyncSession, active: ActiveRules) -> RuleSetOut:
    row = await session.get(RuleSet, active.version)
    assert row is not None
    return _out(row, active.version, with_files=True)


async def history(session: AsyncSession, active: ActiveRules) -> RuleSetHistory:
    return RuleSetHistory(items=[_out(row, active.version, with_files=False) for row in await store.history(session)])


async def dry_run(session: AsyncSession, active: ActiveRules, given: Mapping[str, str], now: datetime) -> DryRunReport:
    from exchange.orders.impact import fee_changes, newly_refused_orders, replayed_orders

    files = candidate_files(active, given)
    candidate = decode_rulebook(files)  # raises RulebookInvalid naming file, key and reason
    return DryRunReport(
        hash=rulebook_hash(files),
        active_hash=active.hash,
        changed_files=sorted(name for name, text in files.items() if active.files.get(name) != text),
        listings=await newly_failing_listings(session, active.rulebook, candidate),
        orders=await newly_refused_orders(session, active.rulebook, candidate, now),
        replayed_orders=await replayed_orders(session, candidate, now),
        fees=await fee_changes(session, active.rulebook, candidate, now),
    )


async def apply(
    session: AsyncSession,
    ledger: Ledger,
    active: ActiveRules,
    given: Mapping[str, str],
    *,
    reason: str,
    actor_id: str,
    effective_at: datetime | None,
    now: datetime,
) -> RuleSetOut:
    if effective_at is not None and effective_at.tzinfo is None:
        raise InvalidInput(
            "effective_at: give a time zone (e.g. 2026-12-01T00:00:00+08:00)",
            errors=[{"field": "effective_at", "reason": "time zone required"}],
        )
    row = await store.store(
        session,
        ledger,
        candidate_files(active, given),
        reason=reason,
        actor_id=actor_id,
        effective_at=effective_at or now,
        now=now,
    )
    in_force = (effective_at or now) <= now
    return _out(row, row.version if in_force else active.version, with_files=False)


def report_json(report: DryRunReport) -> str:
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode()
