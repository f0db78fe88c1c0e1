"""RFC 9162 Merkle tree: hashing, perfect-subtree node storage, proofs and verification."""

# Storage model
# -------------
# The log stores the hash of every *complete perfect subtree*: node (level, index) covers the
# leaves [index * 2**level, (index + 1) * 2**level) and exists once all of them are appended.
# Level 0 holds the leaf hashes.  Every subtree that RFC 9162's recursive definitions (MTH,
# PATH, PROOF/SUBPROOF) ever hash starts at a multiple of a power of two no smaller than its
# size, so its hash is the right fold of at most log2(n) stored perfect subtrees (the binary
# decomposition of its size).  Proof functions therefore first compute the full list of node
# keys they need (O(log n) of them) and then read them with a single NodeStore.get_nodes call.

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Final, Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "MissingNodeError",
    "NodeKey",
    "NodeStore",
    "StoredNode",
    "TreeBuilder",
    "append_dependencies",
    "append_many",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "nodes_to_store_on_append",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

NodeKey = tuple[int, int]
"""(level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

StoredNode = tuple[int, int, bytes]
"""(level, index, hash) as produced by the append functions."""

HASH_SIZE: Final = 32

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"
_join = b"".join

EMPTY_ROOT: Final[bytes] = _sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162, section 2.1.1)."""


class MissingNodeError(LookupError):
    """The node store does not hold a node that the requested tree size requires."""


class NodeStore(Protocol):
    """Read access to stored perfect-subtree hashes."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Batch read: return the hash of every requested (level, index) key."""
        ...


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node hash SHA-256(0x01 || left || right)."""
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError("node_hash needs two 32-byte hashes")
    return _sha256(_NODE + left + right).digest()


def leaf_hashes(datas: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes of many entries (loop runs in C: this is the verifier's hot path)."""
    return list(map(_digest, map(_sha256, map(_LEAF.__add__, datas))))


def _hash_pairs(hashes: list[bytes]) -> list[bytes]:
    """Parents of consecutive pairs (h[0], h[1]), (h[2], h[3]), ...; len(hashes) is even."""
    inputs = map(_join, zip(repeat(_NODE), hashes[0::2], hashes[1::2]))
    return list(map(_digest, map(_sha256, inputs)))


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


# --------------------------------------------------------------------------- appending


def nodes_to_store_on_append(
    size_before: int, leaf: bytes, get: Callable[[NodeKey], bytes]
) -> list[StoredNode]:
    """New complete perfect-subtree nodes after appending leaf HASH ``leaf`` at ``size_before``.

    Returns (0, size_before, leaf) followed by every parent that became complete, lowest level
    first.  ``get`` is called only for left siblings, which are nodes already stored (they are
    among ``append_dependencies(size_before, 1)``).
    """
    _check_size(size_before, "size_before")
    _check_hash(leaf, "leaf hash")
    out: list[StoredNode] = [(0, size_before, leaf)]
    h = leaf
    index = size_before
    level = 0
    while index & 1:
        h = _sha256(_NODE + get((level, index - 1)) + h).digest()
        index >>= 1
        level += 1
        out.append((level, index, h))
    return out


def append_dependencies(size_before: int, count: int) -> list[NodeKey]:
    """Stored nodes that ``append_many(size_before, <count hashes>, get)`` will ask ``get`` for.

    They are a subset of the maximal perfect subtrees of the tree of size ``size_before``, so a
    database-backed caller can prefetch them in one round trip.
    """
    _check_size(size_before, "size_before")
    _check_size(count, "count")
    size_after = size_before + count
    keys: list[NodeKey] = []
    level = 0
    while (size_after >> level) > (size_before >> level):
        if (size_before >> level) & 1:
            keys.append((level, (size_before >> level) - 1))
        level += 1
    return keys


