"""HTTP for the rulebook: read it, dry-run a candidate, apply it."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from exchange.auth import require
from exchange.context import Exchange
from exchange.rulebook import service, shadow
from exchange.rulebook.schemas import (
    DryRunReport,
    RulesApplyIn,
    RulesDryRunIn,
    RuleSetHistory,
    RuleSetOut,
    ShadowIn,
    ShadowOut,
    ShadowReport,
)


@get("/v1/rules", summary="The rule set in force, with its files")
async def get_rules(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> RuleSetOut:
    async with exchange.unit(request, write=False) as unit:
        return await service.show_active(unit.session, await unit.rules())


@get("/v1/rules/history", summary="Every rule-set version")
async def rules_history(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> RuleSetHistory:
    async with exchange.unit(request, write=False) as unit:
        return await service.history(unit.session, await unit.rules())


@post("/v1/rules/dry-run", status_code=200, summary="What a candidate rule set would change (operator, regulator)")
async def dry_run_rules(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[RulesDryRunIn]) -> DryRunReport:
    async with exchange.unit(request, write=False) as unit:
        require(unit.caller, "operator", "regulator")
        return await service.dry_run(unit.session, await unit.rules(), data.files, unit.now)


@put("/v1/rules", status_code=200, summary="Validate and switch to a new rule set (operator)")
async def apply_rules(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[RulesApplyIn]) -> RuleSetOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await service.apply(
            unit.session,
            exchange.ledger,
            await unit.rules(),
            data.files,
            reason=data.reason,
            actor_id=caller.id,
            effective_at=data.effective_at,
            now=unit.now,
        )


@put("/v1/rules/shadow", status_code=200, summary="Put a candidate rule set in shadow: it judges live orders on the side (operator)")
async def start_shadow(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[ShadowIn]) -> ShadowOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await shadow.start(unit.session, await unit.rules(), data.files, data.reason, caller.id, unit.now)


@get("/v1/rules/shadow/report", summary="The shadow set and the orders it judged otherwise (operator, regulator)")
async def shadow_report(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> ShadowReport:
    async with exchange.unit(request, write=False) as unit:
        require(unit.caller, "operator", "regulator")
        return await shadow.report(unit.session)


@post("/v1/rules/shadow/promote", status_code=200, summary="Make the shadow set the next active version (operator)")
async def promote_shadow(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> RuleSetOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await shadow.decide(unit.session, exchange.ledger, await unit.rules(), True, caller.id, unit.now)  # type: ignore[return-value]


@post("/v1/rules/shadow/drop", status_code=200, summary="Stop shadowing without applying (operator)")
async def drop_shadow(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> ShadowOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await shadow.decide(unit.session, exchange.ledger, await unit.rules(), False, caller.id, unit.now)  # type: ignore[return-value]


ROUTES = [
    start_shadow,
    shadow_report,
    promote_shadow,
    drop_shadow,get_rules, rules_history, dry_run_rules, apply_rules]
