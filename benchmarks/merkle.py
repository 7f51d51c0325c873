"""Merkle throughput: leaf hashing + Frontier.extend, and proof building from a MemoryTree.

Run from the repository root: `.venv/bin/python benchmarks/merkle.py [leaves]` (default 1,000,000
leaves of 200 bytes). Prints figures only; no assertions on time.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, result  # noqa: E402

from exchange.settlement.merkle import (  # noqa: E402
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

LEAF_BYTES = 200
PROOFS = 10_000


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    header()

    entries = [random.randbytes(LEAF_BYTES) for _ in range(count)]

    started = time.perf_counter()
    leaves = list(map(leaf_hash, entries))
    hashed = time.perf_counter()
    frontier = Frontier()
    completed = frontier.extend(leaves)
    root = frontier.root()
    extended = time.perf_counter()
    total = extended - started
    print(f"leaf_hash:                 {count / (hashed - started):>12,.0f} leaves/s")
    print(f"Frontier.extend:           {count / (extended - hashed):>12,.0f} leaves/s")
    print(f"leaf_hash + extend:        {count / total:>12,.0f} leaves/s  ({count:,} leaves of {LEAF_BYTES} B in {total:.2f} s)")
    print(f"  stored nodes emitted: {len(completed):,}; root {root.hex()}")
    result("Merkle log: leaf hash + append", round(count / total), "leaves/s", size=f"{count:,} leaves of {LEAF_BYTES} B",
           note="the tree alone, one core")

    frontier = Frontier()
    started = time.perf_counter()
    for leaf in leaves[:100_000]:
        frontier.append(leaf)
    appended = time.perf_counter() - started
    print(f"Frontier.append (1 by 1):  {min(count, 100_000) / appended:>12,.0f} leaves/s")

    started = time.perf_counter()
    tree = MemoryTree(leaves)
    if tree.root() != root:
        raise SystemExit("MemoryTree and Frontier disagree on the root")
    built = time.perf_counter() - started
    print(f"MemoryTree build + root:   {built:.2f} s (hashes every perfect node once)")

    size = count
    indices = [random.randrange(size) for _ in range(PROOFS)]
    started = time.perf_counter()
    paths = [inclusion_proof(index, size, tree.node) for index in indices]
    elapsed = time.perf_counter() - started
    print(f"inclusion_proof:           {elapsed / PROOFS * 1e6:>9.1f} µs/proof  ({len(paths[0])} hashes each)")

    firsts = [random.randrange(1, size + 1) for _ in range(PROOFS)]
    started = time.perf_counter()
    proofs = [consistency_proof(first, size, tree.node) for first in firsts]
    elapsed = time.perf_counter() - started
    print(f"consistency_proof:         {elapsed / PROOFS * 1e6:>9.1f} µs/proof")

    started = time.perf_counter()
    valid = all(verify_inclusion(index, size, leaves[index], path, root) for index, path in zip(indices, paths, strict=True))
    elapsed = time.perf_counter() - started
    print(f"verify_inclusion:          {elapsed / PROOFS * 1e6:>9.1f} µs/proof  (all valid: {valid})")

    first_roots = [tree.root(first) for first in firsts]
    started = time.perf_counter()
    checks = zip(firsts, first_roots, proofs, strict=True)
    valid = all(verify_consistency(first, size, first_root, root, proof) for first, first_root, proof in checks)
    elapsed = time.perf_counter() - started
    print(f"verify_consistency:        {elapsed / PROOFS * 1e6:>9.1f} µs/proof  (all valid: {valid})")


if __name__ == "__main__":
    main()
