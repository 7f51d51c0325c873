"""The vendor's and the operator's pages: listings with their review history and rule failures,
a form to create one; the review queue; the rules page with a readable dry-run before applying;
book halts. Every form posts its session's CSRF token."""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, MultipartBody, QueryParameter, URLEncodedBody
from litestar.response import Redirect

from exchange.context import Exchange
from exchange.core.errors import ExchangeError, Forbidden, NotAuthenticated, RuleViolated
from exchange.listings import service as listings
from exchange.listings.repository import Filters
from exchange.listings.schemas import ApproveIn, ListingIn
from exchange.orders import explaining
from exchange.orders import service as orders
from exchange.rulebook import service as rulebook
from exchange.rulebook import store
from exchange.tables import Contract
from exchange.web.routes import Page, _check_csrf, _page, yuan

DELIVERIES = ("api", "file", "report", "compute")


def _need(page: Page, role: str) -> None:
    if page.caller is None:
        raise NotAuthenticated("Sign in first.")
    if not page.caller.has(role):
        raise Forbidden(f"This page is for the {role} role.")


@get("/vendor", include_in_schema=False)
async def vendor_home(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        _need(page, "vendor")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        mine = await listings.search(session, rules, page.caller, Filters(vendor_id=page.caller.id), sort="newest", cursor=None, limit=100)
    return page.render("vendor.html", listings=mine.items)


@get("/vendor/listings/{listing_id:str}", include_in_schema=False)
async def vendor_listing(
    request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str],
    error: Annotated[str | None, QueryParameter(max_length=4000)] = None,
) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        listing = await listings.get(session, rules, page.caller, listing_id)
        history = await listings.history(session, page.caller, listing_id)
    failures = [event for event in history.events if event.details.get("violations")]
    return page.render("vendor_listing.html", listing=listing, events=history.events, failures=failures, error=error)


