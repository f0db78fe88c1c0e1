"""Creating and linking subjects; the merged identity is sealed with the subject's own key."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.crypto.aead import DecryptionError
from app.crypto.envelope import BlindIndex, DataKey, Envelope, WrappedKey, normalise_identifier
from app.crypto.keyring import KeyKind
from app.errors import Conflict, Gone, IntegrityFailure
from app.referrals.schemas import IDENTITY_FIELDS, SubjectIn
from app.subjects.models import Subject, SubjectIdentifier

if TYPE_CHECKING:
    from app.referrals.snapshot import SubjectSnapshot

IDENTITY_CONTEXT = "subject.identity"
IDENTIFIER_DOMAIN = "subject-identifier"
# A request that lost the race to record a person sees the winner on its second look.
LINK_ATTEMPTS = 3


def new_subject_id() -> str:
    return "sub_" + secrets.token_urlsafe(12)


def identifier_digest(blind: BlindIndex, system: str, value: str, key_id: str | None = None) -> str:
    return blind.digest(IDENTIFIER_DOMAIN, f"{system}\x00{normalise_identifier(value)}", key_id)


def identifier_digests(blind: BlindIndex, data: SubjectIn) -> list[str]:
    return [identifier_digest(blind, i.system, i.value) for i in data.identifiers]


def lookup_digests(blind: BlindIndex, data: SubjectIn) -> list[str]:
    """Digests under every blind-index key: a re-index after rotation may not have reached a row."""
    return [
        identifier_digest(blind, i.system, i.value, entry.id)
        for i in data.identifiers for entry in blind.keyring.of_kind(KeyKind.blind_index)
    ]


def find_linked(session: Session, holders: tuple[str, ...]) -> Subject | None:
    """The one subject the identifiers link to (``linked_subject_ids``), locked until the transaction ends.

    The lock lets concurrent referrals about one person merge into its identity one after the
    other, each reading what the previous one wrote (on SQLite, writers queue anyway).
    """
    if len(holders) != 1:
        return None
    return session.get(Subject, holders[0], with_for_update=True, populate_existing=True)


def data_key(envelope: Envelope, subject: Subject | SubjectSnapshot) -> DataKey:
    if subject.wrapped_key is None or subject.kek_id is None:
        raise Gone("This person's data has been erased.", slug="subject-erased")
    try:
        return envelope.unwrap(subject.id, WrappedKey(subject.kek_id, subject.wrapped_key))
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


@dataclass(frozen=True, slots=True)
class Link:
    """The subject a new referral belongs to, and the person's data key, already unwrapped.

    `conflicts` names the known subjects its identifiers pointed to when they named more than
    one person: the referral then gets a subject of its own, flagged for the coordinator.
    `new`: the subject was created for this referral (it has no other referral to link to).
    """

    subject: Subject
    key: DataKey
    conflicts: tuple[str, ...] = ()
    new: bool = False


def create_or_link(
    session: Session, envelope: Envelope, blind: BlindIndex, data: SubjectIn, now: datetime,
    *, retain_until: datetime | None = None,
) -> Link:
    """A new subject, or the existing one an identifier links to (its identity updated).

    Two referrals about a new person may both find nobody linked. The identifier digests are
    unique, so whichever request records them first records the person; the other drops the
    subject it was about to create and links to that one instead. Identifiers that belong to
    two different known people link to neither: a guess would show one person's referrals
    the other's subject id, and a merge is the coordinator's call (`Link.conflicts`).

    A subject created here gets ``retain_until``: its first referral's date.
    """
    # One order for every request, so two claiming the same digests never deadlock.
    digests = sorted(set(identifier_digests(blind, data)))
    lookup = lookup_digests(blind, data)
    incoming = identity_document(data)
    for _ in range(LINK_ATTEMPTS):
        holders = linked_subject_ids(session, lookup)
        if len(holders) > 1:
            return _create_flagged(session, envelope, blind, data, incoming, digests, holders, now, retain_until)
        subject = find_linked(session, holders)
        if subject is not None:
            try:
                with session.begin_nested():
                    if _claim(session, blind, subject.id, digests):
                        raise _IdentifierTaken  # another person holds one now: look again
            except _IdentifierTaken:
                continue
            return Link(subject, _update(session, envelope, subject, incoming, now))
        try:
            with session.begin_nested():
                subject, key = _create(session, envelope, incoming, now, retain_until)
                if _claim(session, blind, subject.id, digests):
                    raise _IdentifierTaken
        except _IdentifierTaken:
            continue  # the savepoint took the new subject with it: look again, and link
        return Link(subject, key, new=True)
    raise _concurrent_change()


@dataclass(frozen=True, slots=True)
class Plan:
    """Who a new referral is about, worked out before the writer's turn, with the key to seal for them.

    `holders`: the subjects the identifiers named when read (none: a person new to the network).
    `identity`: the sealed identity to store (the new person's, or the known one merged with what
    this referral says); `seen`: the known person's sealed identity as read, which must still be
    there in the turn. `wrapped`: the person's data key, wrapped (a new person's is stored with it).
    """

    holders: tuple[str, ...]
    subject_id: str
    key: DataKey
    identity: bytes
    wrapped: WrappedKey
    seen: bytes | None = None

    @property
    def new(self) -> bool:
        return not self.holders

    def stand_in(self) -> Subject:
        """The person as a referral's rendering needs them (id and wrapped key), never stored."""
        return Subject(id=self.subject_id, wrapped_key=self.wrapped.wrapped, kek_id=self.wrapped.kek_id)


