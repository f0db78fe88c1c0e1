"""The log's SQL: the head row, the append's statements, and a database-backed Merkle NodeStore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from app.audit.leaf import ROW_COLUMNS, ZERO_HASH
from app.audit.merkle import HASH_SIZE, NodeKey, StoredNode
from app.audit.models import AuditEntry, AuditHead, AuditNode
from app.db import pipelined

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


# Built once: constructing statements costs more than running them.
_READ_HEAD = select(head.c.size, head.c.last_hash, head.c.peaks, head.c.time_us).where(head.c.id == HEAD_ID)


def _to_head(row: Any) -> Head:
    size, last_hash, blob, time_us = row
    blob = bytes(blob)
    count = bin(size).count("1")
    if len(blob) != count * HASH_SIZE or len(bytes(last_hash)) != HASH_SIZE:
        raise CorruptHead(f"head row of size {size} holds malformed hashes")
    peaks = tuple(blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))
    return Head(size, bytes(last_hash), peaks, time_us)


def read_head(conn: Connection) -> Head:
    """The head (empty when no entry was ever appended); appenders lock it (``Appender``)."""
    row = conn.execute(_READ_HEAD).first()
    return _EMPTY_HEAD if row is None else _to_head(row)


_EMPTY_HEAD = Head(0, ZERO_HASH, (), 0)


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


class Appender:
    """The append's statements on a DBAPI connection (sqlite3 or psycopg), in its open transaction.

    The append is the hottest write of the service: every disclosure makes one.  Its SQL is
    written out once per driver and run on the driver's cursor, with plain ints and bytes as
    parameters, so a batch costs what the database costs: lock and read the head, insert the
    entries and nodes (one executemany each), move the head.
    """

    def __init__(self, dbapi_connection: Any) -> None:
        self.connection = dbapi_connection
        self.sql = _PSYCOPG_SQL if _is_psycopg(dbapi_connection) else _SQLITE_SQL

    def read_head_locked(self) -> Head:
        """The head, locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLite's
        BEGIN IMMEDIATE already serializes writers); created empty on first use."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.sql.lock_head)
            row = cursor.fetchone()
            if row is None:
                cursor.execute(self.sql.insert_head, (ZERO_HASH, b""))
                cursor.execute(self.sql.lock_head)
                row = cursor.fetchone()
        finally:
            cursor.close()
        return _to_head(row)

    def write(self, rows: Sequence[tuple[Any, ...]], new_nodes: Sequence[StoredNode], new_head: Head) -> None:
        """Insert entries (tuples in ENTRY_COLUMNS order) and interior nodes, and move the head."""
        interior = [(lvl, i, h) for lvl, i, h in new_nodes if lvl]
        cursor = self.connection.cursor()
        try:
            with pipelined(self.connection):  # PostgreSQL: the three statements in one round trip
                cursor.executemany(self.sql.insert_entries, rows)
                if interior:
                    cursor.executemany(self.sql.insert_nodes, interior)
                cursor.execute(
                    self.sql.move_head,
                    (new_head.size, new_head.last_hash, b"".join(new_head.peaks), new_head.time_us),
                )
        finally:
            cursor.close()


ENTRY_COLUMNS = (*ROW_COLUMNS, "leaf_hash")
"""Column order of the rows ``Appender.write`` inserts."""


@dataclass(frozen=True, slots=True)
class _AppendSql:
    lock_head: str
    insert_head: str
    insert_entries: str
    insert_nodes: str
    move_head: str


def _append_sql(mark: str, lock: str) -> _AppendSql:
    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    # Table and column names and placeholders only: no value is ever formatted in.
    columns = ", ".join(ENTRY_COLUMNS)
    return _AppendSql(
        lock_head=f"SELECT size, last_hash, peaks, time_us FROM audit_head WHERE id = {HEAD_ID}{lock}",  # noqa: S608
        insert_head=(f"INSERT INTO audit_head (id, size, last_hash, peaks, time_us) VALUES "  # noqa: S608
                     f"({HEAD_ID}, 0, {marks(2)}, 0) ON CONFLICT DO NOTHING"),
        insert_entries=f"INSERT INTO audit_entries ({columns}) VALUES ({marks(len(ENTRY_COLUMNS))})",  # noqa: S608
        insert_nodes=f"INSERT INTO audit_nodes (level, node_index, hash) VALUES ({marks(3)})",  # noqa: S608
        move_head=(f"UPDATE audit_head SET size = {mark}, last_hash = {mark}, peaks = {mark}, "  # noqa: S608
                   f"time_us = {mark} WHERE id = {HEAD_ID}"),
    )


_SQLITE_SQL = _append_sql("?", "")
_PSYCOPG_SQL = _append_sql("%s", " FOR UPDATE")


def _is_psycopg(dbapi_connection: Any) -> bool:
    return type(dbapi_connection).__module__.startswith("psycopg")


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
