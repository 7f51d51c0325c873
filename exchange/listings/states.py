"""Listing and revision states as data: (state, action) -> next state. Pure."""

from __future__ import annotations

from enum import StrEnum

from exchange.core.errors import InvalidTransition
from exchange.listings.schemas import ListingStatus


class ListingAction(StrEnum):
    create = "create"
    edit = "edit"
    submit = "submit"
    approve = "approve"
    reject = "reject"
    suspend = "suspend"
    resume = "resume"
    delist = "delist"


class RevisionStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"


S, A = ListingStatus, ListingAction

LISTING_TRANSITIONS: dict[tuple[ListingStatus, ListingAction], ListingStatus] = {
    (S.draft, A.edit): S.draft,
    (S.rejected, A.edit): S.draft,
    (S.draft, A.submit): S.submitted,
    (S.submitted, A.approve): S.listed,
    (S.submitted, A.reject): S.rejected,
    (S.listed, A.suspend): S.suspended,
    (S.suspended, A.resume): S.listed,
    (S.listed, A.delist): S.delisted,
    (S.suspended, A.delist): S.delisted,
}

# A listed (or suspended) product's newer revision goes through review on its own while the
# approved revision stays on sale.
R = RevisionStatus
REVISION_TRANSITIONS: dict[tuple[RevisionStatus, ListingAction], RevisionStatus] = {
    (R.draft, A.edit): R.draft,
    (R.rejected, A.edit): R.draft,
    (R.draft, A.submit): R.submitted,
    (R.submitted, A.approve): R.approved,
    (R.submitted, A.reject): R.rejected,
}

EDITABLE_LIVE = frozenset({S.listed, S.suspended})


def next_status(status: ListingStatus, action: ListingAction) -> ListingStatus:
    try:
        return LISTING_TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(f"A {status} listing cannot be {_past(action)}.") from None


def next_revision_status(status: RevisionStatus, action: ListingAction) -> RevisionStatus:
    try:
        return REVISION_TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(f"A {status} revision cannot be {_past(action)}.") from None


def _past(action: ListingAction) -> str:
    return {"submit": "submitted", "edit": "edited", "delist": "delisted"}.get(action, action + "d")
