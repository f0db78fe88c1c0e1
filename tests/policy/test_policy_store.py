"""PolicyStore: atomic swaps, and a broken file keeps the previous version in force."""

import threading
from pathlib import Path

from policy_factories import GOOD, IN_FORCE, caller, referral

from app.policy import PolicyStore, decide


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_reload_installs_a_new_snapshot(tmp_path: Path) -> None:
    store = PolicyStore()
    assert len(store.current) == 0
    write(tmp_path, "net.yaml", GOOD)
    result = store.reload(tmp_path)
    assert result.ok and store.current is result.policy_set
    assert [a.version for a in store.current] == [2]


def test_broken_file_keeps_previous_version_in_force(tmp_path: Path) -> None:
    store = PolicyStore()
    write(tmp_path, "net.yaml", GOOD)
    store.reload(tmp_path)
    before = store.current
    write(
        tmp_path, "net.yaml", GOOD.replace("version: 2", "version: 3").replace("P5Y", "five years")
    )
    result = store.reload(tmp_path)
    assert not result.ok
    assert [a.version for a in store.current] == [2]
    assert store.current.get("net") is before.get("net")
    assert any("kept version 2 of net in force" in w for w in result.warnings)
    # The kept version still decides.
    hall = caller("town-hall", "local_government")
    assert decide(store.current, hall, "assessment", referral("net"), now=IN_FORCE).permit


def test_unparseable_file_keeps_previous_version_by_source(tmp_path: Path) -> None:
    store = PolicyStore()
    write(tmp_path, "net.yaml", GOOD)
    store.reload(tmp_path)
    write(tmp_path, "net.yaml", "agreement: [oops")
    store.reload(tmp_path)
    assert [a.id for a in store.current] == ["net"]


def test_fixed_file_replaces_the_kept_version(tmp_path: Path) -> None:
    store = PolicyStore()
    write(tmp_path, "net.yaml", GOOD)
    store.reload(tmp_path)
    write(tmp_path, "net.yaml", "agreement: [oops")
    store.reload(tmp_path)
    write(tmp_path, "net.yaml", GOOD.replace("version: 2", "version: 4"))
    store.reload(tmp_path)
    assert [a.version for a in store.current] == [4]


def test_removed_file_removes_the_agreement(tmp_path: Path) -> None:
    store = PolicyStore()
    write(tmp_path, "net.yaml", GOOD)
    store.reload(tmp_path)
    (tmp_path / "net.yaml").unlink()
    store.reload(tmp_path)
    assert len(store.current) == 0


def test_readers_always_see_a_whole_snapshot(tmp_path: Path) -> None:
    store = PolicyStore()
    versions = [GOOD.replace("version: 2", f"version: {v}") for v in (2, 3)]
    write(tmp_path, "net.yaml", versions[0])
    store.reload(tmp_path)
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            snapshot = store.current
            agreement = snapshot.get("net")
            assert agreement is not None
            assert snapshot.index.agreement("net") is agreement
            seen.add(agreement.version)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for round_ in range(10):
        write(tmp_path, "net.yaml", versions[round_ % 2])
        store.reload(tmp_path)
    stop.set()
    for thread in readers:
        thread.join()
    assert seen <= {2, 3} and seen


def test_missing_directory_keeps_everything(tmp_path: Path) -> None:
    store = PolicyStore()
    write(tmp_path, "net.yaml", GOOD)
    store.reload(tmp_path)
    before = store.current
    result = store.reload(tmp_path / "nope")
    assert result.errors[0].reason == "no such directory"
    assert store.current is before
