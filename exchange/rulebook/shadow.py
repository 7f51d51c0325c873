"""Shadow rules: a candidate rule set judges every order on the side while the active set keeps
deciding. Where the two disagree the order is recorded, so an operator sees what the candidate
would do on live traffic before promoting it (it becomes the next version) or dropping it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.errors import InvalidTransition
from exchange.core.ids import new_id
from exchange.rulebook import trading
from exchange.rulebook.evaluate import Violation
from exchange.rulebook.load import decode_rulebook, rulebook_hash
from exchange.rulebook.model import Rulebook
from exchange.rulebook.schemas import DivergenceOut, RuleSetOut, ShadowOut, ShadowReport
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger
from exchange.tables import RuleShadow, ShadowDivergence

REPORT_MAX = 500
_decoded: dict[str, Rulebook] = {}


def _rulebook(row: RuleShadow) -> Rulebook:
    # Shadow sets are judged on every order: decode each one once per process.
    if row.hash not in _decoded:
        _decoded[row.hash] = decode_rulebook(row.files)
    return _decoded[row.hash]


RUNNING = sa.select(RuleShadow.id).where(RuleShadow.status == "shadowing")
"""Any shadow set being judged now (one at a time: `current` is it)."""


async def current(session: AsyncSession) -> RuleShadow | None:
    query = sa.select(RuleShadow).where(RuleShadow.status == "shadowing").order_by(RuleShadow.created_at.desc()).limit(1)  # type: ignore[attr-defined]
    return (await session.execute(query)).scalar_one_or_none()


async def start(session: AsyncSession, active: ActiveRules, given: Mapping[str, str], reason: str, actor_id: str, now: datetime) -> ShadowOut:
    from exchange.rulebook.service import candidate_files

    files = candidate_files(active, given)
    decode_rulebook(files)  # refused whole, naming file, key and reason, like an apply
    running = await current(session)
    if running is not None:
        running.status, running.decided_by, running.decided_at = "dropped", actor_id, now  # one shadow at a time: the new one replaces it
        session.add(running)
    row = RuleShadow(id=new_id("shd"), hash=rulebook_hash(files), files=dict(sorted(files.items())), reason=reason,
                     status="shadowing", judged=0, created_by=actor_id, created_at=now)
    session.add(row)
    await session.flush()
    return _out(row)


async def judge(
    session: AsyncSession, facts: trading.OrderFacts, active_violations: list[Violation], *, order_id: str, participant_id: str,
    listing_id: str, now: datetime,
) -> None:
    """Judge an order by the shadow set too, and record it when the two sets disagree."""
    row = await current(session)
    if row is None:
        return
    shadow_violations = trading.check_order(_rulebook(row), facts)
    await session.execute(sa.update(RuleShadow).where(RuleShadow.id == row.id).values(judged=RuleShadow.judged + 1))
    active_rules = sorted({v.rule for v in active_violations})
    if active_rules == sorted({v.rule for v in shadow_violations}):
        return
    session.add(ShadowDivergence(
        shadow_id=row.id, order_id=order_id, participant_id=participant_id, listing_id=listing_id,
        active_outcome="refused" if active_violations else "accepted", shadow_outcome="refused" if shadow_violations else "accepted",
        active_rules=active_rules, shadow_violations=[msgspec.to_builtins(v) for v in shadow_violations], at=now,
    ))


async def report(session: AsyncSession) -> ShadowReport:
    row = await current(session)
    if row is None:
        query = sa.select(RuleShadow).order_by(RuleShadow.created_at.desc()).limit(1)  # type: ignore[attr-defined]
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise InvalidTransition("No rule set has been put in shadow: PUT /v1/rules/shadow with the candidate files.")
    await session.refresh(row)
    rows = (await session.execute(
        sa.select(ShadowDivergence).where(ShadowDivergence.shadow_id == row.id).order_by(ShadowDivergence.id).limit(REPORT_MAX)  # type: ignore[arg-type]
    )).scalars()
    divergences = [DivergenceOut(order_id=d.order_id, participant_id=d.participant_id, listing_id=d.listing_id, active_outcome=d.active_outcome,
                                 shadow_outcome=d.shadow_outcome, active_rules=d.active_rules, shadow_violations=d.shadow_violations, at=d.at)
                   for d in rows]
    return ShadowReport(shadow=_out(row), divergences=divergences)


async def decide(
    session: AsyncSession, ledger: Ledger, active: ActiveRules, promote: bool, actor_id: str, now: datetime
) -> ShadowOut | RuleSetOut:
    row = await current(session)
    if row is None:
        raise InvalidTransition("No rule set is in shadow.")
    row.status, row.decided_by, row.decided_at = ("promoted" if promote else "dropped"), actor_id, now
    session.add(row)
    if not promote:
        await session.flush()
        return _out(row)
    from exchange.rulebook.service import apply

    return await apply(session, ledger, active, row.files, reason=f"promoted from shadow {row.id}: {row.reason}", actor_id=actor_id,
                       effective_at=None, now=now)


def _out(row: RuleShadow) -> ShadowOut:
    return ShadowOut(id=row.id, hash=row.hash, reason=row.reason, status=row.status, judged=row.judged, created_by=row.created_by,
                     created_at=row.created_at, decided_by=row.decided_by, decided_at=row.decided_at)

