"""Verification of the whole log, shared by the live (database) and offline (export) verifiers."""

# For every entry, in order: its seq is its position; its leaf bytes, rebuilt from its columns,
# hash to its stored leaf hash (and equal the exported leaf, offline); its prev_hash is the
# previous entry's leaf hash; its time does not run backwards.  The RFC 9162 tree is rebuilt
# from the leaves, and every signed checkpoint must verify against the trusted keys and match
# the rebuilt root at its size.  The first problem stops verification and names its seq.

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.audit.leaf import ZERO_HASH, leaf_bytes_many
from app.audit.merkle import TreeBuilder
from app.audit.note import Checkpoint, NoteError, verify_checkpoint

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong, and the first bad sequence number when there is one."""

    seq: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.seq is None else f"seq {self.seq}: {self.message}"


class VerificationFailed(Exception):
    """The log does not verify; ``problem`` says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CheckedCheckpoint:
    source: str
    tree_size: int
    root: bytes
    signed_by: tuple[str, ...]


@dataclass
class Report:
    """The outcome: counts, root, checkpoints matched, speed, and the first problem if any."""

    entries: int = 0
    root: bytes = ZERO_HASH
    checkpoints: list[CheckedCheckpoint] = field(default_factory=list)
    seconds: float = 0.0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0

    @property
    def signed_size(self) -> int:
        """Largest tree size a matching checkpoint covers."""
        return max((c.tree_size for c in self.checkpoints), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "root": self.root.hex(),
            "signed_size": self.signed_size,
            "checkpoints": len(self.checkpoints),
            "seconds": round(self.seconds, 6),
            "entries_per_second": round(self.entries_per_second),
            "problem": None
            if self.problem is None
            else {
                "seq": self.problem.seq,
                "message": self.problem.message,
            },
        }


def parse_checkpoints(
    notes: Sequence[tuple[str, str]], keys: Sequence[str], origin: str | None
) -> list[tuple[str, Checkpoint]]:
    """Verify each (source, note) signature; the first bad one fails verification."""
    out = []
    for source, text in notes:
        try:
            out.append((source, verify_checkpoint(text, keys, origin=origin)))
        except NoteError as exc:
            raise VerificationFailed(Problem(None, f"checkpoint {source}: {exc}")) from None
    return sorted(out, key=lambda item: item[1].tree_size)


