"""Mangled rule files through the API (PUT /v1/rules and POST /v1/rules/dry-run): the answer is
a 200, or a 422 `rulebook_invalid` whose every error names file, key and reason, never a 5xx; a
refused set never changes the active one; and a set that was accepted leaves the exchange
working. Text mangling reuses tests/rulebook/test_shipped_rules.py (which feeds the pure
loader); structured mangling parses a shipped file and breaks one value, key or table in it."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from exchange.rulebook.model import RULE_FILES
from tests.conftest import MovableClock
from tests.harness import Api, listing_body
from tests.rulebook.test_shipped_rules import SHIPPED, assert_names_file_key_and_reason, mangled_text, value_at, value_paths

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FILE_NAMES = st.sampled_from(RULE_FILES) | st.from_regex(r"\A[a-z][a-z0-9_-]{0,12}\.toml\Z")
# Text JSON cannot carry to the server or the server refuses before the loader (400, naming
# the file): U+0000, and lone surrogates.
NOT_TEXT = ("\x00", *(chr(code) for code in range(0xD800, 0xE000)))


@st.composite
def mangled_candidates(draw: st.DrawFn) -> dict[str, str]:
    """One or two shipped files with characters inserted, deleted or replaced; now and then a
    file that is not a rule file."""
    files = {name: draw(mangled_text(SHIPPED[name])) for name in draw(st.lists(st.sampled_from(RULE_FILES), min_size=1, max_size=2, unique=True))}
    if draw(st.integers(0, 4)) == 0:
        files[draw(FILE_NAMES)] = draw(mangled_text("a = 1\n"))
    return files


HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 10**15 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "NaN", "Infinity", "1e309", "数据", "🚀", "L9", "Asia/Nowhere", "25:61", "2026-13-45"]),
    st.booleans(),
    st.lists(st.integers(-5, 5) | st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=2),
)


@st.composite
def structured_candidates(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A shipped file, decoded, with one to three values replaced by hostile ones of any type,
    keys or tables deleted, or unknown keys added; encoded back as TOML."""
    name = draw(st.sampled_from(RULE_FILES))
    document = tomllib.loads(SHIPPED[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(value_paths(document))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = value_at(document, path[:-1]), path[-1]
        match draw(st.sampled_from(["replace", "replace", "delete", "unknown"])):
            case "replace":
                parent[last] = draw(HOSTILE_VALUES)
            case "delete":
                del parent[last]
            case _:
                target = parent[last] if isinstance(parent[last], dict) else parent
                if isinstance(target, dict):
                    target[draw(st.sampled_from(["unknown", "listabel", "max_licences", "grades"]))] = draw(HOSTILE_VALUES)
    try:
        return name, {name: tomli_w.dumps(document)}
    except (TypeError, ValueError):  # a value TOML cannot hold (an integer past 64 bits, say)
        reject()


async def rule_set(api: Api) -> tuple[int, str, int]:
    """The active set's version and hash, and how many versions there are."""
    rules = await api.request("GET", "/v1/rules")
    history = await api.request("GET", "/v1/rules/history")
    assert (rules.status_code, history.status_code) == (200, 200), (rules.text, history.text)
    return rules.json()["version"], rules.json()["hash"], len(history.json()["items"])


async def put(api: Api, path: str, body: dict[str, Any]) -> Any:
    # Encoded here, ASCII-only: the mangled text may hold lone surrogates httpx cannot encode.
    headers = api.auth(api.operator_key, **{"content-type": "application/json"})
    return await api.client.request("PUT" if path == "/v1/rules" else "POST", path, content=json.dumps(body).encode(), headers=headers)


def check_answer(response: Any, files: dict[str, str]) -> bool:
    """True when the set was accepted; otherwise the refusal must be well-formed."""
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        return True
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if response.status_code == 400:
        # The request never reached the loader: text the API does not take, naming the file.
        assert any(character in text for text in files.values() for character in NOT_TEXT), problem
        assert problem["code"] == "invalid_request" and problem["errors"], problem
        assert all(error["field"].startswith("files") and error["reason"] for error in problem["errors"]), problem
        return False
    assert problem["code"] == "rulebook_invalid", problem
    assert_names_file_key_and_reason(problem["errors"], files)
    return False


async def still_works(api: Api, vendor: str) -> None:
    """After a set was accepted: the exchange still answers, and judges listings under it."""
    assert (await api.request("GET", "/health")).status_code == 200
    assert (await api.request("GET", "/v1/listings", vendor)).status_code == 200
    created = await api.request("POST", "/v1/listings", vendor, json=listing_body())
    assert created.status_code < 500, created.text  # 429 too, under a mangled requests_per_minute
    if created.status_code == 201:
        submitted = await api.request("POST", f"/v1/listings/{created.json()['id']}/submit", vendor)
        assert submitted.status_code < 500, submitted.text


async def try_candidate(api: Api, clock: MovableClock, vendor: str, files: dict[str, str]) -> tuple[Any, Any]:
    """Dry-run and apply `files`, checking both answers; returns the two responses. An accepted
    set is replaced by the shipped one afterwards, so each example starts from the same rules
    (and a mangled `requests_per_minute` cannot starve the rest of the run: rule reads here are
    anonymous, which the limiter does not count, and each example starts a new minute)."""
    clock.advance(minutes=1)
    before = await rule_set(api)
    dry_run = await put(api, "/v1/rules/dry-run", {"files": files})
    dry_ok = check_answer(dry_run, files)
    assert await rule_set(api) == before, "a dry run changed the rule set"

    applied = await put(api, "/v1/rules", {"files": files, "reason": "fuzz 模糊测试"})
    applied_ok = check_answer(applied, files)
    after = await rule_set(api)
    if applied_ok:
        assert after == (before[0] + 1, applied.json()["hash"], before[2] + 1), (before, after)
        assert dry_run.json()["hash"] == applied.json()["hash"]
        await still_works(api, vendor)
        clock.advance(minutes=1)
        assert (await put(api, "/v1/rules", {"files": SHIPPED, "reason": "back to the shipped rules"})).status_code == 200
    else:
        assert after == before, "a refused set changed the active one"
    # The loader judges the same candidate the same way, dry run or not.
    assert dry_ok == applied_ok, (dry_run.text[:300], applied.text[:300])
    return dry_run, applied


# A refusal blames the file edited, or a file checked against it.
BLAMED = {"catalogue.toml": {"catalogue.toml", "listing.toml", "trading.toml"}}


@EXAMPLES
@given(files=mangled_candidates())
async def test_mangled_rule_text_is_applied_or_refused_naming_file_key_and_reason(api: Api, clock: MovableClock, files: dict[str, str]) -> None:
    await try_candidate(api, clock, await _vendor(api), files)


@EXAMPLES
@given(candidate=structured_candidates())
async def test_broken_rule_values_are_applied_or_refused_at_the_file_edited(api: Api, clock: MovableClock, candidate: tuple[str, dict[str, str]]) -> None:
    name, files = candidate
    dry_run, _ = await try_candidate(api, clock, await _vendor(api), files)
    if dry_run.status_code == 422:
        blamed = {error["file"] for error in dry_run.json()["errors"]}
        assert blamed <= BLAMED.get(name, {name}), dry_run.text


async def test_the_checks_see_both_answers(api: Api, clock: MovableClock) -> None:
    """A known-good edit is applied and known-bad ones are refused, through the same checks the
    fuzzing uses, so those checks are not vacuous."""
    vendor = await _vendor(api)
    harmless = {"listing.toml": SHIPPED["listing.toml"] + "\n# a comment changes nothing\n"}
    assert [r.status_code for r in await try_candidate(api, clock, vendor, harmless)] == [200, 200]
    # Valid, if hostile to everyone after it: one request a minute. The run carries on.
    throttled = {"trading.toml": SHIPPED["trading.toml"].replace("requests_per_minute = 1200", "requests_per_minute = 1")}
    assert [r.status_code for r in await try_candidate(api, clock, vendor, throttled)] == [200, 200]
    assert (await api.request("GET", "/v1/participants/me", vendor)).status_code == 200
    broken = {"catalogue.toml": SHIPPED["catalogue.toml"].replace("listable = false", 'listable = "no"', 1)}
    dry_run, _ = await try_candidate(api, clock, vendor, broken)
    assert dry_run.json()["errors"] == [{"file": "catalogue.toml", "key": "grades[3].listable", "reason": "Expected `bool`, got `str`"}]
    for text in (SHIPPED["fees.toml"] + "\x00", SHIPPED["fees.toml"] + "\ud800"):
        assert [r.status_code for r in await try_candidate(api, clock, vendor, {"fees.toml": text})] == [400, 400]


async def _vendor(api: Api) -> str:
    """One vendor per test: the api fixture lives across a test's examples."""
    if not hasattr(api, "hostile_vendor"):
        api.hostile_vendor = (await api.participant("vendor", qualifications=["data-merchant"], name="Vendor"))[1]  # type: ignore[attr-defined]
    return api.hostile_vendor  # type: ignore[attr-defined,no-any-return]
