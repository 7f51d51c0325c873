"""What the rule files say, as typed values. Every Struct forbids unknown fields, so an
operator's typo (`listabel = false`) fails when the set is loaded, never when a rule is used.

One field of `Rulebook` is one rule file: the field `catalogue` is `catalogue.toml`. Adding a
rule file is adding a field there (and its checks in load.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from exchange.listings.schemas import NAME_MAX, TEXT_MAX, Code, ListingIn, ShortText
from exchange.participants.schemas import Qualification

ItemId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
"""Checklist item ids; operators answer items by id (ChecklistAnswer.item)."""
Purpose = ShortText
"""A purpose a buyer declares, as in a listing's licence purposes."""


class _Rules(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Category(_Rules, frozen=True, kw_only=True):
    """A data category of the classification standard (数据分类)."""

    code: Code
    name_zh: ShortText
    name_en: ShortText
    requires_authorisation: bool
    """Listings must give `attestations.authorisation_id` (e.g. 人脸等生物特征)."""
    personal: bool
    """Personal data by nature: every listing of the category needs a consent attestation."""
    buyer_qualifications: Annotated[list[Qualification], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """A buyer must hold one of these to buy; empty: anyone may buy."""
    buyer_purposes: Annotated[list[Purpose], Meta(max_length=64)] = msgspec.field(default_factory=list)
    """The purposes a buyer may declare; empty: any purpose."""


class Grade(_Rules, frozen=True, kw_only=True):
    """A sensitivity grade (数据分级), L1 the least sensitive."""

    code: Code
    name_zh: ShortText
    name_en: ShortText
    listable: bool
    """False bars the grade from the catalogue (core data, 核心数据)."""


class CatalogueRules(_Rules, frozen=True, kw_only=True):
    """catalogue.toml: the classification standard (分类分级) every listing is judged by."""

    personal_data_requires_consent: bool = True
    """A listing marked `personal_data` must give `attestations.consent`."""
    categories: Annotated[list[Category], Meta(min_length=1, max_length=200)]
    grades: Annotated[list[Grade], Meta(min_length=1, max_length=20)]

    def category(self, code: str) -> Category | None:
        return next((category for category in self.categories if category.code == code), None)

    def grade(self, code: str) -> Grade | None:
        return next((grade for grade in self.grades if grade.code == code), None)


class VendorRules(_Rules, frozen=True, kw_only=True):
    """Who may list (数商准入)."""

    qualifications_any: Annotated[list[Qualification], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """A vendor must hold one of these; empty: any vendor may list."""
    allow_sponsored: bool = True
    """A vendor sponsored by a participant holding one of `qualifications_any` may list too."""


class ChecklistKind(StrEnum):
    compliance = "compliance"  # 合规评估
    quality = "quality"  # 质量评估


class ChecklistItem(_Rules, frozen=True, kw_only=True):
    """A question an operator answers, with evidence, before approving a listing."""

    id: ItemId
    kind: ChecklistKind
    text: Annotated[str, Meta(min_length=1, max_length=2000)]
    categories: Annotated[list[Code], Meta(max_length=200)] = msgspec.field(default_factory=list)
    """Asked of listings in these categories; empty: every category."""
    grades: Annotated[list[Code], Meta(max_length=20)] = msgspec.field(default_factory=list)
    """Asked of listings of these grades; empty: every grade."""
    personal_only: bool = False
    """Asked only of personal data: `personal_data` listings and personal categories."""


class ListingRules(_Rules, frozen=True, kw_only=True):
    """listing.toml: what a listing must contain and who may list (挂牌规则)."""

    required: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=64)
    ] = msgspec.field(default_factory=list)
    """Dotted names of ListingIn fields that must be given (not null, blank or empty)."""
    title_length_max: Annotated[int, Meta(ge=1, le=NAME_MAX)]
    description_length_min: Annotated[int, Meta(ge=1, le=TEXT_MAX)]
    description_length_max: Annotated[int, Meta(ge=1, le=TEXT_MAX)]
    licence_duration_days_max: Annotated[int, Meta(ge=1, le=36_600)]
    plan_kinds: Annotated[dict[Code, list[str]], Meta(max_length=20)]
    """Grade code -> the price-plan kinds a listing of that grade may offer."""
    vendors: VendorRules = msgspec.field(default_factory=VendorRules)
    checklist: Annotated[list[ChecklistItem], Meta(max_length=100)] = msgspec.field(default_factory=list)


class Rulebook(Struct, frozen=True, kw_only=True):
    """Every rule file of a set, decoded and validated together (see load.decode_rulebook)."""

    catalogue: CatalogueRules
    listing: ListingRules


RULE_FILE_TYPES: dict[str, tuple[str, Any]] = {
    f"{field.name}.toml": (field.name, field.type) for field in msgspec.structs.fields(Rulebook)
}
"""Rule file name -> (Rulebook attribute, Struct the file decodes to)."""
RULE_FILES = tuple(RULE_FILE_TYPES)


def _listing_field_names() -> frozenset[str]:
    """ListingIn's fields and, one level down, those of its nested Structs (attestations.source)."""
    names: set[str] = set()
    for field in msgspec.structs.fields(ListingIn):
        names.add(field.name)
        if isinstance(field.type, type) and issubclass(field.type, Struct):
            names.update(
                f"{field.name}.{inner.name}" for inner in msgspec.structs.fields(field.type)
            )
    return frozenset(names)


LISTING_FIELDS = _listing_field_names()
"""The names `required` in listing.toml may use."""