class LogVerifier:
    """Feeds on chunks of rows (ROW_COLUMNS + leaf_hash), in sequence order."""

    def __init__(
        self,
        checkpoints: Sequence[tuple[str, Checkpoint]],
        on_leaves: Callable[[int, list[bytes]], None] | None = None,
    ) -> None:
        self.on_leaves = on_leaves  # sees every verified leaf hash (live: checks stored nodes)
        self.builder = TreeBuilder()
        self.pending = list(checkpoints)  # sorted by tree size
        self.last_hash = ZERO_HASH
        self.last_time: int | None = None
        self.report = Report()
        self._check_checkpoints()

    @property
    def size(self) -> int:
        return self.builder.size

    def feed(self, rows: Sequence[Sequence[Any]], leaves: Sequence[bytes] | None = None) -> None:
        """Check a chunk; ``leaves`` are leaf bytes claimed by an export, compared too."""
        if not rows:
            return
        start = self.size
        inputs = leaf_bytes_many(rows, hash_input=True)  # 0x00 || leaf
        hashes = list(map(_digest, map(_sha256, inputs)))
        bad = self._first_bad(rows, inputs, hashes, leaves)
        good = len(rows) if bad is None else bad[0]
        if self.on_leaves is not None and good:
            self.on_leaves(start, hashes[:good])
        self._extend(hashes[:good])
        if bad is not None:
            raise VerificationFailed(Problem(start + bad[0], bad[1]))
        self.last_hash = hashes[-1]
        self.last_time = rows[-1][1]

    def _first_bad(
        self,
        rows: Sequence[Sequence[Any]],
        inputs: list[bytes],
        hashes: list[bytes],
        leaves: Sequence[bytes] | None,
    ) -> tuple[int, str] | None:
        start = self.size
        seqs = [r[0] for r in rows]
        stored = [r[14] for r in rows]
        prevs = [r[13] for r in rows]
        times = [r[1] for r in rows]
        chained = [self.last_hash, *hashes[:-1]]
        first_time = times[0] if self.last_time is None else self.last_time
        fine = (
            seqs == list(range(start, start + len(rows)))
            and (leaves is None or [b"\x00" + leaf for leaf in leaves] == inputs)
            and stored == hashes
            and prevs == chained
            and times == sorted(times)
            and times[0] >= first_time
        )
        if fine:
            return None
        previous_time = first_time
        for i, row in enumerate(rows):
            problem = self._entry_problem(
                start + i,
                row,
                inputs[i][1:],
                hashes[i],
                chained[i],
                previous_time,
                None if leaves is None else leaves[i],
            )
            if problem is not None:
                return i, problem
            previous_time = row[1]
        raise AssertionError("a chunk failed its checks but no entry did")

    @staticmethod
    def _entry_problem(
        position: int,
        row: Sequence[Any],
        rebuilt: bytes,
        hashed: bytes,
        chained: bytes,
        previous_time: int,
        claimed: bytes | None,
    ) -> str | None:
        seq = row[0]
        if seq != position:
            if seq > position:
                return f"entry is missing: seq {seq} comes next (deleted or out of order)"
            return f"seq {seq} appears again at position {position} (duplicated or out of order)"
        if claimed is not None and claimed != rebuilt:
            return "the exported leaf bytes do not match the entry's columns (altered)"
        if bytes(row[14]) != hashed:
            return "the entry's contents do not match its leaf hash (the entry was altered)"
        if bytes(row[13]) != chained:
            return (
                f"prev_hash is not the leaf hash of seq {position - 1} (an entry was "
                "removed, reordered or altered)"
                if position
                else "prev_hash of seq 0 is not zero"
            )
        if row[1] < previous_time:
            return "time runs backwards (entries were reordered or altered)"
        return None

    def _extend(self, hashes: list[bytes]) -> None:
        """Add leaf hashes, checking each checkpoint as the tree reaches its size."""
        done = 0
        while done < len(hashes):
            target = self.size + len(hashes) - done
            if self.pending and self.pending[0][1].tree_size < target:
                target = self.pending[0][1].tree_size
            step = target - self.size
            self.builder.extend(hashes[done : done + step])
            done += step
            self._check_checkpoints()

    def _check_checkpoints(self) -> None:
        while self.pending and self.pending[0][1].tree_size == self.size:
            source, checkpoint = self.pending.pop(0)
            if checkpoint.root_hash != self.builder.root():
                since = self.report.signed_size
                raise VerificationFailed(
                    Problem(
                        since,
                        f"checkpoint {source} (tree size {checkpoint.tree_size}) does not "
                        f"match the log: an entry in seq {since}..{checkpoint.tree_size - 1} "
                        "was altered or replaced after it was signed",
                    )
                )
            self.report.checkpoints.append(
                CheckedCheckpoint(
                    source, checkpoint.tree_size, checkpoint.root_hash, checkpoint.verified_by
                )
            )

    def finish(self) -> Report:
        """Checks after the last entry: nothing signed may be missing."""
        if self.pending:
            source, checkpoint = self.pending[0]
            raise VerificationFailed(
                Problem(
                    self.size,
                    f"the log ends at {self.size} entries but checkpoint {source} signed "
                    f"{checkpoint.tree_size}: entries {self.size}..{checkpoint.tree_size - 1} were "
                    "removed (truncated)",
                )
            )
        self.report.entries = self.size
        self.report.root = self.builder.root()
        return self.report


Chunk = tuple[Sequence[Sequence[Any]], Sequence[bytes] | None]
"""Rows (ROW_COLUMNS + leaf_hash) and, from an export, the leaf bytes it claims (or None)."""


def verify_chunks(
    chunks: Iterable[Chunk],
    notes: Sequence[tuple[str, str]],
    keys: Sequence[str],
    *,
    origin: str | None = None,
    after: Callable[[LogVerifier], None] | None = None,
    on_leaves: Callable[[int, list[bytes]], None] | None = None,
) -> Report:
    """Verify a whole log; the first failure becomes the report's problem.

    ``notes`` are (source, signed checkpoint text); ``after`` runs extra checks at the end
    (the live verifier compares the head row) and may raise VerificationFailed; ``on_leaves``
    sees each chunk's verified leaf hashes (the live verifier checks the stored tree nodes).
    """
    started = time.perf_counter()
    verifier: LogVerifier | None = None
    try:
        verifier = LogVerifier(parse_checkpoints(notes, keys, origin), on_leaves)
        for rows, leaves in chunks:
            verifier.feed(rows, leaves)
        report = verifier.finish()
        if after is not None:
            after(verifier)
    except VerificationFailed as exc:
        report = verifier.report if verifier is not None else Report()
        report.entries = verifier.size if verifier is not None else 0
        report.problem = exc.problem
    report.seconds = time.perf_counter() - started
    return report
