"""The background-thread helper the watchers, the checkpointer and the purge scheduler share."""

from __future__ import annotations

import threading

from app.periodic import Periodic


def test_a_failed_round_is_reported_and_the_next_round_runs() -> None:
    rounds: list[int] = []
    errors: list[Exception] = []
    third = threading.Event()

    def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("first round fails")
        if len(rounds) >= 3:
            third.set()

    periodic = Periodic("test-periodic", 0.01, work, errors.append)
    periodic.start()
    assert third.wait(timeout=10)
    periodic.stop()
    assert [str(e) for e in errors] == ["first round fails"]
    assert not any(t.name == "test-periodic" for t in threading.enumerate())


def test_an_interval_of_zero_never_starts_a_thread() -> None:
    periodic = Periodic("test-never", 0, lambda: None, lambda exc: None)
    periodic.start()
    assert not any(t.name == "test-never" for t in threading.enumerate())
    periodic.stop()  # stopping what never started is harmless