@get("/vendor/new", include_in_schema=False)
async def new_listing_form(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        _need(page, "vendor")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
    catalogue = rules.rulebook.catalogue
    return page.render("vendor_new.html", categories=catalogue.categories, grades=catalogue.grades, deliveries=DELIVERIES)


def _listing_from_form(form: dict[str, Any]) -> ListingIn:
    def text(name: str) -> str | None:
        value = str(form.get(name, "")).strip()
        return value or None

    rights = [right for right in ("holding", "use", "operation") if form.get(f"right_{right}")]
    price = int(round(float(form.get("price_yuan") or 0) * 100))  # the form speaks yuan; the exchange speaks fen
    plan: dict[str, Any] = {"kind": "free"} if price == 0 else {"kind": "fixed", "price": {"amount": price, "currency": "CNY"}}
    body = {
        "title": text("title"), "description": text("description"), "category": text("category"), "grade": text("grade"),
        "delivery": text("delivery"), "schema": text("schema"), "personal_data": bool(form.get("personal_data")),
        "attestations": {"source": text("source"), "consent": text("consent"), "authorisation_id": text("authorisation_id"), "rights": rights},
        "licence": {"purposes": [p.strip() for p in str(form.get("purposes", "")).split(",") if p.strip()] or ["research"],
                    "duration_days": int(form.get("duration_days") or 365)},
        "plans": [plan],
    }
    return msgspec.convert(body, ListingIn)


@post("/vendor/new", include_in_schema=False, status_code=303)
async def create_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        _need(page, "vendor")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        try:
            body = _listing_from_form(data)
        except (msgspec.ValidationError, ValueError) as error:
            return Redirect(f"/vendor/new?error={str(error)[:300]}")
        created = await listings.create(session, rules, caller, body, exchange.clock())
    return Redirect(f"/vendor/listings/{created.id}")


@post("/vendor/listings/{listing_id:str}/submit", include_in_schema=False, status_code=303)
async def submit_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        try:
            await listings.submit(session, rules, caller, listing_id, exchange.clock())
        except RuleViolated as refused:
            await session.rollback()
            failures = "; ".join(f"{v['rule']}: {v['message']}" for v in refused.extensions.get("violations", []))
            return Redirect(f"/vendor/listings/{listing_id}?error={failures[:3000]}")
    return Redirect(f"/vendor/listings/{listing_id}")


# ── the operator's console ──


@get("/console", include_in_schema=False)
async def review_queue(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        _need(page, "operator")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        pending = await listings.search(session, rules, page.caller, Filters(in_review=True), sort="newest", cursor=None, limit=100)
        checks = {}
        for item in pending.items:
            explained = await explaining.listing_review(session, exchange.rule_cache, page.caller, item.id)
            checks[item.id] = explained.rules
        fees = await _fees_per_day(session, exchange.clock())
    return page.render("console.html", pending=pending.items, checks=checks, fees=fees, rules_hash=rules.hash, rules_version=rules.version, yuan=yuan,
                       error=request.query_params.get("error"))


async def _fees_per_day(session: Any, now: datetime, days: int = 30) -> list[tuple[str, int]]:
    """The exchange's fees per day (Asia/Shanghai) over the last `days` days, for the console's chart."""
    since = now - timedelta(days=days)
    rows = (await session.execute(sa.select(Contract.created_at, Contract.buyer_fee + Contract.vendor_fee).where(Contract.created_at >= since))).all()
    zone = ZoneInfo("Asia/Shanghai")
    totals = {(since + timedelta(days=n + 1)).astimezone(zone).date().isoformat(): 0 for n in range(days)}
    for at, fee in rows:
        day = at.astimezone(zone).date().isoformat()
        if day in totals:
            totals[day] += int(fee)
    return sorted(totals.items())


@post("/console/listings/{listing_id:str}/decide", include_in_schema=False, status_code=303)
async def decide_listing(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        _need(page, "operator")
        rules = await store.active(session, exchange.rule_cache, exchange.clock())
        reason = str(data.get("reason") or "").strip() or "reviewed in the console"
        if data.get("decision") == "reject":
            await listings.reject(session, rules, caller, listing_id, reason, exchange.clock())
        else:
            items = [key[len("evidence_"):] for key in data if key.startswith("evidence_")]
            answers = [{"item": item, "passed": bool(data.get(f"passed_{item}")), "evidence": str(data.get(f"evidence_{item}", ""))} for item in items]
            try:
                await listings.approve(session, exchange.ledger, rules, caller, listing_id, msgspec.convert({"reason": reason, "checklist": answers}, ApproveIn), exchange.clock())
            except ExchangeError as error:
                await session.rollback()
                return Redirect(f"/console?error={error.detail[:1000]}")
    return Redirect("/console")


@get("/console/rules", include_in_schema=False)
async def rules_page(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange]) -> Response[Any]:
    async with exchange.db.read() as session:
        page = await _page(session, request, exchange)
        if page.caller is None:
            return Redirect("/signin")
        _need(page, "operator")
        active = await store.active(session, exchange.rule_cache, exchange.clock())
        history = await rulebook.history(session, active)
    return page.render("rules.html", active=active, history=history.items, files=active.files, report=None, diffs=None,
                       request_applied=request.query_params.get("applied") == "1")


def _candidate(form: dict[str, Any], active_files: dict[str, str]) -> dict[str, str]:
    return {name: str(form[f"file_{name}"]).replace("\r\n", "\n") for name in active_files if f"file_{name}" in form}


@post("/console/rules", include_in_schema=False)
async def rules_action(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    """Dry-run the edited files (shown as a diff with the impact), or apply them with a reason."""
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        _need(page, "operator")
        now = exchange.clock()
        active = await store.active(session, exchange.rule_cache, now)
        files = _candidate(data, active.files)
        changed = {name: text for name, text in files.items() if text != active.files.get(name)}
        if data.get("action") == "apply":
            try:
                await rulebook.apply(session, exchange.ledger, active, changed, reason=str(data.get("reason") or "edited in the console"),
                                     actor_id=caller.id, effective_at=None, now=now)
            except ExchangeError as error:
                await session.rollback()
                return page.render("rules.html", active=active, history=[], files=files, report=None, diffs=None, error=error)
            return Redirect("/console/rules?applied=1")
        diffs = {
            name: "\n".join(difflib.unified_diff(active.files.get(name, "").splitlines(), text.splitlines(), f"active/{name}", f"candidate/{name}", lineterm=""))
            for name, text in changed.items()
        }
        try:
            report = await rulebook.dry_run(session, active, changed, now)
            error = None
        except ExchangeError as refused:
            report, error = None, refused
        history = await rulebook.history(session, active)
    return page.render("rules.html", active=active, history=history.items, files=files, report=report, diffs=diffs, error=error)


@post("/console/rules/upload", include_in_schema=False)
async def rules_upload(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], data: MultipartBody[dict[str, Any]]) -> Response[Any]:
    """Uploaded rule files replace those of the same name in the editor, then dry-run as if edited."""
    uploads = data.get("files")
    files = uploads if isinstance(uploads, list) else [uploads] if uploads is not None else []
    form: dict[str, Any] = {"csrf": data.get("csrf", ""), "action": "dry-run"}
    async with exchange.db.read() as session:
        active = await store.active(session, exchange.rule_cache, exchange.clock())
    form |= {f"file_{name}": text for name, text in active.files.items()}
    for upload in files:
        if isinstance(upload, UploadFile) and upload.filename in active.files:
            form[f"file_{upload.filename}"] = (await upload.read()).decode("utf-8", errors="replace")
    return await rules_action.fn(request=request, exchange=exchange, data=form)


@post("/console/books/{listing_id:str}", include_in_schema=False, status_code=303)
async def book_action(request: Request[Any, Any, Any], exchange: NamedDependency[Exchange], listing_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
    async with exchange.db.write() as session:
        page = await _page(session, request, exchange)
        caller = _check_csrf(page, data)
        halted = data.get("action") == "halt"
        await orders.halt(session, caller, listing_id, str(data.get("reason") or "halted in the console") if halted else None, exchange.clock(), halted=halted)
    return Redirect(f"/listings/{listing_id}")


ROUTES = [vendor_home, vendor_listing, new_listing_form, create_listing, submit_listing, review_queue, decide_listing, rules_page, rules_action, rules_upload, book_action]
