"""Judging a listing by a rulebook: every violated rule, each naming the rule, saying what to
fix, and pointing at the place in the rule file that decided. Pure: the same call judges with
the active rulebook or, for a dry run, with a candidate one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import msgspec

from exchange.listings.schemas import ListingIn, Plan
from exchange.rulebook.model import (
    CatalogueRules,
    Category,
    ChecklistItem,
    Grade,
    ListingRules,
    Rulebook,
    VendorRules,
)

_Entry = TypeVar("_Entry", Category, Grade)


class Violation(msgspec.Struct, frozen=True):
    rule: str
    """Stable dotted id, e.g. `catalogue.categories.biometric.requires_authorisation`."""
    message: str
    """What is wrong, in words a vendor can act on."""
    source: str
    """Where the rule lives, e.g. `catalogue.toml: categories[6].requires_authorisation`."""


class VendorFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules may ask about the vendor of a listing."""

    qualifications: frozenset[str]
    sponsor_qualifications: frozenset[str] | None = None
    """The sponsor's qualifications; None when the vendor has no sponsor."""


def check_listing(rulebook: Rulebook, listing: ListingIn, vendor: VendorFacts) -> list[Violation]:
    """Every rule `listing` by `vendor` breaks, in a stable order; empty: it may be listed."""
    category_at = _find(rulebook.catalogue.categories, listing.category)
    grade_at = _find(rulebook.catalogue.grades, listing.grade)
    return [
        *_classification(rulebook.catalogue, listing, category_at, grade_at),
        *_required(rulebook.listing, listing),
        *_limits(rulebook.listing, listing),
        *_plans(rulebook.listing, listing, grade_at),
        *_attestations(rulebook.catalogue, listing, category_at),
        *_vendor(rulebook.listing.vendors, vendor),
    ]


def checklist_for(rulebook: Rulebook, listing: ListingIn) -> list[ChecklistItem]:
    """The compliance and quality items (合规评估, 质量评估) an operator answers to approve
    `listing`, in the order of listing.toml."""
    category = rulebook.catalogue.category(listing.category)
    personal = listing.personal_data or (category is not None and category.personal)
    return [
        item
        for item in rulebook.listing.checklist
        if (not item.categories or listing.category in item.categories)
        and (not item.grades or listing.grade in item.grades)
        and (personal or not item.personal_only)
    ]


def _classification(
    catalogue: CatalogueRules,
    listing: ListingIn,
    category_at: tuple[int, Category] | None,
    grade_at: tuple[int, Grade] | None,
) -> Iterator[Violation]:
    if category_at is None:
        codes = ", ".join(category.code for category in catalogue.categories)
        yield Violation(
            "catalogue.categories",
            f"The category {listing.category!r} is not in the catalogue; use one of: {codes}.",
            "catalogue.toml: categories",
        )
    if grade_at is None:
        codes = ", ".join(grade.code for grade in catalogue.grades)
        yield Violation(
            "catalogue.grades",
            f"The grade {listing.grade!r} is not defined; use one of: {codes}.",
            "catalogue.toml: grades",
        )
    elif not grade_at[1].listable:
        index, grade = grade_at
        yield Violation(
            f"catalogue.grades.{grade.code}.listable",
            f"Data of grade {grade.code} ({grade.name_en}, {grade.name_zh}) may not be listed.",
            f"catalogue.toml: grades[{index}].listable",
        )


def _required(rules: ListingRules, listing: ListingIn) -> Iterator[Violation]:
    for index, name in enumerate(rules.required):
        if _missing(_field_value(listing, name)):
            yield Violation(
                f"listing.required.{name}",
                f"Give `{name}`: every listing needs it.",
                f"listing.toml: required[{index}]",
            )


