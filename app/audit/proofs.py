"""Inclusion and consistency proofs and leaves, served from the database in O(log n) reads."""

from __future__ import annotations

from sqlalchemy import Connection, select

from app.audit import merkle, store
from app.audit.leaf import leaf_bytes
from app.errors import BadRequest, NotFound


def tree_size(conn: Connection) -> int:
    """Number of entries in the log."""
    return store.read_head(conn).size


def _check_size(conn: Connection, size: int, what: str) -> None:
    current = tree_size(conn)
    if size > current:
        raise BadRequest(
            f"{what} {size} is beyond the log, which holds {current} entries.",
            slug="invalid-proof-range",
            log_size=current,
        )


def inclusion(conn: Connection, leaf_index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``leaf_index`` in the tree of ``size`` entries."""
    if not 0 <= leaf_index < size:
        raise BadRequest(
            f"leaf_index {leaf_index} must be below tree_size {size}.", slug="invalid-proof-range"
        )
    _check_size(conn, size, "tree_size")
    return merkle.inclusion_proof(leaf_index, size, store.DbNodeStore(conn))


def consistency(conn: Connection, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of ``first`` and ``second`` entries."""
    if not 0 < first <= second:
        raise BadRequest(
            f"need 0 < first <= second, got first={first}, second={second}.",
            slug="invalid-proof-range",
        )
    _check_size(conn, second, "second")
    return merkle.consistency_proof(first, second, store.DbNodeStore(conn))


def leaf(conn: Connection, seq: int) -> bytes:
    """The exact leaf bytes of entry ``seq``, derived from its stored columns."""
    row = conn.execute(select(*store.ROW_SELECT).where(store.entries.c.seq == seq)).first()
    if row is None:
        raise NotFound(f"The log has no entry {seq}.", slug="audit-entry-not-found")
    return leaf_bytes(tuple(row))
