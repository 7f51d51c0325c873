"""The pages: the same use cases as the API, rendered on the server. A browser signs in with its
API key once; the cookie then holds a random session id (HttpOnly, SameSite=Lax), and every form
carries the session's CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller, authenticate
from exchange.context import Exchange
from exchange.core.errors import ExchangeError, Forbidden, NotAuthenticated, NotFound
from exchange.listings import service as listings
from exchange.listings.repository import Filters
from exchange.listings.search import parse_query
from exchange.orders import contracts
from exchange.orders import service as orders
from exchange.orders.schemas import OrderIn
from exchange.rulebook import store
from exchange.settlement import service as accounts
from exchange.tables import Auction, Participant, WebSession
from exchange.web.i18n import choose, translator

SESSION_COOKIE = "exs"
LANG_COOKIE = "lang"
SESSION_HOURS = 12
PAGE = 20


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Page:
    """What every page needs: the language, the signed-in participant and its CSRF token."""

    def __init__(self, lang: str, caller: Caller | None, csrf: str | None) -> None:
        self.lang = lang
        self.t = translator(lang)
        self.caller = caller
        self.csrf = csrf

    def render(self, name: str, **context: Any) -> Template:
        return Template(template_name=name, context={"page": self, "t": self.t, "lang": self.lang, "caller": self.caller, "csrf": self.csrf, **context})


async def _page(session: AsyncSession, request: Request[Any, Any, Any], exchange: Exchange) -> Page:
    lang = choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return Page(lang, None, None)
    row = await session.get(WebSession, _digest(token))
    if row is None or row.expires_at <= exchange.clock():
        return Page(lang, None, None)
    participant = await session.get(Participant, row.participant_id)
    if participant is None or participant.status != "active":
        return Page(lang, None, None)
    caller = Caller(id=participant.id, name=participant.name, roles=frozenset(participant.roles),
                    qualifications=frozenset(participant.qualifications), sponsor_id=participant.sponsor_id)
    return Page(lang, caller, row.csrf)


def _check_csrf(page: Page, form: dict[str, Any]) -> Caller:
    if page.caller is None or page.csrf is None:
        raise NotAuthenticated("Sign in first.")
    if not hmac.compare_digest(str(form.get("csrf", "")), page.csrf):
        raise Forbidden("The form's CSRF token is missing or stale: reload the page.")
    return page.caller


def yuan(fen: int | None) -> str:
    return "—" if fen is None else f"¥{fen / 100:,.2f}" if fen % 100 else f"¥{fen // 100:,}"


@get("/", include_in_schema=False)
async def catalogue(
    request: Request[Any, Any, Any],
    exchange: NamedDependency[Exchange],
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    category: Annotated[str | None, QueryParameter(max_length=64)] = None,
    grade: Annotated[str | None, QueryParameter(max_length=64)] = None,
    plan_kind: Annotated[str | None, QueryParameter(max_length=16)] = None,
    cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
) -> Template:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        query = parse_query(q) if q else None
        filters = Filters(query=query, category=category or None, grade=grade or None, plan_kind=plan_kind or None)
        sort = "relevance" if query is not None and not query.empty else "newest"
        found = await listings.search(session, rules, page.caller, filters, sort=sort, cursor=cursor, limit=PAGE)
        catalogue_rules = rules.rulebook.catalogue
    return page.render("catalogue.html", results=found, q=q or "", category=category or "", grade=grade or "", plan_kind=plan_kind or "",
                       categories=catalogue_rules.categories, grades=catalogue_rules.grades, yuan=yuan)


@get("/listings/{listing_id:str}", include_in_schema=False)
async def listing_page(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str],
    error: Annotated[str | None, QueryParameter(max_length=400)] = None,
) -> Template:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        listing = await listings.get(session, rules, page.caller, listing_id)
        book = trades = None
        plans = [msgspec.to_builtins(plan) for plan in listing.plans]
        if any(plan["kind"] == "quota" for plan in plans) and listing.status == "listed":
            book = await orders.book_out(session, rules, listing_id, 10, exchange.clock())
            trades = await orders.trades(session, listing_id, 20)
        auction_rows = list((await session.execute(sa.select(Auction).where(Auction.listing_id == listing_id).order_by(Auction.created_at.desc()).limit(3))).scalars())  # type: ignore[attr-defined]
        vendor = await session.get(Participant, listing.vendor_id)
    return page.render("listing.html", listing=listing, plans=plans, book=book, trades=trades, auctions=auction_rows,
                       vendor_name=vendor.name if vendor else listing.vendor_id, yuan=yuan, request_error=error)


@get("/listings/{listing_id:str}/market", include_in_schema=False)
async def market_fragment(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str]) -> Template:
    """The book and recent trades, re-fetched by the listing page every few seconds."""
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        book = await orders.book_out(session, rules, listing_id, 10, exchange.clock())
        trades = await orders.trades(session, listing_id, 20)
    return page.render("market.html", book=book, trades=trades, yuan=yuan)


@post("/listings/{listing_id:str}/buy", include_in_schema=False, status_code=303)
async def buy(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async def once() -> Response[Any]:
        async with exchange.db.write() as session:
            page = await _page(session, request, exchange)
            caller = _check_csrf(page, data)
            rules = await store.active(session, exchange.rule_cache, exchange.clock())
            body = OrderIn(listing_id=listing_id, plan_id=str(data.get("plan_id", "")), purpose=str(data.get("purpose") or "") or None)
            try:
                placed = await orders.place(session, exchange.ledger, rules, caller, body, exchange.clock())
            except ExchangeError as error:
                await session.rollback()
                return Redirect(f"/listings/{listing_id}?error={error.detail[:300]}")
        return Redirect(f"/account?bought={placed.id}")

    return await exchange.retrying(once)


@get("/signin", include_in_schema=False)
async def signin_form(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], error: Annotated[bool, QueryParameter()] = False
) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
    # Double-submit token for the sign-in form itself: the session does not exist yet.
    token = request.cookies.get("signin_csrf") or secrets.token_urlsafe(24)
    response = page.render("signin.html", signin_csrf=token, error=error)
    response.cookies.append(Cookie(key="signin_csrf", value=token, httponly=True, samesite="strict", path="/signin"))
    return response


@post("/signin", include_in_schema=False, status_code=303)
async def signin(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    expected = request.cookies.get("signin_csrf", "")
    if not expected or not hmac.compare_digest(str(data.get("csrf", "")), expected):
        raise Forbidden("The sign-in form's CSRF token is missing or stale: reload the page.")
    async with exchange.db.write() as session:
        try:
            caller = await authenticate(session, f"Bearer {str(data.get('api_key', '')).strip()}")
        except ExchangeError:
            caller = None
        if caller is None:
            return Redirect("/signin?error=true")
        token = secrets.token_urlsafe(32)
        now = exchange.clock()
        session.add(WebSession(id_hash=_digest(token), participant_id=caller.id, csrf=secrets.token_urlsafe(24),
                               created_at=now, expires_at=now + timedelta(hours=SESSION_HOURS)))
    response = Redirect("/account")
    secure = request.url.scheme == "https"
    response.cookies.append(Cookie(key=SESSION_COOKIE, value=token, httponly=True, samesite="lax", secure=secure, path="/",
                                   max_age=SESSION_HOURS * 3600))
    return response


@post("/signout", include_in_schema=False, status_code=303)
async def signout(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        _check_csrf(page, data)
        await session.execute(sa.delete(WebSession).where(WebSession.id_hash == _digest(request.cookies.get(SESSION_COOKIE, ""))))
    response = Redirect("/")
    response.cookies.append(Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/"))
    return response


@get("/lang/{lang:str}", include_in_schema=False)
async def set_language(request: Request[Any, Any, Any], lang: FromPath[str]) -> Response[Any]:
    back = request.headers.get("referer") or "/"
    response = Redirect(back if back.startswith(str(request.base_url)) or back.startswith("/") else "/")
    response.cookies.append(Cookie(key=LANG_COOKIE, value="en" if lang == "en" else "zh", samesite="lax", path="/", max_age=365 * 86400))
    return response


@get("/account", include_in_schema=False)
async def account(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], bought: Annotated[str | None, QueryParameter(max_length=40)] = None
) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        balances = await accounts.balances(session, page.caller.id)
        my_orders = await orders.page(session, page.caller, None, None, None, PAGE)
        my_contracts = await contracts.page(session, page.caller, None, None, PAGE)
    return page.render("account.html", balances=balances.balances, orders=my_orders.items, contracts=my_contracts.items, bought=bought, yuan=yuan)


@post("/contracts/{contract_id:str}/token", include_in_schema=False)
async def contract_token(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], contract_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]) -> Template:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        issued = await contracts.token(session, exchange.ledger, rules, caller, contract_id, exchange.clock())
    return page.render("token.html", token=issued, contract_id=contract_id)


@get("/ledger", include_in_schema=False)
async def ledger_page(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> Template:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        head = await exchange.ledger.latest_head(session)
        size = await exchange.ledger.size(session)
        entries: list[dict[str, Any]] = []
        if page.caller is not None:
            entries = await accounts.entries(session, page.caller, max(0, size - 200), size)
            entries.reverse()
    return page.render("ledger.html", head=head, size=size, entries=entries[:50])


@get("/ledger/entries/{index:int}", include_in_schema=False)
async def ledger_entry(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], index: FromPath[int]) -> dict[str, Any]:
    """One entry for the in-browser verifier, if the signed-in participant may see it."""
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            raise NotAuthenticated("Sign in to read ledger entries.")
        found = await accounts.entries(session, page.caller, index, index + 1)
    if not found:
        raise NotFound(f"No entry {index} you may read.")
    return found[0]


ROUTES = [catalogue, listing_page, market_fragment, buy, signin_form, signin, signout, set_language, account, contract_token, ledger_page, ledger_entry]
