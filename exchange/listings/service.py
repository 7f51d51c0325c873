"""Catalogue use cases. Each takes an open transaction, the active rules and `now`, loads what
it needs, asks the rulebook and the state tables, and saves: one straight line per request."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, RuleViolated
from exchange.core.ids import new_id
from exchange.listings import repository
from exchange.listings.cache import PageCache
from exchange.listings.plans import currency_of, headline_price_fen, with_ids
from exchange.listings.schemas import (
    ApproveIn,
    ChecklistItemOut,
    ListingEventOut,
    ListingHistory,
    ListingIn,
    ListingOut,
    ListingPage,
    ListingPatch,
    ListingStatus,
    PendingRevision,
)
from exchange.listings.search import tokens_for
from exchange.listings.states import (
    EDITABLE_LIVE,
    ListingAction,
    RevisionStatus,
    next_revision_status,
    next_status,
)
from exchange.participants.service import vendor_facts
from exchange.rulebook.evaluate import VendorFacts, check_listing, checklist_for
from exchange.rulebook.model import Rulebook
from exchange.rulebook.store import ActiveRules
from exchange.settlement import certificates
from exchange.settlement.ledger import Ledger
from exchange.tables import Listing, ListingEvent, ListingPlan, ListingRevision

PAGE_SIZE_MAX = 100


def _content(body: ListingIn) -> dict[str, Any]:
    return msgspec.to_builtins(body)  # type: ignore[no-any-return]


def _body(content: dict[str, Any]) -> ListingIn:
    return msgspec.convert(content, ListingIn)


def search_tokens(body: ListingIn, rulebook: Rulebook) -> list[str]:
    """What the catalogue indexes of a listing: title, description, category code and names."""
    category = rulebook.catalogue.category(body.category)
    names = f"{category.name_zh} {category.name_en}" if category else ""
    return tokens_for(f"{body.title}\n{body.description}\n{body.category} {names}")


def _may_see(caller: Caller | None, listing: Listing) -> bool:
    if listing.status == ListingStatus.listed:
        return True
    return caller is not None and (caller.sees_everything or caller.id == listing.vendor_id)


async def _load_visible(session: AsyncSession, caller: Caller | None, listing_id: str, *, for_update: bool = False) -> Listing:
    listing = await repository.get(session, listing_id, for_update=for_update)
    if listing is None or not _may_see(caller, listing):
        raise NotFound(f"No listing {listing_id}.")  # the same answer whether hidden or absent
    return listing


async def _load_own(session: AsyncSession, caller: Caller, listing_id: str) -> Listing:
    listing = await _load_visible(session, caller, listing_id, for_update=True)
    if listing.vendor_id != caller.id:
        raise Forbidden("Only the listing's vendor may change it.")
    return listing


def _violations_or_raise(rules: ActiveRules, body: ListingIn, vendor: VendorFacts, action: str) -> None:
    violations = check_listing(rules.rulebook, body, vendor)
    if violations:
        raise RuleViolated(
            f"The listing cannot be {action}: "
            + "; ".join(f"{v.rule}: {v.message}" for v in violations),
            violations=[msgspec.to_builtins(v) for v in violations],
            rulebook_hash=rules.hash,
        )


async def _record(
    session: AsyncSession,
    listing: Listing,
    *,
    revision: int,
    action: ListingAction,
    from_status: str | None,
    to_status: str,
    actor: Caller,
    now: datetime,
    rules: ActiveRules,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await repository.add_event(
        session,
        ListingEvent(
            listing_id=listing.id,
            revision=revision,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_id=actor.id,
            at=now,
            reason=reason,
            rulebook_hash=rules.hash,
            details=details or {},
        ),
    )


async def _show(session: AsyncSession, listing: Listing, body: ListingIn, rules: ActiveRules) -> None:
    """Make `body` the revision the catalogue shows and searches."""
    listing.content = _content(body)
    listing.title = body.title
    listing.category = body.category
    listing.grade = body.grade
    listing.delivery = body.delivery
    plans = [
        ListingPlan(
            listing_id=listing.id,
            id=plan.id or "",
            kind=type(plan).__struct_config__.tag,  # type: ignore[arg-type]
            price_fen=headline_price_fen(plan),
            currency=currency_of(plan),
        )
        for plan in body.plans
    ]
    listing.min_price_fen = min((p.price_fen for p in plans if p.price_fen is not None), default=repository.PRICE_NONE)
    await repository.replace_plans(session, listing.id, plans)
    await repository.index(session, listing.id, search_tokens(body, rules.rulebook))


async def to_out(session: AsyncSession, listing: Listing, caller: Caller | None, rules: ActiveRules) -> ListingOut:
    pending = None
    review_body: ListingIn | None = _body(listing.content) if listing.status == ListingStatus.submitted else None
    insider = caller is not None and (caller.sees_everything or caller.id == listing.vendor_id)
    if insider and listing.pending_revision is not None:
        revision = await repository.get_revision(session, listing.id, listing.pending_revision)
        assert revision is not None
        pending = PendingRevision(number=revision.number, status=revision.status, content=_body(revision.content))
        if revision.status == RevisionStatus.submitted:
            review_body = pending.content
    checklist = None
    if insider and review_body is not None:
        checklist = [
            ChecklistItemOut(item=item.id, kind=item.kind, text=item.text)
            for item in checklist_for(rules.rulebook, review_body)
        ]
    return msgspec.convert(
        {
            **listing.content,
            "id": listing.id,
            "vendor_id": listing.vendor_id,
            "status": listing.status,
            "revision": listing.revision,
            "created_at": listing.created_at,
            "updated_at": listing.updated_at,
            "listed_at": listing.listed_at,
            "rulebook_hash": listing.rulebook_hash,
            "pending_revision": pending,
            "checklist": checklist,
        },
        ListingOut,
        from_attributes=True,
    )


async def create(session: AsyncSession, rules: ActiveRules, caller: Caller, body: ListingIn, now: datetime) -> ListingOut:
    for index, plan in enumerate(body.plans):
        if plan.id is not None:
            raise InvalidInput(
                f"plans[{index}].id: plan ids are assigned by the exchange",
                errors=[{"field": f"plans[{index}].id", "reason": "assigned by the exchange"}],
            )
    body = msgspec.structs.replace(body, plans=with_ids(body.plans, (), lambda: new_id("pln")))
    listing = Listing(
        id=new_id("lst"),
        vendor_id=caller.id,
        status=ListingStatus.draft,
        revision=1,
        title=body.title,
        category=body.category,
        grade=body.grade,
        delivery=body.delivery,
        content=_content(body),
        created_at=now,
        updated_at=now,
    )
    revision = ListingRevision(
        listing_id=listing.id, number=1, status=RevisionStatus.draft, content=_content(body), created_by=caller.id, created_at=now
    )
    await repository.add(session, listing, revision)
    await _show(session, listing, body, rules)
    await _record(session, listing, revision=1, action=ListingAction.create, from_status=None, to_status=ListingStatus.draft, actor=caller, now=now, rules=rules)
    return await to_out(session, listing, caller, rules)


def _patched(current: ListingIn, patch: ListingPatch) -> ListingIn:
    changes = {name: value for name in patch.__struct_fields__ if (value := getattr(patch, name)) is not msgspec.UNSET}
    try:
        return msgspec.convert({**msgspec.to_builtins(current), **msgspec.to_builtins(changes)}, ListingIn)
    except msgspec.ValidationError as error:
        raise InvalidInput(str(error), errors=[{"field": "", "reason": str(error)}]) from None


async def update(session: AsyncSession, rules: ActiveRules, caller: Caller, listing_id: str, patch: ListingPatch, now: datetime) -> ListingOut:
    listing = await _load_own(session, caller, listing_id)
    status = ListingStatus(listing.status)
    known = await repository.known_plan_ids(session, listing.id)
    if status in EDITABLE_LIVE:
        pending = await repository.get_revision(session, listing.id, listing.pending_revision) if listing.pending_revision else None
        if pending is not None and pending.status == RevisionStatus.submitted:
            raise InvalidTransition("A revision of this listing is in review; wait for the decision.")
        base = _body(pending.content if pending is not None and pending.status == RevisionStatus.draft else listing.content)
        body = _patched(base, patch)
        body = msgspec.structs.replace(body, plans=with_ids(body.plans, known, lambda: new_id("pln")))
        if pending is not None and pending.status == RevisionStatus.draft:
            pending.content = _content(body)
            session.add(pending)
            number = pending.number
        else:
            number = max(listing.revision, listing.pending_revision or 0) + 1
            await repository.add(
                session,
                ListingRevision(listing_id=listing.id, number=number, status=RevisionStatus.draft, content=_content(body), created_by=caller.id, created_at=now),
            )
            listing.pending_revision = number
        listing.updated_at = now
        session.add(listing)
        await _record(session, listing, revision=number, action=ListingAction.edit, from_status=status, to_status=status, actor=caller, now=now, rules=rules)
        return await to_out(session, listing, caller, rules)

    new_status = next_status(status, ListingAction.edit)
    body = _patched(_body(listing.content), patch)
    body = msgspec.structs.replace(body, plans=with_ids(body.plans, known, lambda: new_id("pln")))
    revision = await repository.get_revision(session, listing.id, listing.revision)
    assert revision is not None
    if revision.status == RevisionStatus.draft:
        revision.content = _content(body)
        session.add(revision)
    else:  # a rejected revision is kept as it was judged; the edit starts a new one
        revision.status = RevisionStatus.rejected
        listing.revision += 1
        await repository.add(
            session,
            ListingRevision(listing_id=listing.id, number=listing.revision, status=RevisionStatus.draft, content=_content(body), created_by=caller.id, created_at=now),
        )
    listing.status = new_status
    listing.updated_at = now
    await _show(session, listing, body, rules)
    session.add(listing)
    await _record(session, listing, revision=listing.revision, action=ListingAction.edit, from_status=status, to_status=new_status, actor=caller, now=now, rules=rules)
    return await to_out(session, listing, caller, rules)


async def _review_target(session: AsyncSession, listing: Listing, action: ListingAction) -> tuple[ListingRevision, bool]:
    """The revision a submit/approve/reject acts on, and whether it is a listed product's
    newer revision (True) rather than the listing's first way into the catalogue."""
    if ListingStatus(listing.status) in EDITABLE_LIVE and listing.pending_revision is not None:
        revision = await repository.get_revision(session, listing.id, listing.pending_revision)
        assert revision is not None
        next_revision_status(RevisionStatus(revision.status), action)  # raises when not allowed
        return revision, True
    next_status(ListingStatus(listing.status), action)
    revision = await repository.get_revision(session, listing.id, listing.revision)
    assert revision is not None
    return revision, False


