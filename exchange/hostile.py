"""Checks of a decoded JSON body against its raw bytes, shared by `app.refuse_hostile_input`
(which refuses, naming the field) and the order entry path (which leaves anything they find to
it): pure functions, no framework."""

from __future__ import annotations

import re
from typing import Any

_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_MEMBER_NAME = re.compile(rb'"\s*:')
"""Where a member name ends: every member has one, and so may a string holding `":`, never fewer."""
SHALLOW = 32


def first_not_text(decoded: Any) -> tuple[str, str] | None:
    """Where a string or member name holds U+0000 or a lone surrogate (PostgreSQL cannot store
    either), and which: None when none does."""
    stack: list[tuple[str, Any]] = [("", decoded)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack += [(f"{where}.{key}" if where else key, item) for key, item in value.items()]
            value = "".join(value)
        elif isinstance(value, list):
            stack += [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        if isinstance(value, str) and (found := _NOT_TEXT.search(value)):
            return where, found.group()
    return None


def shape(decoded: Any) -> tuple[int, int]:
    """The members of every object in `decoded` (a name given twice counts once) and its depth.
    When the members equal the raw body's member-name endings, no name was given twice."""
    members = depth = 0
    stack: list[tuple[Any, int]] = [(decoded, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            members += len(value)
            stack += [(item, level + 1) for item in value.values()]
        elif isinstance(value, list):
            stack += [(item, level + 1) for item in value]
        depth = max(depth, level)
    return members, depth


def plain_members(decoded: Any, body: bytes) -> bool:
    """No member named twice, no deep nesting: otherwise the standard parser, which sees every
    pair and has its own depth limit, must decide."""
    members, depth = shape(decoded)
    return members == len(_MEMBER_NAME.findall(body)) and depth <= SHALLOW
