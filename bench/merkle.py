"""Benchmark app.audit.merkle: append rate, proof latency at 10k/100k/1M, verifier throughput.

Run from the repository root:  .venv/bin/python bench/merkle.py  (prints one JSON document).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.audit.merkle import (  # noqa: E402
    MemoryNodeStore,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

LEAF_SIZE = 400
BIG = 1_000_000
SIZES = [10_000, 100_000, 1_000_000]
BATCH = 1000


def leaves(count: int, seed: int) -> list[bytes]:
    blob = random.Random(seed).randbytes(count * LEAF_SIZE)  # noqa: S311 - test data
    return [blob[i : i + LEAF_SIZE] for i in range(0, len(blob), LEAF_SIZE)]


def best_of(fn: Callable[[], object], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def build_store() -> tuple[MemoryNodeStore, dict[str, float]]:
    store = MemoryNodeStore()
    single_n = 100_000
    batch = leaves(single_n, 1)
    start = time.perf_counter()
    for d in batch:
        store.append(d)
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    seed = 2
    while store.size < BIG:
        store.extend(leaves(min(BATCH, BIG - store.size), seed))
        seed += 1
    batched_s = time.perf_counter() - start
    batched_n = BIG - single_n
    # leaves() itself costs time; measure it to report the store's own rate too.
    gen_s = best_of(lambda: leaves(BATCH, 0), 3) * batched_n / BATCH
    return store, {
        "single_append_per_s": round(single_n / single_s),
        "batched_append_per_s_incl_data_generation": round(batched_n / batched_s),
        "batched_append_per_s": round(batched_n / max(batched_s - gen_s, 1e-9)),
        "batch_size": BATCH,
        "build_1m_seconds": round(single_s + batched_s, 2),
        "store_bytes": sum(len(row) for row in store._levels),  # noqa: SLF001
    }


def proof_timings(store: MemoryNodeStore) -> dict[str, dict[str, float]]:
    rng = random.Random(7)  # noqa: S311 - reproducible sample
    out: dict[str, dict[str, float]] = {}
    runs = 2000
    for n in SIZES:
        idx = [rng.randrange(n) for _ in range(runs)]
        firsts = [rng.randrange(1, n) for _ in range(runs)]
        root = root_hash(n, store)
        store.reset_counters()
        t_root = best_of(lambda n=n: [root_hash(n, store) for _ in range(runs)], 3) / runs
        root_keys = store.keys_read / (3 * runs)

        store.reset_counters()
        t_incl = best_of(lambda n=n, idx=idx: [inclusion_proof(i, n, store) for i in idx], 3)
        incl_keys = store.keys_read / (3 * runs)
        incl_calls = store.get_calls / (3 * runs)
        proofs = [inclusion_proof(i, n, store) for i in idx]
        hashes = [store.get_node((0, i)) for i in idx]

        def verify_all(
            n: int = n,
            idx: list[int] = idx,
            proofs: list[list[bytes]] = proofs,
            hashes: list[bytes] = hashes,
            root: bytes = root,
        ) -> None:
            for i, p, h in zip(idx, proofs, hashes, strict=True):
                assert verify_inclusion(i, n, h, p, root)

        t_vincl = best_of(verify_all, 3)

        store.reset_counters()
        t_cons = best_of(
            lambda n=n, firsts=firsts: [consistency_proof(m, n, store) for m in firsts], 3
        )
        cons_keys = store.keys_read / (3 * runs)
        sample = firsts[:200]
        cproofs = [consistency_proof(m, n, store) for m in sample]
        old_roots = [root_hash(m, store) for m in sample]

        def verify_cons(
            n: int = n,
            sample: list[int] = sample,
            cproofs: list[list[bytes]] = cproofs,
            old_roots: list[bytes] = old_roots,
            root: bytes = root,
        ) -> None:
            for m, p, r in zip(sample, cproofs, old_roots, strict=True):
                assert verify_consistency(m, n, r, root, p)

        t_vcons = best_of(verify_cons, 3) / len(sample)
        out[str(n)] = {
            "root_us": round(t_root * 1e6, 2),
            "root_keys": round(root_keys, 1),
            "inclusion_proof_us": round(t_incl / runs * 1e6, 2),
            "inclusion_keys_avg": round(incl_keys, 1),
            "inclusion_get_nodes_calls": incl_calls,
            "inclusion_proof_len_avg": round(sum(map(len, proofs)) / runs, 1),
            "verify_inclusion_us": round(t_vincl / runs * 1e6, 2),
            "consistency_proof_us": round(t_cons / runs * 1e6, 2),
            "consistency_keys_avg": round(cons_keys, 1),
            "verify_consistency_us": round(t_vcons * 1e6, 2),
        }
    return out


def verifier_throughput() -> dict[str, object]:
    n = 1 << 18
    data = leaves(n, 99)
    blob = b"".join(data)
    total = len(blob)
    chunk = 4096

    def tree_bulk() -> bytes:
        tb = TreeBuilder()
        for start in range(0, n, chunk):
            tb.extend_data(data[start : start + chunk])
        return tb.root()

    def tree_per_leaf() -> bytes:
        tb = TreeBuilder()
        add = tb.add
        for d in data:
            add(leaf_hash(d))
        return tb.root()

    def raw_stream_oneshot() -> bytes:
        return hashlib.sha256(blob).digest()

    def raw_stream_update() -> bytes:
        h = hashlib.sha256()
        for d in data:
            h.update(d)
        return h.digest()

    def raw_per_leaf() -> None:
        sha = hashlib.sha256
        for d in data:
            sha(d).digest()

    assert tree_bulk() == tree_per_leaf()
    cases = {
        "treebuilder_extend_data": tree_bulk,
        "treebuilder_add_per_leaf": tree_per_leaf,
        "raw_sha256_oneshot": raw_stream_oneshot,
        "raw_sha256_update_per_leaf": raw_stream_update,
        "raw_sha256_digest_per_leaf": raw_per_leaf,
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(5):  # interleave the rounds: the machine may be shared and noisy
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {
        name: {
            "leaves_per_s": round(n / t),
            "mb_per_s": round(total / t / 1e6, 1),
        }
        for name, t in best.items()
    }
    raw = best["raw_sha256_oneshot"]
    return {
        "leaves": n,
        "leaf_bytes": LEAF_SIZE,
        "rates": rates,
        "ratio_extend_vs_raw_oneshot": round(raw / best["treebuilder_extend_data"], 3),
        "ratio_extend_vs_raw_update": round(
            best["raw_sha256_update_per_leaf"] / best["treebuilder_extend_data"], 3
        ),
        "ratio_extend_vs_raw_digest_per_leaf": round(
            best["raw_sha256_digest_per_leaf"] / best["treebuilder_extend_data"], 3
        ),
        "ratio_add_per_leaf_vs_raw_oneshot": round(raw / best["treebuilder_add_per_leaf"], 3),
    }


def main() -> None:
    started = time.perf_counter()
    sections: dict[str, float] = {}
    verifier = verifier_throughput()
    sections["verifier"] = round(time.perf_counter() - started, 1)
    store, appends = build_store()
    sections["build"] = round(time.perf_counter() - started - sum(sections.values()), 1)
    proofs = proof_timings(store)
    sections["proofs"] = round(time.perf_counter() - started - sum(sections.values()), 1)
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "openssl": ssl.OPENSSL_VERSION,
                "cpus": os.cpu_count(),
                "appends": appends,
                "proofs": proofs,
                "verifier": verifier,
                "section_seconds": sections,
                "total_seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
