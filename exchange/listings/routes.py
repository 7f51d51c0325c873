"""HTTP for the catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from exchange.auth import Caller, require
from exchange.context import Exchange, IdempotencyKey, Unit
from exchange.core.money import AMOUNT_MAX
from exchange.listings import service
from exchange.listings.repository import Filters
from exchange.listings.schemas import (
    PLAN_KINDS,
    ApproveIn,
    Delivery,
    ListingHistory,
    ListingIn,
    ListingOut,
    ListingPage,
    ListingPatch,
    ListingStatus,
    OptionalReasonIn,
    ReasonIn,
    SortOrder,
)
from exchange.listings.search import parse_query
from exchange.listings.states import ListingAction
from exchange.settlement.certificates import CertificateOut

# Litestar leaves a falsy bound (ge=0) out of the document; schema_extra puts it back.
Price = Annotated[int | None, QueryParameter(ge=0, le=AMOUNT_MAX, schema_extra={"minimum": 0})]
PlanKind = Annotated[str | None, QueryParameter(pattern="^(" + "|".join(PLAN_KINDS) + ")$")]
Short = Annotated[str | None, QueryParameter(max_length=64)]


@post("/v1/listings", status_code=201, summary="Create a draft listing (vendor)")
async def create_listing(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[ListingIn], idempotency_key: IdempotencyKey = None
) -> Response[ListingOut]:
    async def action(unit: Unit, caller: Caller) -> ListingOut:
        return await service.create(unit.session, await unit.rules(), caller, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("vendor",))


@get("/v1/listings", summary="Search the catalogue")
async def search_listings(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    category: Short = None,
    grade: Short = None,
    delivery: FromQuery[Delivery | None] = None,
    vendor: Short = None,
    plan_kind: PlanKind = None,
    price_min: Price = None,
    price_max: Price = None,
    status: FromQuery[ListingStatus | None] = None,
    review: Annotated[str | None, QueryParameter(pattern="^pending$")] = None,
    sort: FromQuery[SortOrder | None] = None,
    cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=service.PAGE_SIZE_MAX)] = 20,
) -> ListingPage:
    query = parse_query(q) if q else None
    filters = Filters(
        query=query,
        category=category,
        grade=grade,
        delivery=delivery,
        vendor_id=vendor,
        plan_kind=plan_kind,
        price_min=price_min,
        price_max=price_max,
        status=status,
        in_review=review == "pending",
    )
    chosen = sort or (SortOrder.relevance if query is not None and not query.empty else SortOrder.newest)
    async with exchange.unit(request, write=False) as unit:
        catalogue_version = await unit.catalogue_version()  # before any listing is read
        return await service.search(
            lambda: unit.session, await unit.rules(), unit.caller, filters, sort=chosen, cursor=cursor, limit=limit,
            cache=exchange.search_cache, catalogue_version=catalogue_version,
        )


@get("/v1/listings/{listing_id:str}", summary="One listing")
async def get_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> ListingOut:
    async with exchange.unit(request, write=False) as unit:
        return await service.get(unit.session, await unit.rules(), unit.caller, listing_id)


@get("/v1/listings/{listing_id:str}/history", summary="Every transition of a listing")
async def listing_history(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> ListingHistory:
    async with exchange.unit(request, write=False) as unit:
        return await service.history(unit.session, unit.caller, listing_id)


@get("/v1/listings/{listing_id:str}/certificate", summary="The signed registration certificate (数据产品登记凭证) of the approved revision")
async def listing_certificate(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> CertificateOut:
    async with exchange.unit(request, write=False) as unit:
        return await service.certificate(unit.session, unit.caller, listing_id)


@patch("/v1/listings/{listing_id:str}", summary="Edit a listing (its vendor); a listed one gets a new revision")
async def update_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[ListingPatch]) -> ListingOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "vendor")
        return await service.update(unit.session, await unit.rules(), caller, listing_id, data, unit.now)


@post("/v1/listings/{listing_id:str}/submit", status_code=200, summary="Submit for review (vendor)")
async def submit_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> ListingOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "vendor")
        return await service.submit(unit.session, await unit.rules(), caller, listing_id, unit.now)


@post("/v1/listings/{listing_id:str}/approve", status_code=200, summary="Approve with the checklist (operator)")
async def approve_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[ApproveIn]) -> ListingOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await service.approve(unit.session, exchange.ledger, await unit.rules(), caller, listing_id, data, unit.now)


@post("/v1/listings/{listing_id:str}/reject", status_code=200, summary="Reject with a reason (operator)")
async def reject_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[ReasonIn]) -> ListingOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator")
        return await service.reject(unit.session, await unit.rules(), caller, listing_id, data.reason, unit.now)


async def _change(request: Request[Any, Any, Any], exchange: Exchange, listing_id: str, action: ListingAction, reason: str | None) -> ListingOut:
    async with exchange.unit(request, write=True) as unit:
        caller = require(unit.caller, "operator", "vendor")
        return await service.change_status(unit.session, await unit.rules(), caller, listing_id, action, reason, unit.now)


@post("/v1/listings/{listing_id:str}/suspend", status_code=200, summary="Suspend trading (operator)")
async def suspend_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[ReasonIn]) -> ListingOut:
    return await _change(request, exchange, listing_id, ListingAction.suspend, data.reason)


@post("/v1/listings/{listing_id:str}/resume", status_code=200, summary="Resume trading (operator)")
async def resume_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[OptionalReasonIn | None] = None) -> ListingOut:
    return await _change(request, exchange, listing_id, ListingAction.resume, data.reason if data else None)


@post("/v1/listings/{listing_id:str}/delist", status_code=200, summary="Delist (operator, or its vendor)")
async def delist_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[OptionalReasonIn | None] = None) -> ListingOut:
    return await _change(request, exchange, listing_id, ListingAction.delist, data.reason if data else None)


ROUTES = [
    create_listing,
    search_listings,
    get_listing,
    listing_history,
    listing_certificate,
    update_listing,
    submit_listing,
    approve_listing,
    reject_listing,
    suspend_listing,
    resume_listing,
    delist_listing,
]
