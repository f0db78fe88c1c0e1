"""app.audit.merkle against the naive RFC 9162 reference, known answers and tamper checks."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit.merkle import (
    EMPTY_ROOT,
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    NodeStore,
    TreeBuilder,
    append_dependencies,
    append_many,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    nodes_to_store_on_append,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def _load_reference() -> ModuleType:
    # Loaded by path: the test suite runs with --import-mode=importlib (no sys.path entry).
    path = Path(__file__).with_name("rfc9162_reference.py")
    spec = importlib.util.spec_from_file_location("rfc9162_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

MAX_BIG = 2048


def entry(i: int) -> bytes:
    """Deterministic leaf data of varying length (entry 0 is empty)."""
    return b"".join(hashlib.sha256(f"{i}/{j}".encode()).digest() for j in range(i % 7))


DATA = [entry(i) for i in range(MAX_BIG)]


def _build_big() -> MemoryNodeStore:
    store = MemoryNodeStore()
    for d in DATA:
        store.append(d)
    return store


BIG = _build_big()


@cache
def ref_root(n: int) -> bytes:
    return ref.MTH(DATA[:n])


class CheckedStore:
    """Read-only view of BIG for a tree of ``tree_size``: rejects keys beyond it, counts reads."""

    def __init__(self, tree_size: int, inner: NodeStore = BIG) -> None:
        self.tree_size = tree_size
        self.inner = inner
        self.calls = 0
        self.keys = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.calls += 1
        self.keys += len(keys)
        assert len(set(keys)) == len(keys), "duplicate keys requested"
        for level, index in keys:
            assert level >= 0 and index >= 0
            assert (index + 1) << level <= self.tree_size, f"{(level, index)} not in tree"
        return self.inner.get_nodes(keys)


def key_bound(n: int) -> int:
    return 2 * math.ceil(math.log2(n)) + 2


def bit_flips(value: bytes) -> Iterator[bytes]:
    for bit in range(len(value) * 8):
        flipped = bytearray(value)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield bytes(flipped)


def inclusion_shape(index: int, size: int, length: int) -> tuple[str, ...] | None:
    """The hashing order the RFC 2.1.3.2 algorithm applies (None: fails structurally)."""
    if not 0 <= index < size:
        return None
    fn, sn, ops = index, size - 1, []
    for _ in range(length):
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            ops.append("p|r")
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            ops.append("r|p")
        fn, sn = fn >> 1, sn >> 1
    return tuple(ops) if sn == 0 else None


def consistency_shape(first: int, second: int, length: int) -> tuple[object, ...] | None:
    """The hashing order the RFC 2.1.4.2 algorithm applies (None: fails structurally)."""
    if not 0 < first < second or length == 0:
        return None
    prepend = first & (first - 1) == 0
    fn, sn, ops = first - 1, second - 1, []
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    for _ in range(length - (0 if prepend else 1)):
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            ops.append("both")
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            ops.append("second")
        fn, sn = fn >> 1, sn >> 1
    return (prepend, *ops) if sn == 0 else None


# --------------------------------------------------------------------------- known answers

# Test vectors of the RFC 6962 reference implementation (certificate-transparency), which
# RFC 9162 keeps unchanged for SHA-256; the naive reference reproduces them too.
CT_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {  # (leaf_index, tree_size) -> PATH
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (0, 1): [],
}
CT_CONSISTENCY = {  # (first, second) -> PROOF
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (3, 7): [
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e",
    ],
}


def test_kat_empty_tree_and_empty_leaf() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert EMPTY_ROOT.hex() == empty
    assert ref.MTH([]).hex() == empty
    assert root_hash(0, MemoryNodeStore()) == EMPTY_ROOT
    assert TreeBuilder().root() == EMPTY_ROOT
    single = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"").hex() == single
    assert ref.MTH([b""]).hex() == single


def test_kat_ct_vectors() -> None:
    store = MemoryNodeStore()
    builder = TreeBuilder()
    for n, leaf in enumerate(CT_LEAVES, start=1):
        store.append(leaf)
        builder.add(leaf_hash(leaf))
        assert ref.MTH(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
        assert root_hash(n, store).hex() == CT_ROOTS[n - 1]
        assert builder.root().hex() == CT_ROOTS[n - 1]
    roots = [bytes.fromhex(r) for r in CT_ROOTS]
    for (index, size), want in CT_INCLUSION.items():
        assert [h.hex() for h in ref.PATH(index, CT_LEAVES[:size])] == want
        proof = inclusion_proof(index, size, store)
        assert [h.hex() for h in proof] == want
        assert verify_inclusion(index, size, leaf_hash(CT_LEAVES[index]), proof, roots[size - 1])
    for (first, second), want in CT_CONSISTENCY.items():
        assert [h.hex() for h in ref.PROOF(first, CT_LEAVES[:second])] == want
        proof = consistency_proof(first, second, store)
        assert [h.hex() for h in proof] == want
        assert verify_consistency(first, second, roots[first - 1], roots[second - 1], proof)


def test_kat_fixed_sequence_from_reference() -> None:
    # Regression vectors for this project's own entry() sequence, produced by the reference.
    assert ref_root(70).hex() == KAT_ROOT_70
    assert root_hash(70, BIG).hex() == KAT_ROOT_70
    assert [h.hex() for h in ref.PATH(37, DATA[:70])] == KAT_PATH_37_70
    assert [h.hex() for h in inclusion_proof(37, 70, BIG)] == KAT_PATH_37_70
    assert [h.hex() for h in ref.PROOF(13, DATA[:70])] == KAT_PROOF_13_70
    assert [h.hex() for h in consistency_proof(13, 70, BIG)] == KAT_PROOF_13_70


# --------------------------------------------------------------------------- store-based proofs


@pytest.mark.parametrize("n", range(1, 71))
def test_root_matches_reference(n: int) -> None:
    store = CheckedStore(n)
    assert root_hash(n, store) == ref_root(n)
    assert store.calls == 1
    assert store.keys == bin(n).count("1")


@pytest.mark.parametrize("n", range(1, 71))
def test_inclusion_matches_reference(n: int) -> None:
    root = ref_root(n)
    for i in range(n):
        store = CheckedStore(n)
        proof = inclusion_proof(i, n, store)
        assert proof == ref.PATH(i, DATA[:n])
        assert store.calls == (1 if n > 1 else 0)
        assert store.keys <= key_bound(n)
        assert verify_inclusion(i, n, leaf_hash(DATA[i]), proof, root)
        assert ref.verify_inclusion(i, n, leaf_hash(DATA[i]), proof, root)


@pytest.mark.parametrize("n", range(1, 71))
def test_consistency_matches_reference(n: int) -> None:
    for m in range(0, n + 1):
        store = CheckedStore(n)
        proof = consistency_proof(m, n, store)
        if 0 < m < n:
            assert proof == ref.PROOF(m, DATA[:n])
            assert store.calls == 1
            assert store.keys <= key_bound(n)
            assert ref.verify_consistency(m, n, ref_root(m), ref_root(n), proof)
        else:
            assert proof == []
            assert store.calls == 0
        assert verify_consistency(m, n, ref_root(m), ref_root(n), proof)


class AnyStore:
    """Answers any key with a made-up hash: measures read patterns at huge tree sizes."""

    def __init__(self) -> None:
        self.calls = 0
        self.keys = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.calls += 1
        self.keys += len(keys)
        return {k: hashlib.sha256(repr(k).encode()).digest() for k in keys}


def test_read_cost_is_logarithmic_at_huge_sizes() -> None:
    rng = random.Random(9162)  # noqa: S311 - reproducible sizes, not crypto
    for _ in range(300):
        n = rng.randrange(2, 1 << rng.randrange(2, 60))
        store = AnyStore()
        inclusion_proof(rng.randrange(n), n, store)
        assert store.calls == 1 and store.keys <= key_bound(n)
        store = AnyStore()
        consistency_proof(rng.randrange(1, n), n, store)
        assert store.calls == 1 and store.keys <= key_bound(n)
        store = AnyStore()
        root_hash(n, store)
        assert store.calls == 1 and store.keys <= n.bit_length()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_sizes_match_reference(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 2000), label="tree_size")
    i = data.draw(st.integers(0, n - 1), label="leaf_index")
    m = data.draw(st.integers(0, n), label="first")
    store = CheckedStore(n)
    root = root_hash(n, store)
    assert root == ref_root(n)
    proof = inclusion_proof(i, n, store)
    assert proof == ref.PATH(i, DATA[:n])
    assert verify_inclusion(i, n, leaf_hash(DATA[i]), proof, root)
    cproof = consistency_proof(m, n, store)
    if 0 < m < n:
        assert cproof == ref.PROOF(m, DATA[:n])
    assert verify_consistency(m, n, ref_root(m), root, cproof)
    assert store.calls <= 3
    assert store.keys <= 3 * key_bound(n)


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("n", range(1, 21))
def test_inclusion_rejects_tampering(n: int) -> None:
    root = ref_root(n)
    for i in range(n):
        leaf = leaf_hash(DATA[i])
        proof = ref.PATH(i, DATA[:n])
        assert verify_inclusion(i, n, leaf, proof, root)
        for k, p in enumerate(proof):
            for bad in bit_flips(p):
                assert not verify_inclusion(i, n, leaf, [*proof[:k], bad, *proof[k + 1 :]], root)
        for bad in bit_flips(leaf):
            assert not verify_inclusion(i, n, bad, proof, root)
        for bad in bit_flips(root):
            assert not verify_inclusion(i, n, leaf, proof, bad)
        assert not verify_inclusion(i, n, leaf, [*proof, root], root)
        assert not verify_inclusion(i, n, leaf, [root, *proof], root)
        for k in range(len(proof)):
            assert not verify_inclusion(i, n, leaf, proof[:k] + proof[k + 1 :], root)
        assert not verify_inclusion(i, n, leaf_hash(DATA[i] + b"x"), proof, root)
        assert not verify_inclusion(i, n, leaf, proof, EMPTY_ROOT)
        want_shape = inclusion_shape(i, n, len(proof))
        for n2 in range(0, 2 * n + 3):
            for i2 in range(-1, n2 + 1):
                if (i2, n2) == (i, n):
                    continue
                # Against the real root of the claimed size: always rejected.
                if 1 <= n2 <= MAX_BIG:
                    assert not verify_inclusion(i2, n2, leaf, proof, ref_root(n2))
                # Same root: rejected unless the RFC algorithm performs the very same hash
                # computation for both positions (then the root itself pins the size).
                got = verify_inclusion(i2, n2, leaf, proof, root)
                assert got == (inclusion_shape(i2, n2, len(proof)) == want_shape)
                if n2 == n:
                    assert not got  # a wrong index in the same tree is always rejected
                if i2 >= 0 and n2 >= 1:
                    assert got == ref.verify_inclusion(i2, n2, leaf, proof, root)


@pytest.mark.parametrize("n", range(2, 21))
def test_consistency_rejects_tampering(n: int) -> None:
    second = ref_root(n)
    for m in range(1, n):
        first = ref_root(m)
        proof = ref.PROOF(m, DATA[:n])
        assert verify_consistency(m, n, first, second, proof)
        for k, p in enumerate(proof):
            for bad in bit_flips(p):
                tampered = [*proof[:k], bad, *proof[k + 1 :]]
                assert not verify_consistency(m, n, first, second, tampered)
        for bad in bit_flips(first):
            assert not verify_consistency(m, n, bad, second, proof)
        for bad in bit_flips(second):
            assert not verify_consistency(m, n, first, bad, proof)
        assert not verify_consistency(m, n, first, second, [])
        assert not verify_consistency(m, n, first, second, [*proof, second])
        for k in range(len(proof)):
            assert not verify_consistency(m, n, first, second, proof[:k] + proof[k + 1 :])
        want_shape = consistency_shape(m, n, len(proof))
        for n2 in range(1, 2 * n + 3):
            for m2 in range(0, n2 + 1):
                if (m2, n2) == (m, n):
                    continue
                assert not verify_consistency(m2, n2, ref_root(m2), ref_root(n2), proof)
                got = verify_consistency(m2, n2, first, second, proof)
                assert got == (consistency_shape(m2, n2, len(proof)) == want_shape)
                if 0 < m2 < n2:
                    assert got == ref.verify_consistency(m2, n2, first, second, proof)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_random_bit_flips_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, MAX_BIG), label="tree_size")
    i = data.draw(st.integers(0, n - 1), label="leaf_index")
    m = data.draw(st.integers(1, n - 1), label="first")
    root = root_hash(n, BIG)
    proof = inclusion_proof(i, n, BIG)
    leaf = leaf_hash(DATA[i])
    assert verify_inclusion(i, n, leaf, proof, root)
    k = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    bad = bytearray(proof[k])
    bad[bit // 8] ^= 1 << (bit % 8)
    assert not verify_inclusion(i, n, leaf, [*proof[:k], bytes(bad), *proof[k + 1 :]], root)
    assert not verify_inclusion(i, n, leaf, proof, root_hash(n - 1, BIG))
    first = root_hash(m, BIG)
    cproof = consistency_proof(m, n, BIG)
    assert verify_consistency(m, n, first, root, cproof)
    k = data.draw(st.integers(0, len(cproof) - 1), label="celement")
    bad = bytearray(cproof[k])
    bad[bit // 8] ^= 1 << (bit % 8)
    assert not verify_consistency(m, n, first, root, [*cproof[:k], bytes(bad), *cproof[k + 1 :]])
    assert not verify_consistency(m, n, root_hash(m - 1, BIG), root, cproof)


def test_verification_edge_cases() -> None:
    r1, r2, r3 = ref_root(1), ref_root(2), ref_root(3)
    leaf = leaf_hash(DATA[0])
    assert verify_inclusion(0, 1, leaf, [], r1)
    assert not verify_inclusion(0, 1, leaf, [r1], r1)
    assert not verify_inclusion(0, 0, leaf, [], EMPTY_ROOT)
    assert not verify_inclusion(1, 1, leaf, [], r1)
    assert not verify_inclusion(-1, 1, leaf, [], r1)
    assert not verify_inclusion(0, 1, leaf[:31], [], r1)
    assert not verify_inclusion(0, 2, leaf, [leaf_hash(DATA[1]) + b"\x00"], r2)
    # Consistency outside 0 < first < second.
    assert verify_consistency(3, 3, r3, r3, [])
    assert not verify_consistency(3, 3, r3, r2, [])
    assert not verify_consistency(3, 3, r3, r3, [r3])
    assert verify_consistency(0, 3, EMPTY_ROOT, r3, [])
    assert not verify_consistency(0, 3, r1, r3, [])
    assert not verify_consistency(0, 3, EMPTY_ROOT, r3, [r3])
    assert not verify_consistency(3, 2, r3, r2, [])
    assert not verify_consistency(-1, 2, r3, r2, [])
    assert not verify_consistency(1, 2, r1[:31], r2, [leaf_hash(DATA[1])])
    assert verify_consistency(1, 2, r1, r2, [leaf_hash(DATA[1])])
    # Generation refuses nonsense.
    with pytest.raises(ValueError):
        inclusion_proof(3, 3, BIG)
    with pytest.raises(ValueError):
        inclusion_proof(-1, 3, BIG)
    with pytest.raises(ValueError):
        consistency_proof(4, 3, BIG)
    with pytest.raises(ValueError):
        root_hash(-1, BIG)
    with pytest.raises(MissingNodeError):
        root_hash(MAX_BIG + 1, BIG)
    with pytest.raises(MissingNodeError):
        inclusion_proof(0, MAX_BIG + 1, BIG)
    with pytest.raises(ValueError):
        node_hash(b"x", leaf)


# --------------------------------------------------------------------------- appending


def test_single_append_nodes() -> None:
    store = MemoryNodeStore()
    for s in range(70):
        h = leaf_hash(DATA[s])
        nodes = nodes_to_store_on_append(s, h, store.get_node)
        trailing_ones = len(bin(s)) - len(bin(s).rstrip("1"))
        assert [(lvl, idx) for lvl, idx, _ in nodes] == [
            (lvl, s >> lvl) for lvl in range(trailing_ones + 1)
        ]
        assert nodes[0][2] == h
        for lvl, idx, node in nodes:  # each is MTH of its perfect range of leaves
            assert node == ref.MTH(DATA[idx << lvl : (idx + 1) << lvl])
        store.put_nodes(nodes)
        store._size = s + 1  # noqa: SLF001 - drive the store by hand for this test
        assert store.root() == ref_root(s + 1)


def _single_appends(size_before: int, hashes: list[bytes]) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    made = {}

    def get(key: NodeKey) -> bytes:
        return made[key] if key in made else BIG.get_node(key)

    for offset, h in enumerate(hashes):
        nodes = nodes_to_store_on_append(size_before + offset, h, get)
        made.update({(lvl, idx): node for lvl, idx, node in nodes})
        out.extend(nodes)
    return out


def test_append_many_equals_single_appends() -> None:
    hashes = [leaf_hash(d) for d in DATA]
    for before in range(0, 45):
        for count in range(0, 45):
            calls: list[NodeKey] = []

            def get(key: NodeKey, calls: list[NodeKey] = calls, before: int = before) -> bytes:
                calls.append(key)
                assert (key[1] + 1) << key[0] <= before, "read a node that is not stored yet"
                return BIG.get_node(key)

            batch = hashes[before : before + count]
            got = append_many(before, batch, get)
            assert sorted(got) == sorted(_single_appends(before, batch))
            assert calls == append_dependencies(before, count)
            # level by level, in index order
            assert got == sorted(got, key=lambda node: (node[0], node[1]))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1500), st.integers(0, 500))
def test_append_many_random(before: int, count: int) -> None:
    hashes = [leaf_hash(d) for d in DATA[before : before + count]]
    assert sorted(append_many(before, hashes, BIG.get_node)) == sorted(
        _single_appends(before, hashes)
    )
    deps = append_dependencies(before, count)
    assert len(deps) <= before.bit_length()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=12))
def test_store_batches_equal_single_appends(chunks: list[int]) -> None:
    store = MemoryNodeStore()
    pos = 0
    for size in chunks:
        store.extend(DATA[pos : pos + size])
        pos += size
        assert store.size == pos
        assert store.root() == root_hash(pos, BIG)
    for level in range(pos.bit_length()):
        for index in range(pos >> level):
            assert store.get_node((level, index)) == BIG.get_node((level, index))
    with pytest.raises(MissingNodeError):
        store.get_node((0, pos))


def test_memory_store_rejects_out_of_order_nodes() -> None:
    store = MemoryNodeStore()
    with pytest.raises(ValueError):
        store.put_nodes([(0, 1, EMPTY_ROOT)])
    with pytest.raises(ValueError):
        store.put_nodes([(0, 0, b"short")])
    with pytest.raises(ValueError):
        store.append_leaf_hash(b"short")


# --------------------------------------------------------------------------- streaming builder


def test_tree_builder_matches_reference() -> None:
    builder = TreeBuilder()
    assert builder.size == 0 and builder.peaks() == []
    for n in range(1, 71):
        assert builder.add_data(DATA[n - 1]) == leaf_hash(DATA[n - 1])
        assert builder.size == n
        assert builder.root() == ref_root(n)
        assert builder.peaks() == [
            (lvl, BIG.get_node((lvl, (n >> lvl) - 1)))
            for lvl in range(n.bit_length() - 1, -1, -1)
            if n >> lvl & 1
        ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=10))
def test_tree_builder_extend_in_chunks(chunks: list[int]) -> None:
    bulk, single = TreeBuilder(), TreeBuilder()
    pos = 0
    for size in chunks:
        part = DATA[pos : pos + size]
        if size % 2:
            assert bulk.extend_data(part) == leaf_hashes(part)
        else:
            bulk.extend(leaf_hashes(part))
        for d in part:
            single.add(leaf_hash(d))
        pos += len(part)
        assert bulk.size == single.size == pos
        assert bulk.root() == single.root() == root_hash(pos, BIG)
        assert bulk.peaks() == single.peaks()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 8), max_size=12))
def test_tree_builder_add_subtree(levels: list[int]) -> None:
    builder = TreeBuilder()
    for level in levels:
        size = builder.size
        if size + (1 << level) > MAX_BIG:
            continue
        if size % (1 << level):
            with pytest.raises(ValueError):
                builder.add_subtree(level, EMPTY_ROOT)
            continue
        builder.add_subtree(level, BIG.get_node((level, size >> level)))
        assert builder.size == size + (1 << level)
        assert builder.root() == root_hash(builder.size, BIG)


def test_tree_builder_resume_from_peaks() -> None:
    original = TreeBuilder()
    original.extend_data(DATA[:1234])
    resumed = TreeBuilder()
    for level, h in original.peaks():
        resumed.add_subtree(level, h)
    assert resumed.size == 1234 and resumed.root() == original.root()
    original.extend_data(DATA[1234:])
    resumed.extend_data(DATA[1234:])
    assert resumed.root() == original.root() == ref_root(MAX_BIG)


def test_tree_builder_large_against_reference() -> None:
    builder = TreeBuilder()
    builder.extend_data(DATA)
    assert builder.root() == ref_root(MAX_BIG) == BIG.root()
    with pytest.raises(ValueError):
        builder.add(b"short")
    with pytest.raises(ValueError):
        builder.extend([leaf_hash(b""), b"short"])


KAT_ROOT_70 = "53a2f563e39a00948877256c64620b0a7a463a64652549efb2fa35fdf200e379"
KAT_PATH_37_70 = [
    "2ed3735e8e22f42f438be10f5f2ad42372865a364add47280c9d80e69818e200",
    "995e37806474501e46bc2da26ee04300eb0d1816079a76cad225a149c31efee9",
    "5987bf5b0df3ee84bf56c466869b3c7fec05890ab4bac7e35195e24eec841824",
    "06593250a10b389c079f7158f0d882f437be91c5af9fa0262e68951765db0868",
    "f3ba82a144c143ffa7d5559cf3412bdf53f1e9de36a73cb8ebca68aa86579834",
    "89fe4a8f3b2b2ac31c52de5521c90bb12c7c3adf40d3b1b9395978a81244982e",
    "c08748d6f51b78c1e941962fde480f07f5050b7580495dfc7c9c112e56fc8475",
]
KAT_PROOF_13_70 = [
    "a8d7aa102cf7495ae7afedf429c669d24955e48ceab996efcb02914c700c2011",
    "f0910f460d7d3fb8489a34da73d9c3a8daf0ac055f135c75b9e90b1dca03c4e9",
    "21e8e5e33220cc9f5a5b435c7fa369750183278621f949f1a7ce41dfbbb86a95",
    "c36b9d0629bbf6d3a5f98b64366effe4328281e230653a9912378dda6ff19676",
    "63d322613a8abb2ec57a40a083f9c1d8c04cc0983653f6f0d0900e8d20f5407b",
    "64ae0d5d87cada6242b398ed108e4423daa6e455276f84529a0ac3a832b3046a",
    "a319ca21141e7b99790eaaa36db9b90b206f1ff20fc252ade6e14e55a06e06ea",
    "c08748d6f51b78c1e941962fde480f07f5050b7580495dfc7c9c112e56fc8475",
]