async def submit(session: AsyncSession, rules: ActiveRules, caller: Caller, listing_id: str, now: datetime) -> ListingOut:
    listing = await _load_own(session, caller, listing_id)
    revision, is_pending = await _review_target(session, listing, ListingAction.submit)
    _violations_or_raise(rules, _body(revision.content), await vendor_facts(session, listing.vendor_id), "submitted")
    revision.status = RevisionStatus.submitted
    session.add(revision)
    from_status = listing.status
    if not is_pending:
        listing.status = next_status(ListingStatus(listing.status), ListingAction.submit)
    listing.rulebook_hash = rules.hash
    listing.updated_at = now
    session.add(listing)
    await _record(session, listing, revision=revision.number, action=ListingAction.submit, from_status=from_status, to_status=listing.status, actor=caller, now=now, rules=rules)
    return await to_out(session, listing, caller, rules)


def _check_answers(rules: ActiveRules, body: ListingIn, command: ApproveIn) -> list[dict[str, Any]]:
    asked = {item.id: item for item in checklist_for(rules.rulebook, body)}
    answers = {answer.item: answer for answer in command.checklist}
    problems = []
    for item_id in asked:
        answer = answers.get(item_id)
        if answer is None:
            problems.append({"field": f"checklist.{item_id}", "reason": "not answered"})
        elif not answer.passed:
            problems.append({"field": f"checklist.{item_id}", "reason": "failed: reject the listing instead"})
        elif not answer.evidence.strip():
            problems.append({"field": f"checklist.{item_id}", "reason": "evidence is required"})
    for item_id in answers.keys() - asked.keys():
        problems.append({"field": f"checklist.{item_id}", "reason": "not an item of this listing's checklist"})
    if len(answers) != len(command.checklist):
        problems.append({"field": "checklist", "reason": "an item is answered twice"})
    if problems:
        raise InvalidInput(
            "The checklist is incomplete: " + "; ".join(f"{p['field']}: {p['reason']}" for p in problems),
            errors=problems,
        )
    return [
        {"item": item_id, "kind": asked[item_id].kind, "passed": True, "evidence": answers[item_id].evidence}
        for item_id in asked
    ]


