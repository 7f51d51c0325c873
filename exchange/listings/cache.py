"""Public catalogue search answers, kept while the catalogue version stands.

Every committed change to what a public search reads moves the catalogue version (database
triggers, migration 0018), and each search reads the version before it reads any listing. An
answer kept under version V was read after V was committed, so it is never older than what a
search reading V would have found; the first search that reads a newer version empties the cache.
Public means what anyone sees: no vendor's unlisted products and no review queue, so the answer
is the same for every such caller."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PageCache(Generic[T]):
    """The most recently used answers of one catalogue version, at most `size` of them."""

    def __init__(self, size: int) -> None:  # Settings.search_cache_pages
        self.size = size
        self.version: int | None = None
        self._pages: OrderedDict[Hashable, T] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, version: int, key: Hashable) -> T | None:
        if version != self.version:
            self.misses += 1
            return None
        page = self._pages.get(key)
        if page is None:
            self.misses += 1
            return None
        self._pages.move_to_end(key)
        self.hits += 1
        return page

    def put(self, version: int, key: Hashable, page: T) -> None:
        if self.version is None or version > self.version:
            self._pages.clear()
            self.version = version
        elif version < self.version:
            return  # read before a change another search has already seen: not kept
        self._pages[key] = page
        self._pages.move_to_end(key)
        while len(self._pages) > self.size:
            self._pages.popitem(last=False)
