"""The Merkle module against the published RFC 6962 vectors and an independent naive implementation."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.settlement.merkle import (
    EMPTY_ROOT,
    TILE_HEIGHT,
    Frontier,
    MemoryTree,
    consistency_proof,
    consistency_ranges,
    fold_perfect,
    hash_range,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    needed_nodes,
    node_hash,
    perfect_subtrees,
    root_of,
    stored_cover,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "rfc6962"
PROPERTIES = settings(max_examples=200, deadline=None)

# Deliberate deviation from the Go verifier the vectors were written for: it compares the roots of
# equal-sized trees whatever their length; we refuse anything that is not a 32-byte hash.
REFUSED_ON_PURPOSE = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": "its 'roots' are 12 bytes (b\"don't care 2\")",
}

STANDARD_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
STANDARD_ROOTS = {  # the known roots of the first n standard leaves
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
STANDARD_TREE = MemoryTree(leaf_hash(data) for data in STANDARD_LEAVES)

LEAVES = tuple(leaf_hash(b"entry %d" % number) for number in range(1600))
TREE = MemoryTree(LEAVES)


# --- the published vectors ---------------------------------------------------------------------


def vector_files(kind: str) -> list[Any]:
    paths = sorted(VECTORS.glob(f"{kind}/**/*.json"))
    assert paths, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(path, id=path.relative_to(VECTORS).as_posix()) for path in paths]


def load(path: Path) -> dict[str, Any]:
    vector = json.loads(path.read_text(encoding="utf-8"))
    decoded = {key: base64.b64decode(value) for key, value in vector.items() if key in ("root", "leafHash", "root1", "root2")}
    return vector | decoded | {"proof": [base64.b64decode(element) for element in vector["proof"] or []]}


def expected_verdict(path: Path, vector: dict[str, Any]) -> bool:
    return not vector["wantErr"] and path.relative_to(VECTORS).as_posix() not in REFUSED_ON_PURPOSE


@pytest.mark.parametrize("path", vector_files("inclusion"))
def test_verify_inclusion_accepts_exactly_the_valid_vectors(path: Path) -> None:
    vector = load(path)
    verdict = verify_inclusion(vector["leafIdx"], vector["treeSize"], vector["leafHash"], vector["proof"], vector["root"])
    assert verdict is expected_verdict(path, vector), vector["desc"]


@pytest.mark.parametrize("path", vector_files("consistency"))
def test_verify_consistency_accepts_exactly_the_valid_vectors(path: Path) -> None:
    vector = load(path)
    verdict = verify_consistency(vector["size1"], vector["size2"], vector["root1"], vector["root2"], vector["proof"])
    assert verdict is expected_verdict(path, vector), vector["desc"]


def test_the_deliberate_deviations_are_still_in_the_vectors() -> None:
    for name in REFUSED_ON_PURPOSE:
        assert load(VECTORS / name)["wantErr"] is False, f"{name} changed: review REFUSED_ON_PURPOSE"


def test_equal_sizes_with_equal_32_byte_roots_and_an_empty_proof_are_consistent() -> None:
    root = LEAVES[0]
    assert verify_consistency(1, 1, root, root, [])
    assert not verify_consistency(1, 1, root, root, [root])
    assert not verify_consistency(1, 1, root, LEAVES[1], [])


def happy_paths(kind: str) -> list[dict[str, Any]]:
    return [load(path) for path in sorted(VECTORS.glob(f"{kind}/*/happy-path.json"))]


def test_standard_leaves_give_the_known_roots_and_those_in_the_vectors() -> None:
    hashes = [leaf_hash(data) for data in STANDARD_LEAVES]
    roots = {size: root_of(hashes[:size]) for size in range(1, 9)}
    assert {size: root.hex() for size, root in roots.items()} == STANDARD_ROOTS
    assert {size: STANDARD_TREE.root(size) for size in range(1, 9)} == roots
    seen = set()
    for vector in happy_paths("inclusion"):
        assert roots[vector["treeSize"]] == vector["root"]
        seen.add(vector["treeSize"])
    for vector in happy_paths("consistency"):
        assert roots[vector["size1"]] == vector["root1"]
        assert roots[vector["size2"]] == vector["root2"]
        seen |= {vector["size1"], vector["size2"]}
    assert len(seen) >= 5


def test_proofs_built_from_a_memory_tree_equal_the_happy_path_vectors() -> None:
    for vector in happy_paths("inclusion"):
        assert leaf_hash(STANDARD_LEAVES[vector["leafIdx"]]) == vector["leafHash"]
        assert inclusion_proof(vector["leafIdx"], vector["treeSize"], STANDARD_TREE.node) == vector["proof"], vector
    for vector in happy_paths("consistency"):
        assert consistency_proof(vector["size1"], vector["size2"], STANDARD_TREE.node) == vector["proof"], vector


# --- an independent, naive implementation straight from RFC 6962 §2.1 ---------------------------


def naive_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def naive_mth(start: int, end: int) -> bytes:
    """MTH(LEAVES[start:end]); cached because the leaves never change."""
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAVES[start]
    k = split(n)
    return naive_node(naive_mth(start, start + k), naive_mth(start + k, end))


def naive_path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, LEAVES[start:end])."""
    n = end - start
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return naive_path(m, start, start + k) + [naive_mth(start + k, end)]
    return naive_path(m - k, start + k, end) + [naive_mth(start, start + k)]