async def approve(
    session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, listing_id: str, command: ApproveIn, now: datetime
) -> ListingOut:
    listing = await _load_visible(session, caller, listing_id, for_update=True)
    revision, is_pending = await _review_target(session, listing, ListingAction.approve)
    body = _body(revision.content)
    # The rules may have changed since submission: approval is judged by the rules in force.
    _violations_or_raise(rules, body, await vendor_facts(session, listing.vendor_id), "approved")
    answers = _check_answers(rules, body, command)
    revision.status = RevisionStatus.approved
    session.add(revision)
    from_status = listing.status
    if is_pending:
        previous = await repository.get_revision(session, listing.id, listing.revision)
        assert previous is not None
        previous.status = "superseded"
        session.add(previous)
        listing.revision, listing.pending_revision = revision.number, None
    else:
        listing.status = next_status(ListingStatus(listing.status), ListingAction.approve)
        listing.listed_at = now
    await _show(session, listing, body, rules)
    listing.rulebook_hash = rules.hash
    listing.updated_at = now
    session.add(listing)
    await _record(session, listing, revision=revision.number, action=ListingAction.approve, from_status=from_status, to_status=listing.status, actor=caller, now=now, rules=rules, reason=command.reason, details={"checklist": answers})
    await certificates.issue(
        session, ledger, listing_id=listing.id, revision=revision.number, vendor_id=listing.vendor_id,
        content=revision.content, rules_hash=rules.hash, now=now,
    )
    return await to_out(session, listing, caller, rules)


