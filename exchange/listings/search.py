"""Search tokens, the same on SQLite FTS5 and PostgreSQL: lower-cased Latin words and numbers,
and for Chinese (and other CJK) text every character and every pair of neighbouring characters.

Two-character words such as 交通 are the commonest Chinese queries; a trigram index misses
them, a word segmenter needs a dictionary. Bigrams find any Chinese substring of two or more
characters (a query's bigrams must all be present), single characters find one-character
queries, and no dictionary is needed. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata

TOKENS_MAX = 64  # a query longer than this is cut: it could only narrow the result further

_RUN = re.compile(
    r"[0-9a-z]+"  # Latin words and numbers
    r"|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+"  # CJK runs
)


def _runs(text: str) -> list[str]:
    return _RUN.findall(unicodedata.normalize("NFKC", text).lower())


def _is_latin(run: str) -> bool:
    return run[0].isascii()


def tokens_for(text: str) -> list[str]:
    """Index tokens of a document, in order, duplicates kept (ranking counts them)."""
    tokens: list[str] = []
    for run in _runs(text):
        if _is_latin(run):
            tokens.append(run)
            continue
        tokens.extend(run)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


class Query:
    """A parsed search: every term must match. Latin terms match as prefixes (`traf` finds
    `traffic`); Chinese terms match exactly against the index's characters and bigrams."""

    def __init__(self, exact: list[str], prefixes: list[str]) -> None:
        self.exact = exact
        self.prefixes = prefixes

    @property
    def empty(self) -> bool:
        return not self.exact and not self.prefixes

    def fts5(self) -> str:
        """An FTS5 MATCH expression; tokens hold only letters and digits, so quoting is safe."""
        terms = [f'"{t}"' for t in self.exact] + [f'"{t}"*' for t in self.prefixes]
        return " AND ".join(terms)

    def tsquery(self) -> str:
        """A PostgreSQL tsquery in its text form, cast with ::tsquery (no parser involved)."""
        terms = [f"'{t}'" for t in self.exact] + [f"'{t}':*" for t in self.prefixes]
        return " & ".join(terms)


def parse_query(text: str) -> Query:
    exact: list[str] = []
    prefixes: list[str] = []
    for run in _runs(text):
        if _is_latin(run):
            prefixes.append(run)
        elif len(run) == 1:
            exact.append(run)
        else:
            exact.extend(run[i : i + 2] for i in range(len(run) - 1))
    return Query(_unique(exact)[:TOKENS_MAX], _unique(prefixes)[:TOKENS_MAX])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
