import pytest

from exchange.core.errors import InvalidTransition
from exchange.listings.schemas import ListingStatus
from exchange.listings.states import LISTING_TRANSITIONS, ListingAction, next_status


def test_the_review_path_leads_from_draft_to_listed() -> None:
    status = ListingStatus.draft
    for action in (ListingAction.submit, ListingAction.approve):
        status = next_status(status, action)
    assert status is ListingStatus.listed


def test_a_rejected_listing_returns_to_draft_when_edited() -> None:
    assert next_status(ListingStatus.rejected, ListingAction.edit) is ListingStatus.draft


@pytest.mark.parametrize("status", list(ListingStatus))
@pytest.mark.parametrize("action", list(ListingAction))
def test_every_pair_outside_the_table_is_refused(status: ListingStatus, action: ListingAction) -> None:
    if (status, action) in LISTING_TRANSITIONS:
        assert next_status(status, action) is LISTING_TRANSITIONS[(status, action)]
    else:
        with pytest.raises(InvalidTransition):
            next_status(status, action)


def test_delisted_is_final() -> None:
    assert not [pair for pair in LISTING_TRANSITIONS if pair[0] is ListingStatus.delisted]