async def reject(session: AsyncSession, rules: ActiveRules, caller: Caller, listing_id: str, reason: str, now: datetime) -> ListingOut:
    listing = await _load_visible(session, caller, listing_id, for_update=True)
    revision, is_pending = await _review_target(session, listing, ListingAction.reject)
    revision.status = RevisionStatus.rejected
    session.add(revision)
    from_status = listing.status
    if not is_pending:
        listing.status = next_status(ListingStatus(listing.status), ListingAction.reject)
    listing.rulebook_hash = rules.hash
    listing.updated_at = now
    session.add(listing)
    await _record(session, listing, revision=revision.number, action=ListingAction.reject, from_status=from_status, to_status=listing.status, actor=caller, now=now, rules=rules, reason=reason)
    return await to_out(session, listing, caller, rules)


async def change_status(session: AsyncSession, rules: ActiveRules, caller: Caller, listing_id: str, action: ListingAction, reason: str | None, now: datetime) -> ListingOut:
    """suspend, resume, delist: operators for all; a vendor may delist its own."""
    listing = await _load_visible(session, caller, listing_id, for_update=True)
    own_delist = action == ListingAction.delist and caller.id == listing.vendor_id and caller.has("vendor")
    if not (caller.has("operator") or own_delist):
        raise Forbidden(f"Only an operator may {action} a listing" + (" (or its vendor delist it)." if action == ListingAction.delist else "."))
    from_status = listing.status
    listing.status = next_status(ListingStatus(listing.status), action)
    listing.updated_at = now
    session.add(listing)
    await _record(session, listing, revision=listing.revision, action=action, from_status=from_status, to_status=listing.status, actor=caller, now=now, rules=rules, reason=reason)
    return await to_out(session, listing, caller, rules)


