"""Naive RFC 9162 section 2.1 reference, transcribed from the RFC text (independent of app code).

Deliberately slow and literal: every function recomputes from the full input list D[n]
(a list of leaf *data*), following the recursive definitions word for word.
"""

from __future__ import annotations

import hashlib


def HASH(data: bytes) -> bytes:  # noqa: N802 - the RFC's name
    return hashlib.sha256(data).digest()


def largest_power_of_two_smaller_than(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1), i.e. k < n <= 2k."""
    assert n > 1
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# 2.1.1. Definition of the Merkle Tree


def MTH(D: list[bytes]) -> bytes:  # noqa: N802, N803
    n = len(D)
    # The hash of an empty list is the hash of an empty string: MTH({}) = HASH().
    if n == 0:
        return HASH(b"")
    # The hash of a list with one entry (also known as a leaf hash) is:
    # MTH({d(0)}) = HASH(0x00 || d(0)).
    if n == 1:
        return HASH(b"\x00" + D[0])
    # For n > 1, let k be the largest power of two smaller than n (i.e., k < n <= 2k).
    # MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
    k = largest_power_of_two_smaller_than(n)
    return HASH(b"\x01" + MTH(D[0:k]) + MTH(D[k:n]))


# 2.1.3.1. Generating an Inclusion Proof


def PATH(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802, N803
    n = len(D)
    assert 0 <= m < n
    # The path for the single leaf in a tree with a one-element input list D[1] = {d(0)} is
    # empty: PATH(0, {d(0)}) = {}
    if n == 1:
        return []
    # For n > 1, let k be the largest power of two smaller than n.
    k = largest_power_of_two_smaller_than(n)
    # for m < k: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
    if m < k:
        return PATH(m, D[0:k]) + [MTH(D[k:n])]
    # for m >= k: PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
    return PATH(m - k, D[k:n]) + [MTH(D[0:k])]


# 2.1.4.1. Generating a Consistency Proof


def PROOF(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802, N803
    # PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m < n
    assert 0 < m < len(D)
    return SUBPROOF(m, D, True)


def SUBPROOF(m: int, D: list[bytes], b: bool) -> list[bytes]:  # noqa: N802, N803
    n = len(D)
    # If m = n, i.e. m is equal to the number of leaves: SUBPROOF(m, D[m], true) = {} and
    # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    if m == n:
        return [] if b else [MTH(D)]
    # For m < n, let k be the largest power of two smaller than n.
    k = largest_power_of_two_smaller_than(n)
    # If m <= k: SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
    if m <= k:
        return SUBPROOF(m, D[0:k], b) + [MTH(D[k:n])]
    # If m > k: SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
    return SUBPROOF(m - k, D[k:n], False) + [MTH(D[0:k])]


# 2.1.3.2. Verifying an Inclusion Proof


def verify_inclusion(
    leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: list[bytes], root_hash: bytes
) -> bool:
    # 1. If leaf_index is greater than or equal to tree_size, then fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = hash_
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn % 2 == 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = HASH(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            # LSB(fn) is set or fn is 0.
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        # Otherwise: i. Set r to HASH(0x01 || r || p).
        else:
            r = HASH(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn // 2, sn // 2
    # 5. If sn is equal to 0 and r and the root_hash are equal, the log has proven inclusion.
    return sn == 0 and r == root_hash


# 2.1.4.2. Verifying Consistency between Two Tree Heads


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    # (the algorithm is specified for 0 < first < second)
    assert 0 < first < second
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if len(consistency_path) == 0:
        return False
    path = list(consistency_path)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    if first in [2**i for i in range(first.bit_length())]:
        path = [first_hash, *path]
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn % 2 == 1:
        fn, sn = fn // 2, sn // 2
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn % 2 == 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = HASH(b"\x01" + c + fr)
            sr = HASH(b"\x01" + c + sr)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            # LSB(fn) is set or fn is 0.
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        # Otherwise: i. Set sr to HASH(0x01 || sr || c).
        else:
            sr = HASH(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn // 2, sn // 2
    # 7. Verify that fr == first_hash, sr == second_hash, and sn == 0.
    return fr == first_hash and sr == second_hash and sn == 0