def plan_link(session: Session, envelope: Envelope, blind: BlindIndex, data: SubjectIn) -> Plan | None:
    """Outside the writer's turn (reads only): the person, their key and sealed identity.

    None when the identifiers name several known people: that referral is decided in the turn
    (`create_or_link`), where its flag is raised.
    """
    holders = linked_subject_ids(session, lookup_digests(blind, data))
    incoming = identity_document(data)
    if len(holders) > 1:
        return None
    if holders:
        subject = session.get(Subject, holders[0])
        if subject is None or subject.identity is None:  # gone, or erased: decided in the turn
            return None
        key = data_key(envelope, subject)
        merged = _merge(read_identity(envelope, subject), incoming)
        assert subject.kek_id is not None and subject.wrapped_key is not None  # data_key found them
        return Plan(holders, subject.id, key, key.seal(json.dumps(merged).encode(), IDENTITY_CONTEXT),
                    WrappedKey(subject.kek_id, subject.wrapped_key), seen=subject.identity)
    subject_id = new_subject_id()
    key, wrapped = envelope.new_data_key(subject_id)
    return Plan((), subject_id, key, key.seal(json.dumps(incoming).encode(), IDENTITY_CONTEXT), wrapped)


def commit_link(
    session: Session, blind: BlindIndex, data: SubjectIn, plan: Plan, now: datetime,
    *, retain_until: datetime | None = None,
) -> Link | None:
    """In the writer's turn: store the planned person if the plan still holds, else None.

    It holds when the identifiers name the same people as when read and a known person's
    identity is as read (no referral merged into it, no erasure since). Otherwise nothing is
    left behind and the caller decides again, in the turn (`create_or_link`).
    """
    if linked_subject_ids(session, lookup_digests(blind, data)) != plan.holders:
        return None
    digests = sorted(set(identifier_digests(blind, data)))
    try:
        with session.begin_nested():
            if plan.new:
                subject = Subject(id=plan.subject_id, created_at=now, updated_at=now, retain_until=retain_until,
                                  wrapped_key=plan.wrapped.wrapped, kek_id=plan.wrapped.kek_id,
                                  identity=plan.identity)
                session.add(subject)
                session.flush()
            else:
                found = find_linked(session, plan.holders)
                if found is None or found.identity != plan.seen:
                    raise _IdentifierTaken  # changed since it was read: decide again
                subject = found
            if _claim(session, blind, subject.id, digests):
                raise _IdentifierTaken
            if not plan.new:
                subject.identity, subject.updated_at = plan.identity, now
                session.flush()
    except _IdentifierTaken:
        return None
    return Link(subject, plan.key, new=plan.new)