def append_many(
    size_before: int, leaf_hashes: Iterable[bytes], get: Callable[[NodeKey], bytes]
) -> list[StoredNode]:
    """All new complete perfect-subtree nodes after appending a batch of leaf hashes.

    Equivalent to calling ``nodes_to_store_on_append`` once per leaf (same set of nodes), but
    nodes computed inside the batch are reused and ``get`` is only called for the keys of
    ``append_dependencies(size_before, len(batch))``.  Nodes are returned level by level, each
    level in increasing index order (so per-level append-only stores can insert in order).
    """
    _check_size(size_before, "size_before")
    cur = list(leaf_hashes)
    for h in cur:
        _check_hash(h, "leaf hash")
    out: list[StoredNode] = []
    level = 0
    first = size_before  # index (at this level) of cur[0]
    while cur:
        out.extend(zip(repeat(level), range(first, first + len(cur)), cur))
        if first & 1:  # the first new node's left sibling is an old, stored node
            cur.insert(0, get((level, first - 1)))
            first -= 1
        if len(cur) & 1:
            cur.pop()  # its sibling is not appended yet
        cur = _hash_pairs(cur)
        first >>= 1
        level += 1
    return out


# --------------------------------------------------------------------------- reading


def _range_keys(start: int, end: int) -> list[NodeKey]:
    """Perfect subtrees covering leaves [start, end), left to right (start suitably aligned)."""
    keys: list[NodeKey] = []
    size = end - start
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if (size >> level) & 1:
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


def _split(size: int) -> int:
    """RFC 9162 k: the largest power of two smaller than size (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def _resolve(store: NodeStore, plans: list[list[NodeKey]]) -> list[bytes]:
    """Read every key of every plan in one batch; each plan hashes to the right fold of its keys."""
    wanted = sorted({key for plan in plans for key in plan})
    if not wanted:
        return []
    got = store.get_nodes(wanted)
    missing = [key for key in wanted if key not in got]
    if missing:
        raise MissingNodeError(f"node store is missing nodes {missing[:8]}")
    for key in wanted:
        if len(got[key]) != HASH_SIZE:
            raise MissingNodeError(f"node store returned a malformed hash for {key}")
    out: list[bytes] = []
    for plan in plans:
        h = got[plan[-1]]
        for key in reversed(plan[:-1]):
            h = _sha256(_NODE + got[key] + h).digest()
        out.append(h)
    return out


def root_hash(tree_size: int, store: NodeStore) -> bytes:
    """MTH(D[tree_size]) (RFC 9162, section 2.1.1) from at most log2(n)+1 stored nodes."""
    _check_size(tree_size, "tree_size")
    if tree_size == 0:
        return EMPTY_ROOT
    return _resolve(store, [_range_keys(0, tree_size)])[0]


def _inclusion_plan(leaf_index: int, tree_size: int) -> list[list[NodeKey]]:
    # PATH(m, D[n]): walk down from the root; the sibling subtree of each step is appended to
    # the proof *after* the rest of the path, so collect top-down and reverse.
    plan: list[list[NodeKey]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _split(hi - lo)
        if leaf_index < lo + k:
            plan.append(_range_keys(lo + k, hi))  # MTH(D[k:n])
            hi = lo + k
        else:
            plan.append(_range_keys(lo, lo + k))  # MTH(D[0:k]), a single perfect subtree
            lo += k
    plan.reverse()
    return plan


def inclusion_proof(leaf_index: int, tree_size: int, store: NodeStore) -> list[bytes]:
    """PATH(leaf_index, D[tree_size]) (RFC 9162, section 2.1.3.1), one store read."""
    _check_size(leaf_index, "leaf_index")
    _check_size(tree_size, "tree_size")
    if leaf_index >= tree_size:
        raise ValueError(f"leaf_index {leaf_index} is not below tree_size {tree_size}")
    return _resolve(store, _inclusion_plan(leaf_index, tree_size))


def _consistency_plan(first: int, second: int) -> list[list[NodeKey]]:
    # PROOF(m, D[n]) = SUBPROOF(m, D[n], true), unrolled; same top-down collection as PATH.
    plan: list[list[NodeKey]] = []
    lo, hi = 0, second
    whole = True  # the RFC's b: is the current subtree's m-prefix the whole old tree?
    while True:
        size = hi - lo
        if first - lo == size:
            if not whole:
                plan.append(_range_keys(lo, hi))  # [MTH(D[m])]
            break
        k = _split(size)
        if first - lo <= k:
            plan.append(_range_keys(lo + k, hi))  # ... + MTH(D[k:n])
            hi = lo + k
        else:
            plan.append(_range_keys(lo, lo + k))  # ... + MTH(D[0:k])
            lo += k
            whole = False
    plan.reverse()
    return plan


def consistency_proof(first: int, second: int, store: NodeStore) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 9162, section 2.1.4.1), one store read.

    The RFC defines proofs for 0 < first < second; for first == 0 or first == second the proof
    is empty (nothing to prove), which is what ``verify_consistency`` expects.
    """
    _check_size(first, "first")
    _check_size(second, "second")
    if first > second:
        raise ValueError(f"first ({first}) must not exceed second ({second})")
    if first == 0 or first == second:
        return []
    return _resolve(store, _consistency_plan(first, second))


