"""The scheduled purge runs in one process at a time, through a lease row every backend can hold."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from support.retention import START, Clock, rows

from app.db import transaction, utcnow
from app.referrals.models import Referral
from app.retention import purge
from app.retention.lease import Lease
from app.retention.models import JobLease
from app.retention.scheduler import RetentionScheduler
from app.state import AppState


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class TestLease:
    def test_one_holder_at_a_time(self, state: AppState) -> None:
        first, second = Lease(state.sessions, "job"), Lease(state.sessions, "job")
        assert first.acquire()
        assert not second.acquire()
        first.renew()
        first.release(completed=True)
        assert second.acquire()
        assert first.status().last_completed_at is not None
        second.release(completed=False)

    def test_an_expired_lease_is_taken_over(self, state: AppState) -> None:
        first, second = (
            Lease(state.sessions, "job", ttl=timedelta(seconds=-1)),
            Lease(state.sessions, "job"),
        )
        assert first.acquire()
        assert second.acquire()
        with pytest.raises(Exception, match="taken over"):
            first.renew()

    def test_a_lease_of_a_dead_process_on_this_host_is_taken_over(self, state: AppState) -> None:
        with transaction(state.sessions) as session:
            session.add(
                JobLease(
                    name="job",
                    holder=f"{socket.gethostname()}:{_dead_pid()}:abcd",
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
        assert Lease(state.sessions, "job").acquire()

    def test_a_lease_of_another_host_waits_for_its_expiry(self, state: AppState) -> None:
        with transaction(state.sessions) as session:
            session.add(
                JobLease(
                    name="job", holder="elsewhere:1:abcd", expires_at=utcnow() + timedelta(hours=1)
                )
            )
        assert not Lease(state.sessions, "job").acquire()

    def test_the_purge_refuses_to_run_twice_at_once(self, state: AppState) -> None:
        holder = Lease(state.sessions, purge.LEASE_NAME)
        assert holder.acquire()
        with pytest.raises(purge.PurgeBusy):
            purge.run(state)
        assert purge.run(state, dry_run=True).planned == []  # a dry run takes no lease
        holder.release(completed=False)


class TestScheduler:
    def test_it_runs_when_due_and_not_again_until_the_interval_passed(
        self,
        state: AppState,
        post_referral: Any,
    ) -> None:
        clock = Clock(state)
        referral_id = post_referral()["id"]
        clock.at(START + timedelta(days=3700))
        scheduler = RetentionScheduler(state, interval=3600)
        report = scheduler.tick()
        assert report is not None and report.referrals == 1
        assert rows(state, Referral, id=referral_id) == []
        assert scheduler.tick() is None  # completed a moment ago

    def test_it_stays_away_while_another_process_holds_the_lease(self, state: AppState) -> None:
        holder = Lease(state.sessions, purge.LEASE_NAME)
        assert holder.acquire()
        assert RetentionScheduler(state, interval=1).tick() is None
        holder.release(completed=False)