def linked_subject_ids(session: Session, digests: list[str]) -> tuple[str, ...]:
    """Every subject one of the digests belongs to (more than one: the identifiers disagree)."""
    if not digests:
        return ()
    found = session.scalars(
        select(SubjectIdentifier.subject_id).where(SubjectIdentifier.digest.in_(digests)).distinct()
    )
    return tuple(sorted(found))


class _IdentifierTaken(Exception):
    """Another request recorded one of the identifiers first."""


def _concurrent_change() -> Conflict:
    return Conflict(
        "Another referral about the same person was being recorded at the same time; retry.",
        slug="concurrent-change", headers={"Retry-After": "1"},
    )


def _create(
    session: Session, envelope: Envelope, identity: dict[str, Any], now: datetime, retain_until: datetime | None,
) -> tuple[Subject, DataKey]:
    subject = Subject(id=new_subject_id(), created_at=now, updated_at=now, retain_until=retain_until)
    key, wrapped = envelope.new_data_key(subject.id)
    subject.wrapped_key, subject.kek_id = wrapped.wrapped, wrapped.kek_id
    subject.identity = key.seal(json.dumps(identity).encode(), IDENTITY_CONTEXT)
    session.add(subject)
    session.flush()
    return subject, key


def _create_flagged(
    session: Session, envelope: Envelope, blind: BlindIndex, data: SubjectIn, identity: dict[str, Any],
    digests: list[str], candidates: tuple[str, ...], now: datetime, retain_until: datetime | None,
) -> Link:
    """A subject of its own for a referral whose identifiers name several known people.

    It records the identifiers nobody holds yet (a later referral carrying only those links
    here); the others stay with the people who hold them.
    """
    subject, key = _create(session, envelope, identity, now, retain_until)
    _claim(session, blind, subject.id, digests)
    return Link(subject, key, conflicts=candidates, new=True)


def _update(
    session: Session, envelope: Envelope, subject: Subject, incoming: dict[str, Any], now: datetime
) -> DataKey:
    key = data_key(envelope, subject)
    merged = _merge(read_identity(envelope, subject), incoming)
    subject.identity = key.seal(json.dumps(merged).encode(), IDENTITY_CONTEXT)
    subject.updated_at = now
    session.flush()
    return key


def _claim(session: Session, blind: BlindIndex, subject_id: str, digests: list[str]) -> list[str]:
    """Record the digests as the subject's; returns those another subject holds.

    A digest already recorded is left alone (ON CONFLICT DO NOTHING), so no error aborts the
    transaction. On PostgreSQL the insert waits for a transaction that has just inserted the
    same digest, so the read that follows sees who holds it.
    """
    if not digests:
        return []
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(SubjectIdentifier).on_conflict_do_nothing(index_elements=["digest"]),
        [{"digest": d, "subject_id": subject_id, "key_id": blind.key_id} for d in digests],
    )
    holders = {
        digest: holder for digest, holder in session.execute(
            select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(SubjectIdentifier.digest.in_(digests))
        )
    }
    return [d for d in digests if holders.get(d) != subject_id]


def read_identity(envelope: Envelope, subject: Subject | SubjectSnapshot) -> dict[str, Any]:
    """The person's merged identity (re-indexing, linking): never rendered into a referral."""
    if subject.identity is None:
        raise Gone("This person's data has been erased.", slug="subject-erased")
    try:
        raw = data_key(envelope, subject).open(subject.identity, IDENTITY_CONTEXT)
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
    identity: dict[str, Any] = json.loads(raw)
    return identity


def identity_document(data: SubjectIn) -> dict[str, Any]:
    """The identifying fields as submitted, without empty ones (sealed per referral and merged)."""
    dumped = data.model_dump(mode="json", include=set(IDENTITY_FIELDS))
    return {k: v for k, v in dumped.items() if v not in (None, [])}


def _merge(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    # What was recorded first stands; a later referral only fills gaps.
    merged = {**{k: v for k, v in incoming.items() if k != "identifiers"}, **current}
    identifiers = {(i["system"], i["value"]): i for i in current.get("identifiers", [])}
    identifiers.update({(i["system"], i["value"]): i for i in incoming.get("identifiers", [])})
    if identifiers:
        merged["identifiers"] = list(identifiers.values())
    return merged
