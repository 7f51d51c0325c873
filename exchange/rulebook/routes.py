"""HTTP for the rulebook: read it, dry-run a candidate, apply it."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from exchange.auth import require
from exchange.context import Exchange
from exchange.rulebook import service
from exchange.rulebook.schemas import DryRunReport, RulesApplyIn, RulesDryRunIn, RuleSetHistory, RuleSetOut


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


ROUTES = [get_rules, rules_history, dry_run_rules, apply_rules]
