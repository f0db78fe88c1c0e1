"""Disclosure log tables: entries (the Merkle leaves), tree nodes, the head row, checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """One log entry; ``seq`` is its leaf index. Rows are inserted once and never changed."""

    __tablename__ = "audit_entries"

    # On SQLite an INTEGER primary key is the rowid: entries are stored in seq order.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    # UTC microseconds since the Unix epoch: exact and identical on every database and in the
    # leaf bytes; never decreases along the log.
    time_us: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(40))
    actor_agency: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recipient_agency: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(8), nullable=True)
    agreement_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rule_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Keyed HMAC of the subject id (never the id itself) and the blind-index key that made it.
    subject_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_index_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str] = mapped_column(String(40))
    details: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)

    # (column, seq) indexes serve "filter, then page in log order" with one index range scan.
    __table_args__ = (
        Index("ix_audit_entries_subject_index_seq", "subject_index", "seq"),
        Index("ix_audit_entries_actor_agency_seq", "actor_agency", "seq"),
        Index("ix_audit_entries_recipient_agency_seq", "recipient_agency", "seq"),
        Index("ix_audit_entries_event_type_seq", "event_type", "seq"),
        Index("ix_audit_entries_purpose_seq", "purpose", "seq"),
        Index("ix_audit_entries_decision_seq", "decision", "seq"),
        Index("ix_audit_entries_agreement_id_seq", "agreement_id", "seq"),
        Index("ix_audit_entries_rule_id_seq", "rule_id", "seq"),
        Index("ix_audit_entries_time_us", "time_us"),
    )


class AuditNode(Base):
    """Hash of a complete perfect subtree at level >= 1; level 0 is audit_entries.leaf_hash."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = {"sqlite_with_rowid": False}


class AuditHead(Base):
    """The single row appenders lock: tree size, last leaf hash, peaks, last time."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # Hashes of the maximal perfect subtrees of the tree, highest level first (32 bytes each):
    # everything an append needs, so appending reads no other node.
    peaks: Mapped[bytes] = mapped_column(LargeBinary)
    time_us: Mapped[int] = mapped_column(BigInteger)


class AuditCheckpoint(Base):
    """A signed C2SP checkpoint of the tree at one size."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
