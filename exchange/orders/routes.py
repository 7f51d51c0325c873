"""HTTP for orders, books, auctions and contracts."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from exchange.auth import Caller, require
from exchange.context import IDEMPOTENCY_KEY_MAX, Exchange, IdempotencyKey, Unit, fingerprint
from exchange.core.errors import RuleViolated
from exchange.core.ids import id_pattern
from exchange.orders import amendments, auctions, contracts, explaining, negotiations, notices, postpaid, renewals, service, surveillance
from exchange.orders.desk import DESK_ANSWER, Cancel, Ticket
from exchange.orders.schemas import (
    AcceptIn,
    AmendmentIn,
    AmendmentOut,
    AuctionIn,
    AuctionOut,
    BillOut,
    BillPage,
    BillResolveIn,
    BookOut,
    CloseIn,
    ConcentrationOut,
    ContractOut,
    ContractPage,
    DisputeIn,
    EntitlementOut,
    ExplainOut,
    HaltIn,
    NegotiationIn,
    NegotiationOut,
    NegotiationPage,
    NoticeIn,
    NoticeOut,
    NoticePage,
    OfferIn,
    OrderIn,
    OrderOut,
    OrderPage,
    ResolveIn,
    RevenueIn,
    TerminateIn,
    TradePage,
    UsageAccepted,
    UsageIn,
)
from exchange.rulebook import trading

# A cursor is the last id of the page before: anything else is refused, not read as a position.
OrderCursor = Annotated[str | None, QueryParameter(pattern=id_pattern("ord"))]
ContractCursor = Annotated[str | None, QueryParameter(pattern=id_pattern("ctr"))]
Limit = Annotated[int, QueryParameter(ge=1, le=service.PAGE_MAX)]
OrderStatus = Annotated[str | None, QueryParameter(pattern="^(open|filled|cancelled|expired|rejected|won|lost|pending_approval|declined|lapsed)$")]


_NOT_ASKED = object()


@post("/v1/orders", status_code=201, summary="Place an order or a bid; fills, contracts and holds follow the trading rules")
async def place_order(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[OrderIn], idempotency_key: IdempotencyKey = None
) -> Response[OrderOut]:
    async def action(unit: Unit, caller: Caller) -> OrderOut:
        return await service.place(unit.session, exchange.ledger, await unit.rules(), caller, data, unit.now)

    if exchange.desk is not None and (idempotency_key is None or 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX):
        # Quota orders arriving together are placed together; the desk leaves the rest to us.
        answer = request.scope.pop(DESK_ANSWER, _NOT_ASKED)  # type: ignore[misc]
        if answer is _NOT_ASKED:  # the order entry path (exchange/orders/entry.py) did not ask
            answer = await exchange.desk.place(Ticket(request.headers.get("authorization"), idempotency_key, await fingerprint(request), data))
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
    try:
        return await exchange.create(request, idempotency_key, action, roles=("buyer", "vendor"))
    except RuleViolated as refused:
        # The refusal is kept with the rules that made it, in its own transaction.
        async with exchange.unit(request, write=True) as unit:
            if unit.caller is not None:
                await service.record_rejection(unit.session, unit.caller, data, refused, unit.now)
        raise


@get("/v1/orders", summary="Your orders (operators and regulators: all)")
async def list_orders(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    status: OrderStatus = None,
    listing_id: Annotated[str | None, QueryParameter(max_length=40)] = None,
    cursor: OrderCursor = None,
    limit: Limit = 50,
) -> OrderPage:
    async with exchange.unit(request, write=False) as unit:
        return await service.page(unit.session, require(unit.caller), status, listing_id, cursor, limit)


@get("/v1/orders/{order_id:str}", summary="One order with its fills and contracts")
async def get_order(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], order_id: FromPath[str]) -> OrderOut:
    async with exchange.unit(request, write=False) as unit:
        return await service.get(unit.session, require(unit.caller), order_id)


@delete("/v1/orders/{order_id:str}", status_code=200, summary="Cancel an open order or bid: its hold goes back")
async def cancel_order(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], order_id: FromPath[str]) -> OrderOut:
    if exchange.desk is not None:
        answer = request.scope.pop(DESK_ANSWER, _NOT_ASKED)  # type: ignore[misc]
        if answer is _NOT_ASKED:
            answer = await exchange.desk.place(Cancel(request.headers.get("authorization"), order_id))
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer  # type: ignore[no-any-return]
    return await exchange.write(
        request, lambda unit: service.cancel(unit.session, exchange.ledger, require(unit.caller, "buyer", "vendor", "operator"), order_id, unit.now)
    )


@get("/v1/orders/{order_id:str}/explain", summary="Every rule that judged an order: inputs, outcome, rule-set hash")
async def explain_order(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], order_id: FromPath[str]) -> ExplainOut:
    async with exchange.unit(request, write=False) as unit:
        return await explaining.order(unit.session, exchange.rule_cache, require(unit.caller), order_id)


@get("/v1/listings/{listing_id:str}/explain", summary="Every rule that judged a listing's latest review")
async def explain_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> ExplainOut:
    async with exchange.unit(request, write=False) as unit:
        return await explaining.listing_review(unit.session, exchange.rule_cache, require(unit.caller), listing_id)


@get("/v1/contracts/{contract_id:str}/explain", summary="How a contract's fees were set: schedule, tier, bps, minimum, rounding")
async def explain_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> ExplainOut:
    async with exchange.unit(request, write=False) as unit:
        return await explaining.contract_fees(unit.session, exchange.rule_cache, require(unit.caller), contract_id)


@get("/v1/surveillance/concentration", summary="Who holds how much of each category's licences (regulator, operator)")
async def concentration(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange],
    category: Annotated[str | None, QueryParameter(max_length=64)] = None,
    days: Annotated[int | None, QueryParameter(ge=1, le=3660)] = None,
) -> ConcentrationOut:
    async with exchange.unit(request, write=False) as unit:
        require(unit.caller, "regulator", "operator")
        return await surveillance.report(unit.session, await unit.rules(), category, days, unit.now)


@post("/v1/orders/{order_id:str}/approve", status_code=200, summary="Approve a buy that waits for the vendor: the contract is formed")
async def approve_order(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], order_id: FromPath[str]) -> OrderOut:
    async def action(unit: Unit) -> OrderOut:
        return await service.decide(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), order_id, True, None, unit.now)

    return await exchange.write(request, action)


@post("/v1/orders/{order_id:str}/decline", status_code=200, summary="Decline a buy that waits for the vendor: the buyer's money is released")
async def decline_order(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], order_id: FromPath[str], data: JSONBody[CloseIn]) -> OrderOut:
    async def action(unit: Unit) -> OrderOut:
        return await service.decide(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), order_id, False, data.reason, unit.now)

    return await exchange.write(request, action)


@get("/v1/approvals", summary="Buys of your listings waiting for your approval (vendor)")
async def pending_approvals(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> OrderPage:
    async with exchange.unit(request, write=False) as unit:
        return await service.awaiting_approval(unit.session, require(unit.caller, "vendor"))


@get("/v1/listings/{listing_id:str}/book", summary="Depth of a quota book by price level (public)")
async def listing_book(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], levels: Annotated[int, QueryParameter(ge=1, le=100)] = 10
) -> BookOut:
    async with exchange.unit(request, write=False) as unit:
        return await service.book_out(unit.session, await unit.rules(), listing_id, levels, unit.now)


@get("/v1/listings/{listing_id:str}/trades", summary="Recent trades of a listing (public)")
async def listing_trades(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], limit: Limit = 50
) -> TradePage:
    async with exchange.unit(request, write=False) as unit:
        return await service.trades(unit.session, listing_id, limit)


@post("/v1/listings/{listing_id:str}/book/halt", status_code=200, summary="Halt trading in a listing (operator)")
async def halt_book(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[HaltIn]) -> BookOut:
    async with exchange.unit(request, write=True) as unit:
        return await service.halt(unit.session, require(unit.caller), listing_id, data.reason, unit.now, halted=True)


@post("/v1/listings/{listing_id:str}/book/resume", status_code=200, summary="Resume trading in a listing (operator)")
async def resume_book(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> BookOut:
    async with exchange.unit(request, write=True) as unit:
        return await service.halt(unit.session, require(unit.caller), listing_id, None, unit.now, halted=False)


@post("/v1/auctions", status_code=201, summary="Open a sealed-bid auction of an auction plan (its vendor)")
async def open_auction(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[AuctionIn], idempotency_key: IdempotencyKey = None
) -> Response[AuctionOut]:
    async def action(unit: Unit, caller: Caller) -> AuctionOut:
        return await auctions.open_auction(unit.session, await unit.rules(), caller, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("vendor",))


@get("/v1/auctions/{auction_id:str}", summary="An auction: bids stay sealed until it closes (public)")
async def get_auction(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], auction_id: FromPath[str]) -> AuctionOut:
    async with exchange.unit(request, write=False) as unit:
        return await auctions.get(unit.session, auction_id)


@post("/v1/auctions/{auction_id:str}/close", status_code=200, summary="Clear an auction whose close time has passed (vendor, operator)")
async def close_auction(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], auction_id: FromPath[str]) -> AuctionOut:
    async with exchange.unit(request, write=True) as unit:
        return await auctions.close(unit.session, exchange.ledger, await unit.rules(), auction_id, unit.now, require(unit.caller))


@get("/v1/contracts", summary="Your contracts (operators and regulators: all)")
async def list_contracts(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    status: Annotated[str | None, QueryParameter(pattern="^(awaiting_delivery|disputed|settled|refunded|postpaid)$")] = None,
    cursor: ContractCursor = None,
    limit: Limit = 50,
) -> ContractPage:
    async with exchange.unit(request, write=False) as unit:
        return await contracts.page(unit.session, require(unit.caller), status, cursor, limit)


@get("/v1/contracts/{contract_id:str}", summary="A signed contract, visible to its parties")
async def get_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> ContractOut:
    async with exchange.unit(request, write=False) as unit:
        caller = require(unit.caller)
        return contracts.to_out(contracts.seen(caller, await unit.rows(contracts.BY_ID, {"contract_id": contract_id}), contract_id))


@post("/v1/contracts/{contract_id:str}/confirm", status_code=200, summary="The buyer confirms delivery: escrow goes to the vendor, less fees")
async def confirm_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> ContractOut:
    return await exchange.write(request, lambda unit: contracts.confirm(unit.session, exchange.ledger, require(unit.caller), contract_id, unit.now))


@post("/v1/contracts/{contract_id:str}/dispute", status_code=200, summary="Dispute a contract: its escrow is frozen until an operator resolves it")
async def dispute_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[DisputeIn]) -> ContractOut:
    async with exchange.unit(request, write=True) as unit:
        window = trading.settlement_windows((await unit.rules()).rulebook)[2]
        return await contracts.dispute(unit.session, require(unit.caller), contract_id, data.reason, window, unit.now)


@post("/v1/contracts/{contract_id:str}/resolve", status_code=200, summary="Resolve a dispute as release or refund (operator)")
async def resolve_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[ResolveIn]) -> ContractOut:
    return await exchange.write(
        request, lambda unit: contracts.resolve(unit.session, exchange.ledger, require(unit.caller), contract_id, data.outcome, data.reason, unit.now)
    )


@post("/v1/contracts/{contract_id:str}/token", status_code=200, summary="A fresh short-lived entitlement token (EdDSA JWT) for the buyer")
async def refresh_token(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> EntitlementOut:
    async with exchange.unit(request, write=True) as unit:
        return await contracts.token(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), contract_id, unit.now)


@get("/v1/contracts/{contract_id:str}/entitlement", summary="The buyer's entitlement token; the same as POST …/token")
async def contract_entitlement(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> EntitlementOut:
    async with exchange.unit(request, write=True) as unit:
        return await contracts.token(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), contract_id, unit.now)


@post("/v1/contracts/{contract_id:str}/terminate", status_code=200, summary="End a contract early where its licence allows (operators always)")
async def terminate_contract(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[TerminateIn]) -> ContractOut:
    async with exchange.unit(request, write=True) as unit:
        return await contracts.terminate(unit.session, exchange.ledger, require(unit.caller), contract_id, data.reason, unit.now)


@post("/v1/contracts/{contract_id:str}/cancel-renewal", status_code=200, summary="Stop a subscription from renewing when its term ends (buyer)")
async def cancel_renewal(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> ContractOut:
    async with exchange.unit(request, write=True) as unit:
        return await renewals.cancel(unit.session, require(unit.caller), contract_id, unit.now)


@post("/v1/contracts/{contract_id:str}/usage", status_code=200, summary="Report usage of a metered contract (its vendor); each batch id counts once")
async def report_usage(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[UsageIn]) -> UsageAccepted:
    async with exchange.unit(request, write=True) as unit:
        return await postpaid.report_usage(unit.session, await unit.rules(), require(unit.caller), contract_id, data, unit.now)


@post("/v1/contracts/{contract_id:str}/revenue", status_code=201, summary="Report a month's revenue on a revenue-share contract (its buyer)")
async def report_revenue(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[RevenueIn]) -> BillOut:
    async with exchange.unit(request, write=True) as unit:
        return await postpaid.report_revenue(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), contract_id, data, unit.now)


@get("/v1/contracts/{contract_id:str}/bills", summary="A postpaid contract's bills (its parties)")
async def contract_bills(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> BillPage:
    async with exchange.unit(request, write=False) as unit:
        return await postpaid.bills(unit.session, require(unit.caller), contract_id)


@post("/v1/contracts/{contract_id:str}/amendments", status_code=201, summary="Propose new licence terms (a party)")
async def propose_amendment(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: JSONBody[AmendmentIn], idempotency_key: IdempotencyKey = None
) -> Response[AmendmentOut]:
    async def action(unit: Unit, caller: Caller) -> AmendmentOut:
        return await amendments.propose(unit.session, caller, contract_id, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("buyer", "vendor"))


@get("/v1/contracts/{contract_id:str}/amendments", summary="A contract's amendments (its parties)")
async def list_amendments(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str]) -> list[AmendmentOut]:
    async with exchange.unit(request, write=False) as unit:
        return await amendments.of_contract(unit.session, require(unit.caller), contract_id)


@post("/v1/contracts/{contract_id:str}/amendments/{amendment_id:str}/accept", status_code=200, summary="Accept: a new signed contract amends this one")
async def accept_amendment(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], amendment_id: FromPath[str]) -> AmendmentOut:
    async with exchange.unit(request, write=True) as unit:
        return await amendments.accept(unit.session, exchange.ledger, require(unit.caller), contract_id, amendment_id, unit.now)


@post("/v1/contracts/{contract_id:str}/amendments/{amendment_id:str}/decline", status_code=200, summary="Decline a proposed amendment")
async def decline_amendment(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], amendment_id: FromPath[str]) -> AmendmentOut:
    async with exchange.unit(request, write=True) as unit:
        return await amendments.decline(unit.session, require(unit.caller), contract_id, amendment_id, unit.now)


@post("/v1/bills/{bill_id:str}/dispute", status_code=200, summary="Dispute a postpaid bill within the dispute window (a party)")
async def dispute_bill(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], bill_id: FromPath[str], data: JSONBody[DisputeIn]) -> BillOut:
    async with exchange.unit(request, write=True) as unit:
        return await postpaid.dispute_bill(unit.session, await unit.rules(), require(unit.caller), bill_id, data.reason, unit.now)


@post("/v1/bills/{bill_id:str}/resolve", status_code=200, summary="Uphold or refund a disputed bill (operator)")
async def resolve_bill(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], bill_id: FromPath[str], data: JSONBody[BillResolveIn]) -> BillOut:
    async with exchange.unit(request, write=True) as unit:
        return await postpaid.resolve_bill(unit.session, exchange.ledger, require(unit.caller), bill_id, data.outcome, data.reason, unit.now)


@post("/v1/listings/{listing_id:str}/notices", status_code=201, summary="Notify the holders of a listing's contracts (its vendor)")
async def post_notice(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: JSONBody[NoticeIn], idempotency_key: IdempotencyKey = None
) -> Response[NoticeOut]:
    async def action(unit: Unit, caller: Caller) -> NoticeOut:
        return await notices.post(unit.session, caller, listing_id, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("vendor",))


@get("/v1/listings/{listing_id:str}/notices", summary="A listing's notices (its holders, vendor, operators, regulators)")
async def listing_notices(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> NoticePage:
    async with exchange.unit(request, write=False) as unit:
        return await notices.of_listing(unit.session, require(unit.caller), listing_id)


@get("/v1/notices", summary="Notices of every listing you hold an active contract of")
async def my_notices(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> NoticePage:
    async with exchange.unit(request, write=False) as unit:
        return await notices.mine(unit.session, require(unit.caller))


@post("/v1/negotiations", status_code=201, summary="Ask a vendor for a quote on a negotiated plan (buyer)")
async def request_quote(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: JSONBody[NegotiationIn], idempotency_key: IdempotencyKey = None
) -> Response[NegotiationOut]:
    async def action(unit: Unit, caller: Caller) -> NegotiationOut:
        return await negotiations.request(unit.session, exchange.ledger, await unit.rules(), caller, data, unit.now)

    return await exchange.create(request, idempotency_key, action, roles=("buyer",))


@get("/v1/negotiations", summary="Your negotiations")
async def list_negotiations(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange],
    status: Annotated[str | None, QueryParameter(pattern="^(open|agreed|closed)$")] = None,
) -> NegotiationPage:
    async with exchange.unit(request, write=False) as unit:
        return await negotiations.page(unit.session, require(unit.caller), status)


@get("/v1/negotiations/{negotiation_id:str}", summary="A negotiation with every signed step (its parties)")
async def get_negotiation(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], negotiation_id: FromPath[str]) -> NegotiationOut:
    async with exchange.unit(request, write=False) as unit:
        return await negotiations.get(unit.session, require(unit.caller), negotiation_id)


@post("/v1/negotiations/{negotiation_id:str}/offers", status_code=201, summary="An offer (vendor) or counter-offer (buyer) with an expiry")
async def make_offer(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], negotiation_id: FromPath[str], data: JSONBody[OfferIn]) -> NegotiationOut:
    async with exchange.unit(request, write=True) as unit:
        return await negotiations.propose(unit.session, exchange.ledger, require(unit.caller), negotiation_id, data, unit.now)


@post("/v1/negotiations/{negotiation_id:str}/accept", status_code=200, summary="Accept the other party's latest proposal: the contract is formed")
async def accept_offer(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], negotiation_id: FromPath[str], data: JSONBody[AcceptIn]) -> NegotiationOut:
    async with exchange.unit(request, write=True) as unit:
        return await negotiations.accept(unit.session, exchange.ledger, await unit.rules(), require(unit.caller), negotiation_id, data.seq, unit.now)


@post("/v1/negotiations/{negotiation_id:str}/close", status_code=200, summary="Decline or withdraw: the negotiation ends without a contract")
async def close_negotiation(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], negotiation_id: FromPath[str], data: JSONBody[CloseIn]) -> NegotiationOut:
    async with exchange.unit(request, write=True) as unit:
        return await negotiations.close(unit.session, exchange.ledger, require(unit.caller), negotiation_id, data.reason, unit.now)


ROUTES = [
    concentration,
    explain_order,
    explain_listing,
    explain_contract,
    approve_order,
    decline_order,
    pending_approvals,
    request_quote,
    list_negotiations,
    get_negotiation,
    make_offer,
    accept_offer,
    close_negotiation,
    place_order,
    list_orders,
    get_order,
    cancel_order,
    listing_book,
    listing_trades,
    halt_book,
    resume_book,
    open_auction,
    get_auction,
    close_auction,
    list_contracts,
    get_contract,
    confirm_contract,
    dispute_contract,
    resolve_contract,
    contract_entitlement,
    refresh_token,
    terminate_contract,
    cancel_renewal,
    propose_amendment,
    list_amendments,
    accept_amendment,
    decline_amendment,
    report_usage,
    report_revenue,
    contract_bills,
    dispute_bill,
    resolve_bill,
    post_notice,
    listing_notices,
    my_notices,
]