async def certificate(session: AsyncSession, caller: Caller | None, listing_id: str) -> certificates.CertificateOut:
    listing = await _load_visible(session, caller, listing_id)
    found = await certificates.latest(session, listing.id)
    if found is None:
        raise NotFound(f"Listing {listing_id} has no registration certificate: it was never approved.")
    return found


async def get(session: AsyncSession, rules: ActiveRules, caller: Caller | None, listing_id: str) -> ListingOut:
    return await to_out(session, await _load_visible(session, caller, listing_id), caller, rules)


async def history(session: AsyncSession, caller: Caller | None, listing_id: str) -> ListingHistory:
    listing = await _load_visible(session, caller, listing_id)
    events = await repository.events(session, listing.id)
    return ListingHistory(
        listing_id=listing.id,
        events=[msgspec.convert(event, ListingEventOut, from_attributes=True) for event in events],
    )


async def search(
    session: AsyncSession | Callable[[], AsyncSession],
    rules: ActiveRules,
    caller: Caller | None,
    filters: repository.Filters,
    *,
    sort: str,
    cursor: str | None,
    limit: int,
    cache: PageCache[ListingPage] | None = None,
    catalogue_version: int | None = None,
) -> ListingPage:
    """One page of the search. A public search (what anyone may see, which is all a buyer or an
    anonymous caller sees) is answered from `cache` while `catalogue_version`, read before this,
    stands. `session`: the session to read in, or what opens it (an answer from the cache needs none)."""
    try:
        after = repository.decode_cursor(cursor) if cursor else None
    except (ValueError, msgspec.DecodeError):
        raise InvalidInput("cursor: not a cursor this API gave out", errors=[{"field": "cursor", "reason": "invalid"}]) from None
    filters = dataclasses.replace(
        filters,
        visible_to_vendor=caller.id if caller is not None and caller.has("vendor") else None,
        sees_everything=caller is not None and caller.sees_everything,
    )
    public = filters.visible_to_vendor is None and not filters.sees_everything and not filters.in_review
    key = _page_key(rules, filters, sort, cursor, limit) if public and cache is not None and catalogue_version is not None else None
    if key is not None:
        assert cache is not None and catalogue_version is not None
        kept = cache.get(catalogue_version, key)
        if kept is not None:
            return kept
    if not isinstance(session, AsyncSession):
        session = session()
    rows, next_cursor = await repository.search(session, filters, sort=sort, cursor=after, limit=limit)
    page = ListingPage(items=[await to_out(session, row, caller, rules) for row in rows], next_cursor=next_cursor)
    if key is not None:
        assert cache is not None and catalogue_version is not None
        cache.put(catalogue_version, key, page)
    return page


def _page_key(rules: ActiveRules, filters: repository.Filters, sort: str, cursor: str | None, limit: int) -> tuple[Any, ...]:
    query = filters.query
    return (
        rules.version,
        None if query is None else (tuple(query.exact), tuple(query.prefixes)),
        filters.category, filters.grade, filters.delivery, filters.vendor_id, filters.plan_kind,
        filters.price_min, filters.price_max, filters.status,
        sort, cursor, limit,
    )
