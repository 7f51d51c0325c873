"""Decoding a rule set: file name -> TOML text in; a Rulebook out, or every error at once.

Pure: the caller reads the files. Whatever the text, the only exception is RulebookInvalid,
whose errors each name a file, a key path (`categories[6].requires_authorisation`, "" for the
whole file) and a reason, so an operator can fix a whole set in one pass."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import msgspec.toml

from exchange.core.canonical import sha256_hex
from exchange.core.errors import RulebookInvalid
from exchange.listings.schemas import PLAN_KINDS
from exchange.rulebook.model import (
    LISTING_FIELDS,
    RULE_FILE_TYPES,
    RULE_FILES,
    CatalogueRules,
    ListingRules,
    Rulebook,
)

DOTS_PER_LINE_MAX = 32
"""tomllib's time and memory grow with the square of a dotted key's depth (`a.b.c...`), and a
set arrives over HTTP: a few kilobytes of `a.a.a...` take gigabytes. Keys cannot span lines,
so refusing lines with many dots bounds the depth; no sane rule file comes close."""


class RuleError(msgspec.Struct, frozen=True):
    file: str
    key: str
    """Path to the offending value, e.g. `grades[3].listable`; "" for the whole file."""
    reason: str


def decode_rulebook(files: Mapping[str, str]) -> Rulebook:
    """The Rulebook `files` describe; raises RulebookInvalid listing every error found."""
    errors = [
        RuleError(name, "", f"not a rule file; the rule files are {', '.join(RULE_FILES)}")
        for name in sorted(files.keys() - RULE_FILE_TYPES.keys())
    ]
    decoded: dict[str, Any] = {}
    for name, (attribute, rules_type) in RULE_FILE_TYPES.items():
        text = files.get(name)
        if text is None:
            errors.append(RuleError(name, "", "missing: every rule set has this file"))
            continue
        rules, file_errors = _decode_file(name, text, rules_type)
        errors += file_errors
        if rules is not None:
            decoded[attribute] = rules

    # Each file's own checks run whenever it decoded, so one broken file does not hide the
    # other's mistakes; checks across files need both.
    catalogue: CatalogueRules | None = decoded.get("catalogue")
    listing: ListingRules | None = decoded.get("listing")
    if catalogue is not None:
        errors += _check_catalogue(catalogue)
    if listing is not None:
        errors += _check_listing(listing)
        if catalogue is not None:
            errors += _check_listing_against_catalogue(listing, catalogue)

    if errors:
        # Grouped by file, in RULE_FILES order, then files that are not rule files.
        errors.sort(
            key=lambda error: (
                RULE_FILES.index(error.file) if error.file in RULE_FILES else len(RULE_FILES)
            )
        )
        raise RulebookInvalid(
            f"The rule set has {len(errors)} error(s): " + "; ".join(_lines(errors[:5])),
            errors=[msgspec.structs.asdict(error) for error in errors],
        )
    return Rulebook(**decoded)


def rulebook_hash(files: Mapping[str, str]) -> str:
    """SHA-256 hex of the set's content: comments, white space and key order do not change it,
    any value does. Call it on a set decode_rulebook accepted."""
    return sha256_hex({name: msgspec.toml.decode(text) for name, text in files.items()})


def format_errors(errors: Iterable[RuleError | Mapping[str, str]]) -> str:
    """One line per error, `file: key: reason`, for the command line."""
    return "\n".join(_lines(errors))


def _lines(errors: Iterable[RuleError | Mapping[str, str]]) -> Iterator[str]:
    for error in errors:
        if isinstance(error, RuleError):
            file, key, reason = error.file, error.key, error.reason
        else:
            file, key, reason = error["file"], error["key"], error["reason"]
        yield f"{file}: {key or '(file)'}: {reason}"


# Decoding one file


_VALIDATION_AT = re.compile(r"(?P<reason>.*) - at `\$(?P<path>.*)`", re.DOTALL)
_FIELD_NAMED = re.compile(r"Object (?:contains unknown|missing required) field `(?P<field>.*)`")


def _decode_file(name: str, text: str, rules_type: Any) -> tuple[Any, list[RuleError]]:
    unsafe = _not_utf8(name, text) or _too_many_dots(name, text)
    if unsafe is not None:
        return None, [unsafe]
    try:
        return msgspec.toml.decode(text, type=rules_type), []
    except msgspec.ValidationError as error:  # before DecodeError: it is a subclass
        return None, [_validation_error(name, str(error), rules_type)]
    except msgspec.DecodeError as error:
        return None, [RuleError(name, "", f"not valid TOML: {error}")]
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        return None, [RuleError(name, "", "not valid TOML: arrays or tables nested too deeply")]


def _not_utf8(name: str, text: str) -> RuleError | None:
    # A Python str may hold lone surrogates (text decoded with errors="surrogateescape", for
    # one); tomllib accepts them, but msgspec, the hash and the database cannot encode them.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        line = text.count("\n", 0, error.start) + 1
        return RuleError(name, "", f"not UTF-8 text: {error.reason} on line {line}")
    return None


def _too_many_dots(name: str, text: str) -> RuleError | None:
    # Split on "\n" only: that is TOML's line end; str.splitlines() would also split at
    # characters TOML keeps inside a line.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.count(".") > DOTS_PER_LINE_MAX and not line.lstrip().startswith("#"):
            return RuleError(
                name,
                "",
                f"line {number} has more than {DOTS_PER_LINE_MAX} dots; split it or nest less deeply",
            )
    return None


def _validation_error(name: str, message: str, rules_type: Any) -> RuleError:
    """msgspec's `Expected `bool`, got `str` - at `$.grades[3].listable`` as file, key, reason.
    An unknown or missing field is named in the key too, since that is what the operator edits."""
    located = _VALIDATION_AT.fullmatch(message)
    reason, key = (
        (located["reason"], located["path"].removeprefix(".")) if located else (message, "")
    )
    named = _FIELD_NAMED.match(reason)
    if named:
        field = named["field"]
        key = f"{key}.{field}" if key else field
        if reason.startswith("Object contains unknown"):
            reason = f"unknown key `{field}`"
            close = difflib.get_close_matches(field, _key_names(rules_type), n=1)
            if close:
                reason += f" (did you mean `{close[0]}`?)"
        else:
            reason = f"missing key `{field}`"
    return RuleError(name, key, reason)


def _key_names(rules_type: Any) -> set[str]:
    """Every key any table of the file may have; typos are compared against these."""
    names: set[str] = set()

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            for field in info.fields:
                names.add(field.name)
                walk(field.type)
        elif isinstance(info, msgspec.inspect.Metadata):
            walk(info.type)
        elif isinstance(info, msgspec.inspect.ListType):
            walk(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            walk(info.value_type)

    walk(msgspec.inspect.type_info(rules_type))
    return names


# Checks a type cannot express


def _duplicates(file: str, table: str, codes: list[str], field: str) -> Iterator[RuleError]:
    first_at: dict[str, int] = {}
    for index, code in enumerate(codes):
        if code in first_at:
            yield RuleError(
                file,
                f"{table}[{index}].{field}",
                f"duplicate {field} {code!r}; first at {table}[{first_at[code]}]",
            )
        else:
            first_at[code] = index


def _check_catalogue(catalogue: CatalogueRules) -> list[RuleError]:
    file = "catalogue.toml"
    return [
        *_duplicates(
            file, "categories", [category.code for category in catalogue.categories], "code"
        ),
        *_duplicates(file, "grades", [grade.code for grade in catalogue.grades], "code"),
    ]


def _check_listing(listing: ListingRules) -> list[RuleError]:
    file = "listing.toml"
    errors = [
        RuleError(
            file,
            f"required[{index}]",
            f"no listing field {name!r}; known fields are {', '.join(sorted(LISTING_FIELDS))}",
        )
        for index, name in enumerate(listing.required)
        if name not in LISTING_FIELDS
    ]
    if listing.description_length_min > listing.description_length_max:
        errors.append(
            RuleError(
                file,
                "description_length_min",
                f"greater than description_length_max ({listing.description_length_max})",
            )
        )
    for grade, kinds in listing.plan_kinds.items():
        if not kinds:
            errors.append(
                RuleError(
                    file,
                    f"plan_kinds.{grade}",
                    "no plan kinds: to bar a grade, set `listable = false` in catalogue.toml",
                )
            )
        errors += [
            RuleError(
                file,
                f"plan_kinds.{grade}[{index}]",
                f"unknown plan kind {kind!r}; the kinds are {', '.join(PLAN_KINDS)}",
            )
            for index, kind in enumerate(kinds)
            if kind not in PLAN_KINDS
        ]
    errors += _duplicates(file, "checklist", [item.id for item in listing.checklist], "id")
    return errors


def _check_listing_against_catalogue(
    listing: ListingRules, catalogue: CatalogueRules
) -> list[RuleError]:
    file = "listing.toml"
    categories = {category.code for category in catalogue.categories}
    grades = {grade.code for grade in catalogue.grades}
    errors = [
        RuleError(file, f"plan_kinds.{grade}", f"no grade {grade!r} in catalogue.toml")
        for grade in listing.plan_kinds
        if grade not in grades
    ]
    # Without plan kinds a listable grade would refuse every listing, or allow every kind:
    # the operator decides explicitly.
    errors += [
        RuleError(
            file,
            "plan_kinds",
            f"grade {grade.code!r} is listable in catalogue.toml but has no plan kinds here",
        )
        for grade in catalogue.grades
        if grade.listable and grade.code not in listing.plan_kinds
    ]
    for index, item in enumerate(listing.checklist):
        errors += [
            RuleError(
                file,
                f"checklist[{index}].categories[{position}]",
                f"no category {code!r} in catalogue.toml",
            )
            for position, code in enumerate(item.categories)
            if code not in categories
        ]
        errors += [
            RuleError(
                file,
                f"checklist[{index}].grades[{position}]",
                f"no grade {code!r} in catalogue.toml",
            )
            for position, code in enumerate(item.grades)
            if code not in grades
        ]
    return errors
