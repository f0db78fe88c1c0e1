"""The log's SQL: the locked head row, inserts, and a database-backed Merkle NodeStore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.audit.leaf import ROW_COLUMNS, ZERO_HASH
from app.audit.merkle import HASH_SIZE, NodeKey, StoredNode
from app.audit.models import AuditEntry, AuditHead, AuditNode

entries = cast(Table, AuditEntry.__table__)
nodes = cast(Table, AuditNode.__table__)
head = cast(Table, AuditHead.__table__)
HEAD_ID = 1
ROW_SELECT = [entries.c[name] for name in ROW_COLUMNS]
"""The stored columns a leaf is made of, in leaf order (see app.audit.leaf)."""


class CorruptHead(RuntimeError):
    """The head row does not describe a tree (its peaks do not fit its size)."""


@dataclass(frozen=True, slots=True)
class Head:
    """The tree as the head row records it."""

    size: int
    last_hash: bytes
    peaks: tuple[bytes, ...]  # maximal perfect subtrees, highest level first
    time_us: int

    def peak_nodes(self) -> dict[NodeKey, bytes]:
        """The peaks keyed by (level, index)."""
        return dict(zip(peak_keys(self.size), self.peaks, strict=True))


def peak_keys(size: int) -> list[NodeKey]:
    """(level, index) of the maximal perfect subtrees of a tree of ``size``, highest first."""
    levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
    return [(lvl, (size >> lvl) - 1) for lvl in levels]


def _head_query(*, lock: bool) -> Any:
    query = select(head.c.size, head.c.last_hash, head.c.peaks, head.c.time_us).where(
        head.c.id == HEAD_ID
    )
    # FOR UPDATE serializes appenders across processes on PostgreSQL; SQLite's BEGIN
    # IMMEDIATE already did (SQLAlchemy renders nothing there).
    return query.with_for_update() if lock else query


# Built once: constructing statements costs more than running them on the append path.
_READ_HEAD = _head_query(lock=False)
_LOCK_HEAD = _head_query(lock=True)
_INSERT_ENTRIES = entries.insert()
_INSERT_NODES = nodes.insert()
_MOVE_HEAD = (
    update(head)
    .where(head.c.id == HEAD_ID)
    .values(
        size=bindparam("new_size"),
        last_hash=bindparam("new_last_hash"),
        peaks=bindparam("new_peaks"),
        time_us=bindparam("new_time_us"),
    )
)


def _to_head(row: Any) -> Head:
    size, last_hash, blob, time_us = row
    blob = bytes(blob)
    count = bin(size).count("1")
    if len(blob) != count * HASH_SIZE or len(bytes(last_hash)) != HASH_SIZE:
        raise CorruptHead(f"head row of size {size} holds malformed hashes")
    peaks = tuple(blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))
    return Head(size, bytes(last_hash), peaks, time_us)


def _insert_ignore(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(head).on_conflict_do_nothing()


def read_head(conn: Connection, *, lock: bool = False) -> Head:
    """The head; created empty on first use. ``lock`` holds it until the transaction ends."""
    query = _LOCK_HEAD if lock else _READ_HEAD
    row = conn.execute(query).first()
    if row is None:
        conn.execute(
            _insert_ignore(conn),
            {"id": HEAD_ID, "size": 0, "last_hash": ZERO_HASH, "peaks": b"", "time_us": 0},
        )
        row = conn.execute(query).one()
    return _to_head(row)


def read_head_unchecked(conn: Connection) -> tuple[int, bytes, bytes] | None:
    """(size, last_hash, peaks blob) as stored, or None: for the verifier, which judges it."""
    row = conn.execute(_READ_HEAD).first()
    return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))


def first_seq_beyond_head(conn: Connection) -> int | None:
    """The smallest stored seq at or past the head's size, if any (one statement, one snapshot:
    an append committing meanwhile moves both or neither)."""
    size = select(func.coalesce(func.max(head.c.size), 0)).where(head.c.id == HEAD_ID)
    query = select(func.min(entries.c.seq)).where(entries.c.seq >= size.scalar_subquery())
    return conn.execute(query).scalar()


def fetch_rows(conn: Connection, start: int, stop: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to ``limit`` rows (ROW_COLUMNS + leaf_hash) with start <= seq < stop, in seq order.

    Plain DBAPI tuples: the verifier and the export read millions of rows, and SQLAlchemy's
    row objects would cost more than verifying them.  Bounds are ints, inlined as literals.
    """
    query = (
        select(*ROW_SELECT, entries.c.leaf_hash)
        .where(entries.c.seq >= int(start), entries.c.seq < int(stop))
        .order_by(entries.c.seq)
        .limit(int(limit))
    )
    return _raw_rows(conn, query)


