"""A lease row: one process at a time runs a deployment-wide job, on SQLite and PostgreSQL alike.

The row names its holder (host, pid, token) and an expiry the holder keeps pushing forward
while it works.  Another process takes over only when the lease expired, or when the holder
ran on the same host and its process is gone (a killed job does not block the next run).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction, utcnow
from app.retention.models import JobLease

DEFAULT_TTL = timedelta(minutes=5)


class LeaseLost(RuntimeError):
    """Another process holds the job now: stop at once."""


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    holder: str | None
    expires_at: datetime | None
    last_completed_at: datetime | None


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(
        self, sessions: sessionmaker[Session], name: str, ttl: timedelta = DEFAULT_TTL
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.ttl = ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def status(self) -> LeaseStatus:
        with transaction(self.sessions) as session:
            row = session.get(JobLease, self.name)
            if row is None:
                return LeaseStatus(None, None, None)
            return LeaseStatus(row.holder, row.expires_at, row.last_completed_at)

    def acquire(self) -> bool:
        now = utcnow()
        try:
            with transaction(self.sessions) as session:
                row = session.get(JobLease, self.name, with_for_update=True)
                if row is None:
                    session.add(
                        JobLease(
                            name=self.name,
                            holder=self.holder,
                            expires_at=now + self.ttl,
                            last_started_at=now,
                        )
                    )
                    return True
                free = (
                    row.holder is None
                    or row.holder == self.holder
                    or row.expires_at is None
                    or row.expires_at <= now
                    or _holder_is_dead(row.holder)
                )
                if not free:
                    return False
                row.holder, row.expires_at, row.last_started_at = self.holder, now + self.ttl, now
                return True
        except IntegrityError:  # another process inserted the row first
            return False

    def renew(self) -> None:
        with transaction(self.sessions) as session:
            row = session.get(JobLease, self.name, with_for_update=True)
            if row is None or row.holder != self.holder:
                raise LeaseLost(f"the {self.name} lease was taken over")
            row.expires_at = utcnow() + self.ttl

    def release(self, *, completed: bool) -> None:
        with transaction(self.sessions) as session:
            row = session.get(JobLease, self.name, with_for_update=True)
            if row is None or row.holder != self.holder:
                return
            row.holder, row.expires_at = None, None
            if completed:
                row.last_completed_at = utcnow()
