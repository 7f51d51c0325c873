"""Decoding a rule set: file name -> TOML text in; a Rulebook out, or every error at once.

Pure: the caller reads the files. Whatever the text, the only exception is RulebookInvalid,
whose errors each name a file, a key path (`categories[6].requires_authorisation`, "" for the
whole file) and a reason, so an operator can fix a whole set in one pass."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import msgspec.toml

from exchange.core.canonical import sha256_hex
from exchange.core.errors import RulebookInvalid
from exchange.listings.schemas import PLAN_KINDS
from exchange.rulebook.model import (
    DAY_MINUTES,
    LISTING_FIELDS,
    OPTIONAL_RULE_FILES,
    RULE_FILE_TYPES,
    RULE_FILES,
    CatalogueRules,
    FeeRules,
    ListingRules,
    Rulebook,
    SessionRules,
    TradingRules,
    iso_date,
    minute_of_day,
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
            if name not in OPTIONAL_RULE_FILES:
                errors.append(RuleError(name, "", "missing: every rule set has this file"))
                continue
            # Sets stored before this file existed: an empty file, so every default applies.
            text = ""
        rules, file_errors = _decode_file(name, text, rules_type)
        errors += file_errors
        if rules is not None:
            decoded[attribute] = rules

    # Each file's own checks run whenever it decoded, so one broken file does not hide the
    # other's mistakes; checks across files need both.
    catalogue: CatalogueRules | None = decoded.get("catalogue")
    listing: ListingRules | None = decoded.get("listing")
    trading: TradingRules | None = decoded.get("trading")
    fees: FeeRules | None = decoded.get("fees")
    if catalogue is not None:
        errors += _check_catalogue(catalogue)
    if listing is not None:
        errors += _check_listing(listing)
        if catalogue is not None:
            errors += _check_listing_against_catalogue(listing, catalogue)
    if trading is not None:
        errors += _check_trading(trading)
        # The default access entries name the shipped catalogue's codes; a set that leaves them
        # out (one stored before trading.toml, say) may have edited those codes away, and is
        # not refused for entries its operator never wrote: such an entry matches nothing.
        if catalogue is not None and _gives_access(files.get("trading.toml")):
            errors += _check_trading_against_catalogue(trading, catalogue)
    if fees is not None:
        errors += _check_fees(fees)

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


def _repeated(file: str, key: str, values: list[str]) -> Iterator[RuleError]:
    """Values given twice in one list of plain values (days, dates)."""
    first_at: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in first_at:
            yield RuleError(file, f"{key}[{index}]", f"{value!r} given twice; first at {key}[{first_at[value]}]")
        else:
            first_at[value] = index


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


def _gives_access(text: str | None) -> bool:
    """Whether trading.toml, which decoded, writes `access` itself rather than defaulting it."""
    return bool(text) and "access" in msgspec.toml.decode(text)


def _check_trading(trading: TradingRules) -> list[RuleError]:
    file = "trading.toml"
    errors = _check_sessions(file, trading.sessions)
    errors += _duplicates(file, "access", [entry.id for entry in trading.access], "id")
    errors += [
        RuleError(
            file,
            f"access[{index}]",
            "restricts nothing: give qualifications_any, purposes_any or both",
        )
        for index, entry in enumerate(trading.access)
        if not entry.qualifications_any and not entry.purposes_any
    ]
    return errors


def _check_sessions(file: str, sessions: SessionRules) -> list[RuleError]:
    errors = []
    if not _known_time_zone(sessions.timezone):
        errors.append(
            RuleError(
                file,
                "sessions.timezone",
                f'unknown time zone {sessions.timezone!r}; use an IANA name such as "Asia/Shanghai"',
            )
        )
    errors += _repeated(file, "sessions.days", [str(day) for day in sessions.days])
    open_, close = minute_of_day(sessions.open), minute_of_day(sessions.close)
    if open_ is None or open_ == DAY_MINUTES:
        errors.append(
            RuleError(file, "sessions.open", f'{sessions.open!r} is not a time "HH:MM" from "00:00" to "23:59"')
        )
        open_ = None
    if close is None or close == 0:
        errors.append(
            RuleError(file, "sessions.close", f'{sessions.close!r} is not a time "HH:MM" from "00:01" to "24:00"')
        )
    elif open_ is not None and close <= open_:
        errors.append(
            RuleError(
                file,
                "sessions.close",
                f"{sessions.close} is not after open ({sessions.open}); a session cannot span midnight",
            )
        )
    errors += [
        RuleError(file, f"sessions.holidays[{index}]", f'{holiday!r} is not a date "YYYY-MM-DD"')
        for index, holiday in enumerate(sessions.holidays)
        if iso_date(holiday) is None
    ]
    errors += _repeated(file, "sessions.holidays", sessions.holidays)
    return errors


_TIME_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


def _known_time_zone(name: str) -> bool:
    # The name is a path into the system's time-zone database: keep it to what IANA names use.
    if _TIME_ZONE_NAME.fullmatch(name) is None:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_trading_against_catalogue(trading: TradingRules, catalogue: CatalogueRules) -> list[RuleError]:
    file = "trading.toml"
    categories = {category.code for category in catalogue.categories}
    grades = {grade.code for grade in catalogue.grades}
    errors = []
    for index, entry in enumerate(trading.access):
        errors += [
            RuleError(file, f"access[{index}].categories[{position}]", f"no category {code!r} in catalogue.toml")
            for position, code in enumerate(entry.categories)
            if code not in categories
        ]
        errors += [
            RuleError(file, f"access[{index}].grades[{position}]", f"no grade {code!r} in catalogue.toml")
            for position, code in enumerate(entry.grades)
            if code not in grades
        ]
    return errors


def _check_fees(fees: FeeRules) -> list[RuleError]:
    file = "fees.toml"
    errors = [
        RuleError(
            file,
            f"fees[{index}].plan_kind",
            f"unknown plan kind {schedule.plan_kind!r}; the kinds are {', '.join(PLAN_KINDS)}",
        )
        for index, schedule in enumerate(fees.fees)
        if schedule.plan_kind not in PLAN_KINDS
    ]
    errors += _duplicates(file, "fees", [schedule.plan_kind for schedule in fees.fees], "plan_kind")
    splits = fees.splits
    if splits.sponsor_bps + splits.public_body_bps > 10_000:
        errors.append(RuleError(file, "splits.public_body_bps", "sponsor_bps and public_body_bps together exceed 10000 (all of the fee)"))
    if splits.public_body_bps and not splits.public_body_id:
        errors.append(RuleError(file, "splits.public_body_id", "public_body_bps is above 0: name the public body's participant id"))
    for index, schedule in enumerate(fees.fees):
        for position in range(1, len(schedule.tiers)):
            previous, tier = schedule.tiers[position - 1], schedule.tiers[position]
            if tier.volume_from_fen <= previous.volume_from_fen:
                errors.append(
                    RuleError(
                        file,
                        f"fees[{index}].tiers[{position}].volume_from_fen",
                        f"not above the previous tier's ({previous.volume_from_fen}); "
                        "tiers go by increasing volume",
                    )
                )
    return errors