# --------------------------------------------------------------------------- verification


def _is_size(value: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _all_hashes(values: Iterable[bytes]) -> bool:
    return all(isinstance(v, bytes | bytearray) and len(v) == HASH_SIZE for v in values)


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162, section 2.1.3.2: does ``proof`` show leaf ``leaf_hash`` at ``leaf_index``?"""
    if not (_is_size(leaf_index) and _is_size(tree_size)):
        return False
    if not _all_hashes([leaf_hash, root, *proof]):
        return False
    # 1. leaf_index must be below tree_size.
    if leaf_index >= tree_size:
        return False
    # 2.-3.
    fn = leaf_index
    sn = tree_size - 1
    r = bytes(leaf_hash)
    # 4.
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    # 5.
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162, section 2.1.4.2: is the tree (second, second_root) an extension of (first, ...)?

    Outside the RFC's 0 < first < second: a tree is consistent with itself (first == second,
    equal roots, empty proof) and every tree extends the empty tree (first == 0,
    first_root == EMPTY_ROOT, empty proof).
    """
    if not (_is_size(first) and _is_size(second)) or first > second:
        return False
    if not _all_hashes([first_root, second_root, *proof]):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    # 1.
    if not proof:
        return False
    path = list(proof)
    # 2.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # 3.
    fn = first - 1
    sn = second - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = bytes(path[0])
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == first_root and sr == second_root and sn == 0


# --------------------------------------------------------------------------- in-memory store


class MemoryNodeStore:
    """Append-only in-memory NodeStore (32 bytes per node, one bytearray per level).

    Counts reads: ``get_calls`` (number of get_nodes calls) and ``keys_read`` (keys requested).
    """

    __slots__ = ("_levels", "_size", "get_calls", "keys_read")

    def __init__(self) -> None:
        self._levels: list[bytearray] = []
        self._size = 0
        self.get_calls = 0
        self.keys_read = 0

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def reset_counters(self) -> None:
        self.get_calls = 0
        self.keys_read = 0

    def get_node(self, key: NodeKey) -> bytes:
        """One stored node (not counted; this is the ``get`` callable for the append functions)."""
        level, index = key
        if level < 0 or index < 0 or level >= len(self._levels):
            raise MissingNodeError(f"no node {key}")
        row = self._levels[level]
        start = index * HASH_SIZE
        if start + HASH_SIZE > len(row):
            raise MissingNodeError(f"no node {key}")
        return bytes(row[start : start + HASH_SIZE])

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.get_calls += 1
        self.keys_read += len(keys)
        return {key: self.get_node(key) for key in keys}

    def put_nodes(self, nodes: Iterable[StoredNode]) -> None:
        """Store nodes; within a level they must arrive in index order (append-only)."""
        levels = self._levels
        for level, index, h in nodes:
            _check_hash(h, "node hash")
            while len(levels) <= level:
                levels.append(bytearray())
            row = levels[level]
            if index * HASH_SIZE != len(row):
                raise ValueError(f"node {(level, index)} is not the next node of level {level}")
            row += h

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append one leaf hash; returns its index."""
        index = self._size
        self.put_nodes(nodes_to_store_on_append(index, leaf, self.get_node))
        self._size = index + 1
        return index

    def append(self, leaf_data: bytes) -> int:
        """Append one entry (its leaf hash is computed here); returns its index."""
        return self.append_leaf_hash(leaf_hash(leaf_data))

    def extend_leaf_hashes(self, hashes: Iterable[bytes]) -> None:
        """Append a batch of leaf hashes (group commit)."""
        batch = list(hashes)
        self.put_nodes(append_many(self._size, batch, self.get_node))
        self._size += len(batch)

    def extend(self, leaf_datas: Iterable[bytes]) -> None:
        """Append a batch of entries."""
        self.extend_leaf_hashes(leaf_hashes(leaf_datas))

    def root(self) -> bytes:
        """Root hash of the whole stored tree."""
        return root_hash(self._size, self)


# --------------------------------------------------------------------------- streaming builder


class TreeBuilder:
    """Streaming MTH over a sequence of leaf hashes in O(log n) memory.

    The state is the stack of maximal perfect subtrees of the tree so far: one hash per set bit
    of ``size``, highest level at the bottom (``peaks()`` lists them as (level, hash)).
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves added."""
        return self._size

    def add(self, leaf_hash: bytes) -> None:
        """Append one leaf hash."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        stack = self._stack
        n = self._size
        h = leaf_hash
        while n & 1:
            h = _sha256(_NODE + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1

    def add_subtree(self, level: int, subtree_hash: bytes) -> None:
        """Append 2**level leaves at once, given the hash of their perfect subtree.

        ``size`` must be a multiple of 2**level.  This lets a verifier hash aligned chunks of
        the log elsewhere (other processes) and merge their roots, or resume from stored peaks.
        """
        _check_size(level, "level")
        _check_hash(subtree_hash, "subtree hash")
        if self._size & ((1 << level) - 1):
            raise ValueError(f"size {self._size} is not a multiple of 2**{level}")
        stack = self._stack
        n = self._size >> level
        h = subtree_hash
        while n & 1:
            h = _sha256(_NODE + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1 << level

    def add_data(self, data: bytes) -> bytes:
        """Append one entry; returns its leaf hash."""
        h = _sha256(_LEAF + data).digest()
        self.add(h)
        return h

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, hashing a level at a time (much faster than ``add``)."""
        cur = list(leaf_hashes)
        if not cur:
            return
        if set(map(len, cur)) != {HASH_SIZE}:
            raise ValueError("leaf hashes must be 32 bytes")
        count = len(cur)
        stack = self._stack
        first = self._size  # index (at this level) of cur[0]
        new_peaks: list[bytes] = []  # peaks of the new size, lowest level first
        while cur:
            if first & 1:
                cur.insert(0, stack.pop())  # old peak at this level is cur[0]'s left sibling
                first -= 1
            if len(cur) & 1:
                new_peaks.append(cur.pop())
            cur = _hash_pairs(cur)
            first >>= 1
        new_peaks.reverse()
        stack.extend(new_peaks)
        self._size += count

    def extend_data(self, datas: Iterable[bytes]) -> list[bytes]:
        """Append many entries; returns their leaf hashes."""
        hashes = leaf_hashes(datas)
        self.extend(hashes)
        return hashes

    def root(self) -> bytes:
        """MTH of the leaves added so far (EMPTY_ROOT when none)."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for left in reversed(stack[:-1]):
            h = _sha256(_NODE + left + h).digest()
        return h

    def peaks(self) -> list[tuple[int, bytes]]:
        """The maximal perfect subtrees as (level, hash), highest level first."""
        size = self._size
        levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
        return list(zip(levels, self._stack, strict=True))