def _limits(rules: ListingRules, listing: ListingIn) -> Iterator[Violation]:
    # Lengths count characters, so a Chinese title has the same limit as an English one.
    title, description = len(listing.title), len(listing.description)
    if title > rules.title_length_max:
        yield Violation(
            "listing.title_length_max",
            f"The title has {title} characters; at most {rules.title_length_max} are allowed.",
            "listing.toml: title_length_max",
        )
    if description < rules.description_length_min:
        yield Violation(
            "listing.description_length_min",
            f"The description has {description} characters; "
            f"at least {rules.description_length_min} are needed.",
            "listing.toml: description_length_min",
        )
    if description > rules.description_length_max:
        yield Violation(
            "listing.description_length_max",
            f"The description has {description} characters; "
            f"at most {rules.description_length_max} are allowed.",
            "listing.toml: description_length_max",
        )
    if listing.licence.duration_days > rules.licence_duration_days_max:
        yield Violation(
            "listing.licence_duration_days_max",
            f"The licence lasts {listing.licence.duration_days} days; "
            f"at most {rules.licence_duration_days_max} are allowed.",
            "listing.toml: licence_duration_days_max",
        )


def _plans(
    rules: ListingRules, listing: ListingIn, grade_at: tuple[int, Grade] | None
) -> Iterator[Violation]:
    # The loader makes every listable grade name its plan kinds; a grade without them is
    # unknown or unlistable, and refused as such already.
    allowed = rules.plan_kinds.get(listing.grade)
    if grade_at is None or allowed is None:
        return
    refused = sorted({_plan_kind(plan) for plan in listing.plans} - set(allowed))
    if refused:
        yield Violation(
            f"listing.plan_kinds.{listing.grade}",
            f"Grade {listing.grade} data may not be offered with {', '.join(refused)} plans; "
            f"allowed: {', '.join(allowed)}.",
            f"listing.toml: plan_kinds.{listing.grade}",
        )


def _attestations(
    catalogue: CatalogueRules, listing: ListingIn, category_at: tuple[int, Category] | None
) -> Iterator[Violation]:
    if category_at is not None:
        index, category = category_at
        if category.requires_authorisation and _missing(listing.attestations.authorisation_id):
            yield Violation(
                f"catalogue.categories.{category.code}.requires_authorisation",
                f"{_named(category)} data needs an authorisation to be traded: "
                "give its id in `attestations.authorisation_id`.",
                f"catalogue.toml: categories[{index}].requires_authorisation",
            )
    if not _missing(listing.attestations.consent):
        return
    # A personal category is named first: it asks for consent whatever the vendor declares.
    if category_at is not None and category_at[1].personal:
        index, category = category_at
        yield Violation(
            f"catalogue.categories.{category.code}.personal",
            f"{_named(category)} data is personal data: "
            "give the data subjects' consent in `attestations.consent`.",
            f"catalogue.toml: categories[{index}].personal",
        )
    elif listing.personal_data and catalogue.personal_data_requires_consent:
        yield Violation(
            "catalogue.personal_data_requires_consent",
            "The listing contains personal data: give the data subjects' consent in `attestations.consent`.",
            "catalogue.toml: personal_data_requires_consent",
        )


def _vendor(rules: VendorRules, vendor: VendorFacts) -> Iterator[Violation]:
    if not rules.qualifications_any:
        return
    wanted = frozenset(rules.qualifications_any)
    sponsor = vendor.sponsor_qualifications
    if vendor.qualifications & wanted or (
        rules.allow_sponsored and sponsor is not None and sponsor & wanted
    ):
        return
    sponsored = ", or be sponsored by a participant who holds one" if rules.allow_sponsored else ""
    yield Violation(
        "listing.vendors.qualifications_any",
        f"To list, a vendor must hold one of the qualifications {', '.join(rules.qualifications_any)}{sponsored}.",
        "listing.toml: vendors.qualifications_any",
    )


def _find(entries: Sequence[_Entry], code: str) -> tuple[int, _Entry] | None:
    """The entry with `code` and its index, which names it in a Violation's source."""
    return next(((index, entry) for index, entry in enumerate(entries) if entry.code == code), None)


def _named(category: Category) -> str:
    return f"{category.name_en} ({category.name_zh})"


def _field_value(listing: ListingIn, dotted_name: str) -> Any:
    """The value of a dotted ListingIn field name; the loader checked that the name exists."""
    value: Any = listing
    for part in dotted_name.split("."):
        value = getattr(value, part)
    return value


def _missing(value: Any) -> bool:
    # A blank string attests nothing, so it counts as missing.
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, dict)) and not value)


def _plan_kind(plan: Plan) -> str:
    return str(type(plan).__struct_config__.tag)
