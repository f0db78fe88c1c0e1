"""Live verification: the database's entries, stored checkpoints, head row and tree nodes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.audit import checkpoints, export, merkle, store
from app.audit.checkpoints import CheckpointSigner
from app.audit.merkle import NodeKey
from app.audit.verify import Chunk, LogVerifier, Problem, Report, VerificationFailed, verify_chunks

BATCH = 10_000


def database_chunks(
    sessions: sessionmaker[Session], size: int, batch: int = BATCH
) -> Iterator[Chunk]:
    """The stored rows below ``size`` in chunks, each read in its own short transaction."""
    for rows in export.iter_chunks(sessions, size, batch=batch):
        yield rows, None


class NodeChecker:
    """Recomputes every complete perfect subtree as leaves arrive and compares the stored one."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.frontier: dict[NodeKey, bytes] = {}

    def __call__(self, start: int, hashes: list[bytes]) -> None:
        # append_many returns new nodes level by level, each level in index order.
        new = merkle.append_many(start, hashes, self.frontier.__getitem__)
        size = start + len(hashes)
        newest: dict[NodeKey, bytes] = {}
        with self.sessions() as session:
            conn = session.connection()
            for level, group in groupby(new, key=itemgetter(0)):
                nodes = list(group)
                newest[(level, nodes[-1][1])] = nodes[-1][2]
                if level:
                    self._compare(conn, level, nodes)
            session.rollback()
        self.frontier = {
            key: newest[key] if key in newest else self.frontier[key]
            for key in store.peak_keys(size)
        }

    @staticmethod
    def _compare(conn: Connection, level: int, computed: list[tuple[int, int, bytes]]) -> None:
        first, last = computed[0][1], computed[-1][1]
        stored = store.interior_nodes(conn, level, first, last)
        if stored == [(i, h) for _, i, h in computed]:
            return
        found = dict(stored)
        for _, index, h in computed:
            if found.get(index) != h:
                what = "missing" if index not in found else "altered"
                low, high = index << level, ((index + 1) << level) - 1
                raise VerificationFailed(
                    Problem(
                        low,
                        (
                            f"stored tree node (level {level}, index {index}) is {what}: "
                            f"proofs for seq {low}..{high} would not verify"
                        ),
                    )
                )


def verify_database(
    sessions: sessionmaker[Session],
    signer: CheckpointSigner,
    *,
    extra_notes: Sequence[tuple[str, str]] = (),
    keys: Sequence[str] | None = None,
    batch: int = BATCH,
) -> Report:
    """Verify the log as stored, against its stored checkpoints and any given ones.

    ``keys`` default to the keyring's checkpoint keys; pass pinned verifier keys to trust
    nothing the server holds.
    """
    with sessions() as session:
        conn = session.connection()
        head = store.read_head_unchecked(conn)
        # Without a head row, read every stored entry: the check after says what is wrong.
        size = head[0] if head is not None else store.stored_count_bound(conn)
        notes = [(f"stored at tree size {c.tree_size}", c.note) for c in checkpoints.stored(conn)]
        session.rollback()

    def after(verifier: LogVerifier) -> None:
        _check_head(sessions, head, verifier)

    return verify_chunks(
        database_chunks(sessions, size, batch),
        [*notes, *extra_notes],
        list(keys) if keys is not None else signer.verifier_keys(),
        origin=signer.origin,
        after=after,
        on_leaves=NodeChecker(sessions),
    )


def _check_head(
    sessions: sessionmaker[Session], head: tuple[int, bytes, bytes] | None, verifier: LogVerifier
) -> None:
    """The head row must describe the tree the entries make, and nothing may lie beyond it."""
    if head is None:
        if verifier.size:
            raise VerificationFailed(Problem(None, "the head row is missing"))
        return
    size, last_hash, peaks = head
    if verifier.size != size:
        raise VerificationFailed(
            Problem(
                verifier.size,
                f"the head row counts {size} entries but the log holds {verifier.size}: "
                f"entries {verifier.size}..{size - 1} are missing",
            )
        )
    expected_peaks = b"".join(h for _, h in verifier.builder.peaks())
    if size and (last_hash != verifier.last_hash or peaks != expected_peaks):
        raise VerificationFailed(Problem(None, "the head row does not match the entries"))
    with sessions() as session:
        beyond = store.first_seq_beyond_head(session.connection())
        session.rollback()
    if beyond is not None:
        raise VerificationFailed(
            Problem(beyond, "an entry lies beyond the head row (written around the log's own code)")
        )