def naive_subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, LEAVES[start:end], whole)."""
    n = end - start
    if m == n:
        return [] if whole else [naive_mth(start, end)]
    k = split(n)
    if m <= k:
        return naive_subproof(m, start, start + k, whole) + [naive_mth(start + k, end)]
    return naive_subproof(m - k, start + k, end, False) + [naive_mth(start, start + k)]


def naive_verify_inclusion(m: int, n: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """Rebuild the root top-down along the RFC split, taking path elements from the top (its end)."""
    if not 0 <= m < n:
        return False
    remaining = list(path)

    def rebuild(m: int, n: int) -> bytes:
        if n == 1:
            return leaf
        k = split(n)
        sibling = remaining.pop()
        if m < k:
            return naive_node(rebuild(m, k), sibling)
        return naive_node(sibling, rebuild(m - k, n - k))

    try:
        rebuilt = rebuild(m, n)
    except IndexError:  # path too short
        return False
    return not remaining and rebuilt == root


def naive_verify_consistency(m: int, n: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """Rebuild both roots top-down along SUBPROOF, taking path elements from the top (its end)."""
    if not 0 < m <= n:
        return False
    remaining = list(path)

    def rebuild(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            value = first_root if whole else remaining.pop()
            return value, value
        k = split(n)
        sibling = remaining.pop()
        if m <= k:
            old, new = rebuild(m, k, whole)
            return old, naive_node(new, sibling)
        old, new = rebuild(m - k, n - k, False)
        return naive_node(sibling, old), naive_node(sibling, new)

    try:
        old, new = rebuild(m, n, True)
    except IndexError:
        return False
    return not remaining and old == first_root and new == second_root


def flip_bit(value: bytes, bit: int) -> bytes:
    bit %= 8 * len(value)
    return value[: bit // 8] + bytes([value[bit // 8] ^ (1 << bit % 8)]) + value[bit // 8 + 1 :]


# --- properties ---------------------------------------------------------------------------------


def test_frontier_roots_equal_naive_roots_for_every_size() -> None:
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT == naive_mth(0, 0)
    for size, leaf in enumerate(LEAVES, start=1):
        frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.hashes) == size.bit_count()
        assert frontier.root() == naive_mth(0, size), size


@PROPERTIES
@given(st.data())
def test_proofs_equal_naive_and_verify(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    root, first_root, leaf = naive_mth(0, size), naive_mth(0, first), LEAVES[index]

    path = inclusion_proof(index, size, TREE.node)
    assert path == naive_path(index, 0, size)
    assert verify_inclusion(index, size, leaf, path, root)
    assert naive_verify_inclusion(index, size, leaf, path, root)

    proof = consistency_proof(first, size, TREE.node)
    assert proof == naive_subproof(first, 0, size, True)
    assert verify_consistency(first, size, first_root, root, proof)
    assert naive_verify_consistency(first, size, first_root, root, proof)


@PROPERTIES
@given(st.data())
def test_verifiers_reject_any_flipped_bit(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    bit = data.draw(st.integers(0, 255), label="bit")
    root, first_root, leaf = naive_mth(0, size), naive_mth(0, first), LEAVES[index]
    path = naive_path(index, 0, size)
    proof = naive_subproof(first, 0, size, True)

    assert not verify_inclusion(index, size, flip_bit(leaf, bit), path, root)
    assert not verify_inclusion(index, size, leaf, path, flip_bit(root, bit))
    for position in range(len(path)):
        tampered = path[:position] + [flip_bit(path[position], bit)] + path[position + 1 :]
        assert not verify_inclusion(index, size, leaf, tampered, root)

    assert not verify_consistency(first, size, flip_bit(first_root, bit), root, proof)
    assert not verify_consistency(first, size, first_root, flip_bit(root, bit), proof)
    for position in range(len(proof)):
        tampered = proof[:position] + [flip_bit(proof[position], bit)] + proof[position + 1 :]
        assert not verify_consistency(first, size, first_root, root, tampered)


@PROPERTIES
@given(st.data())
def test_verifiers_reject_wrong_indices_and_agree_with_the_naive_verifier_on_wrong_sizes(data: st.DataObject) -> None:
    # A wrong size passes only when its proof has exactly the same shape as the true one: a
    # verifier cannot tell, and the signed tree head binds size to root. So: a wrong index always
    # fails, and on wrong sizes the RFC 9162 verifiers agree with a naive top-down rebuild.
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    root, first_root, leaf = naive_mth(0, size), naive_mth(0, first), LEAVES[index]
    path = naive_path(index, 0, size)
    proof = naive_subproof(first, 0, size, True)

    for wrong_index in {index - 1, index + 1, index ^ 1, index ^ 2, size, -1, 2**64 - 1} - {index}:
        assert not verify_inclusion(wrong_index, size, leaf, path, root), wrong_index
    for wrong_size in {size - 1, size + 1, size * 2, size // 2, size ^ 1, 0, -1} - {size}:
        expected = naive_verify_inclusion(index, wrong_size, leaf, path, root)
        assert verify_inclusion(index, wrong_size, leaf, path, root) is expected, wrong_size

    for wrong_first in {first - 1, first + 1, first ^ 1, first * 2, 0} - {first}:
        expected = naive_verify_consistency(wrong_first, size, first_root, root, proof)
        assert verify_consistency(wrong_first, size, first_root, root, proof) is expected, wrong_first
    for wrong_second in {size - 1, size + 1, size * 2, size ^ 1} - {size}:
        expected = naive_verify_consistency(first, wrong_second, first_root, root, proof)
        assert verify_consistency(first, wrong_second, first_root, root, proof) is expected, wrong_second
    if size > 1:
        assert not verify_inclusion(index, size, leaf, path + [leaf], root)
        assert not verify_inclusion(index, size, leaf, path[:-1], root)
    if first < size:
        assert not verify_consistency(first, size, first_root, root, proof + [leaf])
        assert not verify_consistency(first, size, first_root, root, proof[:-1])
        assert not verify_consistency(first, size, first_root, root, [leaf] + proof)


def test_verifiers_refuse_hashes_that_are_not_32_bytes_and_meaningless_sizes() -> None:
    leaf, root = LEAVES[0], naive_mth(0, 2)
    path = naive_path(0, 0, 2)
    assert verify_inclusion(0, 2, leaf, path, root)
    assert not verify_inclusion(0, 2, leaf + b"\x00", path, root)
    assert not verify_inclusion(0, 2, leaf, path, root[:-1])
    assert not verify_inclusion(0, 2, leaf, [path[0] + b"\x00"], root)
    assert not verify_inclusion(0, 0, leaf, [], EMPTY_ROOT)
    first_root = naive_mth(0, 1)
    proof = naive_subproof(1, 0, 2, True)
    assert verify_consistency(1, 2, first_root, root, proof)
    assert not verify_consistency(1, 2, first_root, root, [proof[0][:16]])
    assert not verify_consistency(1, 2, first_root, root, [])
    assert not verify_consistency(0, 2, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(2, 1, root, first_root, [])


# --- stored levels: Frontier emissions, stored_cover, fold_perfect -------------------------------


def emitted_one_by_one(start: int, end: int) -> tuple[Frontier, list[tuple[int, int, bytes]]]:
    frontier = Frontier()
    for leaf in LEAVES[:start]:
        frontier.append(leaf)
    completed = []
    for leaf in LEAVES[start:end]:
        completed += frontier.append(leaf)
    return frontier, completed


def test_nodes_emitted_by_append_are_the_naive_hashes_of_their_ranges() -> None:
    _, completed = emitted_one_by_one(0, len(LEAVES))
    assert [(level, index) for level, index, _ in completed] == [(8, index) for index in range(len(LEAVES) // 256)]
    for level, index, value in completed:
        assert value == naive_mth(index << level, (index + 1) << level)


@PROPERTIES
@given(start=st.integers(0, 700), chunks=st.lists(st.integers(0, 400), max_size=4))
def test_extend_matches_append_one_by_one(start: int, chunks: list[int]) -> None:
    end = min(start + sum(chunks), len(LEAVES))
    expected_frontier, expected_completed = emitted_one_by_one(start, end)
    frontier = Frontier()
    frontier.extend(LEAVES[:start])
    completed = []
    position = start
    for length in chunks:
        completed += frontier.extend(iter(LEAVES[position : min(position + length, end)]))
        position = min(position + length, end)
    assert frontier == expected_frontier
    assert sorted(completed) == sorted(expected_completed)


def test_extend_over_two_tiles_emits_level_16_like_append_and_the_memory_tree() -> None:
    leaves = [leaf_hash(number.to_bytes(4, "big")) for number in range((1 << 16) + 300)]
    bulk = Frontier()
    bulk_completed = bulk.extend(leaves[:77]) + bulk.extend(leaves[77:])
    single = Frontier()
    single_completed = [node for leaf in leaves for node in single.append(leaf)]
    assert bulk == single
    assert sorted(bulk_completed) == sorted(single_completed)
    tree = MemoryTree(leaves)
    assert {(level, index): value for level, index, value in bulk_completed} == {
        (level, index): tree.node(level, index) for level in (8, 16) for index in range(len(leaves) >> level)
    }
    level_8 = [value for level, _, value in sorted(bulk_completed) if level == 8]
    assert fold_perfect(level_8[:256]) == tree.node(16, 0)
    assert bulk.root() == tree.root() == root_of(leaves)


class StoredLevels:
    """What the database keeps: leaf hashes and the nodes the frontier emitted; records reads per level."""

    def __init__(self, size: int) -> None:
        frontier = Frontier()
        emitted = frontier.extend(LEAVES[:size])
        self.stored: dict[int, dict[int, bytes]] = {0: dict(enumerate(LEAVES[:size]))}
        for level, index, value in emitted:
            self.stored.setdefault(level, {})[index] = value
        self.reads: dict[int, int] = {}

    def node(self, level: int, index: int) -> bytes:
        stored, first, end = stored_cover(level, index)
        self.reads[stored] = self.reads.get(stored, 0) + end - first
        return fold_perfect([self.stored[stored][position] for position in range(first, end)])


@PROPERTIES
@given(st.data())
def test_hash_range_from_stored_levels_equals_naive(data: st.DataObject) -> None:
    size = data.draw(st.one_of(st.integers(1, 300), st.integers(257, 1500)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    store = StoredLevels(size)
    assert hash_range(0, size, store.node) == naive_mth(0, size)
    # the root reads one stored level-8 node per 256 leaves, and leaf hashes only for the rest
    assert store.reads == {level: count for level, count in ((8, size >> 8), (0, size & 255)) if count}
    for start, end in inclusion_ranges(index, size) + consistency_ranges(first, size):
        assert hash_range(start, end, store.node) == naive_mth(start, end)
    assert inclusion_proof(index, size, store.node) == naive_path(index, 0, size)


def test_stored_cover() -> None:
    assert stored_cover(0, 5) == (0, 5, 6)
    assert stored_cover(3, 2) == (0, 16, 24)
    assert stored_cover(TILE_HEIGHT, 7) == (8, 7, 8)
    assert stored_cover(11, 1) == (8, 8, 16)
    assert stored_cover(16, 0) == (16, 0, 1)
    assert stored_cover(23, 3) == (16, 384, 512)
    with pytest.raises(ValueError):
        stored_cover(-1, 0)


def test_fold_perfect() -> None:
    assert fold_perfect(LEAVES[:1]) == LEAVES[0]
    assert fold_perfect(LEAVES[:8]) == naive_mth(0, 8)
    for count in (0, 3, 6):
        with pytest.raises(ValueError):
            fold_perfect(LEAVES[:count])


# --- ranges and the builders' inputs ------------------------------------------------------------


def test_perfect_subtrees_and_ranges() -> None:
    assert perfect_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert perfect_subtrees(8, 13) == [(2, 2), (0, 12)]
    assert perfect_subtrees(256, 300) == [(5, 8), (3, 36), (2, 74)]
    assert inclusion_ranges(0, 1) == []
    assert inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert inclusion_ranges(6, 7) == [(4, 6), (0, 4)]
    assert consistency_ranges(3, 3) == []
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(4, 7) == [(4, 7)]
    assert consistency_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]


@pytest.mark.parametrize(("start", "end"), [(0, 0), (3, 2), (-1, 3), (1, 3), (2, 5), (4, 13)])
def test_perfect_subtrees_refuses_ranges_that_are_not_subtrees(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        perfect_subtrees(start, end)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (-1, 3), (5, 4)])
def test_inclusion_ranges_refuses_bad_input(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        inclusion_ranges(index, size)


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 3), (4, 3), (-1, 2)])
def test_consistency_ranges_refuses_bad_input(first: int, second: int) -> None:
    with pytest.raises(ValueError):
        consistency_ranges(first, second)


@PROPERTIES
@given(st.data())
def test_needed_nodes_are_exactly_what_the_builders_read(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 1500), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    for ranges, build in (
        (inclusion_ranges(index, size), lambda node: inclusion_proof(index, size, node)),
        (consistency_ranges(first, size), lambda node: consistency_proof(first, size, node)),
    ):
        needed = needed_nodes(ranges)
        assert len(needed) == len(set(needed))
        fetched = {(level, position): TREE.node(level, position) for level, position in needed}
        read = []

        def node(level: int, position: int, fetched: dict[tuple[int, int], bytes] = fetched, read: list[Any] = read) -> bytes:
            read.append((level, position))
            return fetched[level, position]

        assert build(node) == build(TREE.node)
        assert set(read) == set(needed)


# --- Frontier and MemoryTree details ------------------------------------------------------------


def test_frontier_state_round_trips_and_is_validated() -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:13])
    restored = Frontier.from_state(13, frontier.hashes)
    assert restored == frontier and restored.root() == frontier.root()
    copy = frontier.copy()
    copy.append(LEAVES[13])
    assert frontier.size == 13 and copy.size == 14 and copy != frontier
    assert Frontier.from_state(0, []) == Frontier()
    for size, hashes in ((13, frontier.hashes[:2]), (12, frontier.hashes), (-1, []), (1, [b"short"])):
        with pytest.raises(ValueError):
            Frontier.from_state(size, hashes)


def test_frontier_refuses_leaves_that_are_not_32_bytes_and_extend_is_all_or_nothing() -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:5])
    before = frontier.copy()
    with pytest.raises(ValueError):
        frontier.append(b"\x00" * 31)
    with pytest.raises(ValueError):
        frontier.extend([*LEAVES[5:9], b"x"])
    assert frontier == before
    assert frontier.extend([]) == []
    assert frontier == before


def test_memory_tree() -> None:
    tree = MemoryTree(LEAVES[:5])
    assert tree.size == 5 and tree.root() == naive_mth(0, 5) and tree.root(0) == EMPTY_ROOT
    assert tree.node(2, 0) == naive_mth(0, 4)
    with pytest.raises(IndexError):
        tree.node(1, 2)
    tree.append(LEAVES[5])
    tree.extend(LEAVES[6:8])
    assert tree.node(1, 2) == naive_mth(4, 6) and tree.node(3, 0) == naive_mth(0, 8)
    assert tree.inclusion_proof(3) == naive_path(3, 0, 8)
    assert tree.consistency_proof(3, 7) == naive_subproof(3, 0, 7, True)
    with pytest.raises(ValueError):
        tree.root(9)
    with pytest.raises(ValueError):
        tree.append(b"short")


def test_node_and_leaf_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == bytes.fromhex(STANDARD_ROOTS[1])
    assert node_hash(LEAVES[0], LEAVES[1]) == hashlib.sha256(b"\x01" + LEAVES[0] + LEAVES[1]).digest()
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