def _raw_rows(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """Run a query whose only parameters are ints on the DBAPI cursor; plain tuples back."""
    return _raw_sql(
        conn, str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    )


def _raw_sql(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL without parameters on the DBAPI cursor of the connection's transaction."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


def stored_count_bound(conn: Connection) -> int:
    """One past the largest stored seq (0 for an empty table)."""
    last = conn.execute(select(func.max(entries.c.seq))).scalar()
    return 0 if last is None else int(last) + 1


def interior_nodes(conn: Connection, level: int, first: int, last: int) -> list[tuple[int, bytes]]:
    """Stored (index, hash) of one level with first <= index <= last, in index order."""
    query = (
        select(nodes.c.node_index, nodes.c.hash)
        .where(
            nodes.c.level == int(level),
            nodes.c.node_index >= int(first),
            nodes.c.node_index <= int(last),
        )
        .order_by(nodes.c.node_index)
    )
    return [(i, bytes(h)) for i, h in _raw_rows(conn, query)]


def write(
    conn: Connection, rows: list[dict[str, Any]], new_nodes: Sequence[StoredNode], new_head: Head
) -> None:
    """Insert entries and interior nodes and move the head, in the caller's transaction."""
    conn.execute(_INSERT_ENTRIES, rows if len(rows) > 1 else rows[0])
    interior = [{"level": lvl, "node_index": i, "hash": h} for lvl, i, h in new_nodes if lvl]
    if interior:
        conn.execute(_INSERT_NODES, interior if len(interior) > 1 else interior[0])
    conn.execute(
        _MOVE_HEAD,
        {
            "new_size": new_head.size,
            "new_last_hash": new_head.last_hash,
            "new_peaks": b"".join(new_head.peaks),
            "new_time_us": new_head.time_us,
        },
    )


class DbNodeStore:
    """NodeStore over audit_nodes (levels >= 1) and audit_entries.leaf_hash (level 0).

    ``get_nodes`` is one SELECT, whatever the number of keys.  Its SQL is written out from
    integers only: building it with SQLAlchemy cost more than running it (proofs are hot).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queries = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        by_level: dict[int, list[str]] = {}
        for level, index in keys:
            by_level.setdefault(int(level), []).append(str(int(index)))
        parts: list[str] = []
        leaves = by_level.pop(0, None)
        if leaves:
            where = f"seq IN ({', '.join(leaves)})"  # ints, formatted by int() above
            parts.append(f"SELECT 0, seq, leaf_hash FROM audit_entries WHERE {where}")  # noqa: S608
        if by_level:
            conditions = " OR ".join(
                f"(level = {level} AND node_index IN ({', '.join(indexes)}))"
                for level, indexes in sorted(by_level.items())
            )
            parts.append(f"SELECT level, node_index, hash FROM audit_nodes WHERE {conditions}")  # noqa: S608
        if not parts:
            return {}
        self.queries += 1
        rows = _raw_sql(self.conn, " UNION ALL ".join(parts))
        return {(int(lvl), int(i)): bytes(h) for lvl, i, h in rows}
