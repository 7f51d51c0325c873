"""The RFC 6962 / RFC 9162 Merkle tree: hashes, the append frontier, proof ranges, proofs, verifiers.

Pure: no I/O. Proof builders read perfect subtree hashes through a `node(level, index)` callable,
so the storage adapter decides where they come from. Node (level L, index i) covers the leaves
[i * 2**L, (i + 1) * 2**L). Leaf arguments are leaf hashes (`leaf_hash` of the entry bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

_HASH_SIZE = 32
TILE_HEIGHT = 8
"""Besides leaf hashes, storage keeps only perfect nodes whose level is a positive multiple of this."""

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_EXTEND_CHUNK = 1 << 16  # bounds memory when extend is fed a long iterator

EMPTY_ROOT = _sha256(b"").digest()

_NodeSource = Callable[[int, int], bytes]
"""`node(level, index)`: the hash of a perfect subtree."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != _HASH_SIZE:
        raise ValueError(f"{what} must be a {_HASH_SIZE}-byte hash, got {len(value)} bytes")


def _is_hash(value: bytes) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview)) and len(value) == _HASH_SIZE


class Frontier:
    """The compact range of a tree of `size` leaves: roots of its perfect subtrees, largest first."""

    __slots__ = ("size", "hashes")

    def __init__(self) -> None:
        self.size = 0
        self.hashes: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier hashes, got {len(hashes)}")
        for value in hashes:
            _check_hash(value, "frontier hash")
        frontier = cls()
        frontier.size = size
        frontier.hashes = [bytes(value) for value in hashes]
        return frontier

    def copy(self) -> Frontier:
        frontier = Frontier()
        frontier.size = self.size
        frontier.hashes = list(self.hashes)
        return frontier

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self.size == other.size and self.hashes == other.hashes

    def __repr__(self) -> str:
        return f"Frontier(size={self.size}, hashes=[{', '.join(h.hex()[:12] for h in self.hashes)}])"

    def root(self) -> bytes:
        if not self.size:
            return EMPTY_ROOT
        hashes = self.hashes
        root = hashes[-1]
        for left in reversed(hashes[:-1]):
            root = _sha256(_NODE_PREFIX + left + root).digest()
        return root

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the stored-level nodes it completed as (level, index, hash), lowest first."""
        _check_hash(leaf, "leaf hash")
        completed: list[tuple[int, int, bytes]] = []
        self.size = _push(self.hashes, self.size, 0, bytes(leaf), completed)
        return completed

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Add many leaf hashes; return the stored-level nodes completed, sorted by (level, index).

        All or nothing: a bad leaf hash raises ValueError and leaves the frontier unchanged.
        """
        size, hashes = self.size, list(self.hashes)
        completed: list[tuple[int, int, bytes]] = []
        iterator = iter(leaves)
        while chunk := list(islice(iterator, _EXTEND_CHUNK)):
            if set(map(len, chunk)) != {_HASH_SIZE}:
                raise ValueError(f"leaf hashes must be {_HASH_SIZE} bytes")
            size = _extend_chunk(hashes, size, chunk, completed)
        self.size, self.hashes = size, hashes
        completed.sort()  # (level, index) pairs are distinct, so hashes are never compared
        return completed


def _push(hashes: list[bytes], size: int, level: int, value: bytes, completed: list[tuple[int, int, bytes]]) -> int:
    """Add a perfect subtree of 2**level leaves (size must be a multiple of that); return the new size."""
    new_size = size + (1 << level)
    index = size >> level
    while index & 1:  # an equal-sized subtree is waiting on the left: merge, and carry like binary addition
        value = _sha256(_NODE_PREFIX + hashes.pop() + value).digest()
        level += 1
        index >>= 1
        if level % TILE_HEIGHT == 0:
            completed.append((level, index, value))
    hashes.append(value)
    return new_size


def _fold_level(hashes: list[bytes]) -> list[bytes]:
    """The parents of an even-length run of sibling hashes."""
    sha256, prefix = _sha256, _NODE_PREFIX
    return [sha256(prefix + left + right).digest() for left, right in zip(hashes[0::2], hashes[1::2], strict=True)]


def _extend_chunk(hashes: list[bytes], size: int, leaves: list[bytes], completed: list[tuple[int, int, bytes]]) -> int:
    # Fold the largest aligned power-of-two block at a time, level by level in list comprehensions:
    # this keeps nearly all hashing out of the interpreter's per-leaf loop overhead.
    tile = TILE_HEIGHT
    position, count = 0, len(leaves)
    while position < count:
        height = (count - position).bit_length() - 1
        if size:
            height = min(height, (size & -size).bit_length() - 1)
        block = leaves[position : position + (1 << height)]
        for level in range(1, height + 1):
            block = _fold_level(block)
            if level % tile == 0:
                first = size >> level
                completed.extend([(level, first + offset, value) for offset, value in enumerate(block)])
        position += 1 << height
        size = _push(hashes, size, height, block[0], completed)
    return size


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root of a tree of these leaf hashes."""
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) making up [start, end), left to right.

    The range must be a subtree of some RFC 6962 tree (the only ranges proofs use): start is a
    multiple of the smallest power of two >= end - start. Other ranges raise ValueError, as the
    greedy split would not give their Merkle tree hash.
    """
    if not 0 <= start < end:
        raise ValueError(f"need 0 <= start < end, got [{start}, {end})")
    if start % (1 << (end - start - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not a subtree of a Merkle tree")
    subtrees = []
    while start < end:
        level = (end - start).bit_length() - 1  # alignment holds by the check above, and stays so
        subtrees.append((level, start >> level))
        start += 1 << level
    return subtrees


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[size]) of RFC 6962 §2.1.1, bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"need 0 <= index < size, got index {index}, size {size}")
    ranges = []
    start, end = 0, size
    while end - start > 1:  # walk down from the root; the siblings met are the path, top-down
        middle = start + _largest_power_of_two_below(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(first, D[second]) of RFC 6962 §2.1.2, bottom-up."""
    if not 0 < first <= second:
        raise ValueError(f"need 0 < first <= second, got {first}, {second}")
    ranges = []
    start, end = 0, second
    whole_old_tree = True  # SUBPROOF's b: the subtree we stand in is still the whole first tree
    while first != end:
        middle = start + _largest_power_of_two_below(end - start)
        if first <= middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def hash_range(start: int, end: int, node: _NodeSource) -> bytes:
    """The Merkle tree hash of leaves [start, end), from `node(level, index)` of its perfect subtrees."""
    subtrees = perfect_subtrees(start, end)
    result = node(*subtrees[-1])
    for level, index in reversed(subtrees[:-1]):
        result = _sha256(_NODE_PREFIX + node(level, index) + result).digest()
    return result


def needed_nodes(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The distinct perfect nodes (level, index) that hashing these ranges reads, in first-use order."""
    return list(dict.fromkeys(subtree for start, end in ranges for subtree in perfect_subtrees(start, end)))


def stored_cover(level: int, index: int) -> tuple[int, int, int]:
    """Where a perfect node is computed from: (stored level, first index, end index) at that level.

    The stored level is the largest multiple of TILE_HEIGHT <= level (0 means leaf hashes).
    """
    if level < 0 or index < 0:
        raise ValueError(f"need level >= 0 and index >= 0, got ({level}, {index})")
    stored = level - level % TILE_HEIGHT
    span = 1 << (level - stored)
    return stored, index * span, (index + 1) * span


def fold_perfect(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its 2**k hashes at one level, left to right."""
    count = len(hashes)
    if count == 0 or count & (count - 1):
        raise ValueError(f"need a power of two hashes, got {count}")
    level = list(hashes)
    while len(level) > 1:
        level = _fold_level(level)
    return level[0]


def inclusion_proof(index: int, size: int, node: _NodeSource) -> list[bytes]:
    return [hash_range(start, end, node) for start, end in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, node: _NodeSource) -> list[bytes]:
    return [hash_range(start, end, node) for start, end in consistency_ranges(first, second)]


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """Whether `path` proves leaf hash `leaf` at `index` in the tree of `size` with `root` (RFC 9162 §2.1.3.2).

    False, not an exception, for: index outside [0, size); a leaf, root or path element that is
    not a 32-byte hash; a path too short or too long.
    """
    if not 0 <= index < size or not _is_hash(leaf) or not _is_hash(root):
        return False
    if not all(_is_hash(element) for element in path):
        return False
    fn, sn, result = index, size - 1, bytes(leaf)
    for element in path:
        if sn == 0:  # path longer than the tree is tall
            return False
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            if not fn & 1:
                while not fn & 1 and fn:  # skip the levels where we are a lone right-edge node
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, element)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """Whether `path` proves the tree of `first` leaves is a prefix of the one of `second` (RFC 9162 §2.1.4.2).

    Decisions, all False rather than exceptions: a proof from size 0 is refused (the empty tree
    is a prefix of anything, so there is nothing to prove); equal sizes need an empty path and
    equal roots; first > second, a root or path element that is not a 32-byte hash, or a path
    too short or too long fails.
    """
    if not 0 < first <= second or not _is_hash(first_root) or not _is_hash(second_root):
        return False
    if not all(_is_hash(element) for element in path):
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # the old tree is a perfect subtree: its root is the path's start
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_result = second_result = bytes(path[0])
    for element in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(element, first_result)
            second_result = node_hash(element, second_result)
            if not fn & 1:
                while not fn & 1 and fn:
                    fn >>= 1
                    sn >>= 1
        else:
            second_result = node_hash(second_result, element)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first_result == first_root and second_result == second_root


class MemoryTree:
    """All leaf hashes in memory, for tests and offline tools; perfect nodes are computed once."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaves)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        _check_hash(leaf, "leaf hash")
        self._levels[0].append(bytes(leaf))

    def extend(self, leaves: Iterable[bytes]) -> None:
        new = [bytes(leaf) for leaf in leaves]
        if new and set(map(len, new)) != {_HASH_SIZE}:
            raise ValueError(f"leaf hashes must be {_HASH_SIZE} bytes")
        self._levels[0].extend(new)

    def node(self, level: int, index: int) -> bytes:
        """The hash of perfect node (level, index); IndexError if the tree does not cover it yet."""
        if level < 0 or index < 0 or (index + 1) << level > self.size:
            raise IndexError(f"no perfect node ({level}, {index}) in a tree of {self.size} leaves")
        self._complete_levels(level)
        return self._levels[level][index]

    def _complete_levels(self, top: int) -> None:
        # Each level is a list grown on demand from the one below, so a node is hashed once.
        levels = self._levels
        for level in range(1, top + 1):
            if level == len(levels):
                levels.append([])
            below, current = levels[level - 1], levels[level]
            if len(current) < len(below) // 2:
                current.extend(_fold_level(below[2 * len(current) : len(below) & ~1]))

    def root(self, size: int | None = None) -> bytes:
        """The root of the first `size` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"need 0 <= size <= {self.size}, got {size}")
        return hash_range(0, size, self.node) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.node)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(first, self.size if second is None else second, self.node)
