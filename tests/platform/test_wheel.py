"""The wheel, installed outside the checkout, migrates and serves: what the image runs, without Docker.

CI has no Docker daemon, so this stands in for building and smoke-testing the image: the same wheel
the Dockerfile installs goes into a fresh venv in a temporary folder, and its `casebridge` command
upgrades a database and serves the demo network from there. Dependencies come from the test venv
(a .pth line to a copy of its site-packages without CaseBridge itself), so nothing is downloaded,
except setuptools for the build when the test venv's own is older than 70.1 (as `pip install -e .` does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.config import REPO_ROOT

SOURCES = ("pyproject.toml", "setup.py", "README.md", "app", "migrations", "policies")
BUILD_TIMEOUT = 240  # an isolated build (no setuptools>=70.1 here) fetches setuptools from the registry


def _can_build_offline() -> bool:
    """setuptools>=70.1 carries bdist_wheel itself; an older one needs the `wheel` package."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    if version >= (70, 1):
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return version >= (68, 0)


@contextmanager
def _once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder shared by this run's xdist workers (if any), and whether it is still to be made: one makes it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / name
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / ".done"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
        yield folder, not done.exists()
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once per run from a copy of the sources (the checkout gets no build/ or egg-info)."""
    with _once(tmp_path_factory, "wheel-build") as (work, todo):
        if todo:
            _build(work)
        (built,) = (work / "dist").glob("casebridge-*.whl")
        return built


def _build(work: Path) -> None:
    source = work / "src"
    source.mkdir(parents=True)
    for name in SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    isolation = ["--no-build-isolation"] if _can_build_offline() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", *isolation, "-w", str(work / "dist"),
          str(source)], timeout=BUILD_TIMEOUT)


def _run(command: list[str], **options: object) -> str:
    """Run a command that must succeed; its stdout. A failure shows the command's own output."""
    result = subprocess.run(  # type: ignore[call-overload]  # noqa: S603 - our own commands
        command, capture_output=True, text=True, **options)
    output = f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{command[:4]} exited {result.returncode}:\n{output}"
    out: str = result.stdout
    return out


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout, made once per run: the test venv's dependencies, CaseBridge from the wheel."""
    with _once(tmp_path_factory, "wheel-venv") as (root, todo):
        if todo:
            _install(wheel, root)
        return root / "venv"


def _install(wheel: Path, root: Path) -> None:
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=60)
    deps = root / "deps"
    deps.mkdir(parents=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        # Leave out the checkout's editable CaseBridge (its finder, its .pth, its metadata).
        if entry.name.startswith(("casebridge", "__editable__")) or entry.name == "app" or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=30).strip()
    Path(site, "test-dependencies.pth").write_text(f"{deps}\n")
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], timeout=120, cwd=root)


def _environment(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEBRIDGE_", "PYTHON"))}
    env.update(CASEBRIDGE_DATA_DIR=str(data), CASEBRIDGE_LOG_LEVEL="WARNING", **extra)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The commands' working directory: an empty folder, far from the checkout."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def test_the_wheel_carries_migrations_policies_and_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(p.name for p in (REPO_ROOT / "migrations" / "versions").glob("*.py"))
    assert {f"app/_shipped/migrations/versions/{v}" for v in versions} <= names
    assert {"app/_shipped/migrations/env.py", "app/_shipped/migrations/script.py.mako"} <= names
    shipped_policies = {f"app/_shipped/{p.relative_to(REPO_ROOT).as_posix()}"
                        for p in (REPO_ROOT / "policies").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped_policies <= names
    code = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "app").rglob("*")
            if p.is_file() and p.suffix in (".py", ".yaml", ".json", ".html", ".css", ".js", ".po", ".txt")
            and "__pycache__" not in p.parts}
    assert code <= names, f"missing from the wheel: {sorted(code - names)}"
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "var/"))}


def test_the_installed_package_reads_nothing_from_the_checkout(venv: Path, workdir: Path) -> None:
    probe = (
        "import json, app, app.migrate, app.config;"
        "print(json.dumps([app.__file__, str(app.migrate.MIGRATIONS_DIR), str(app.config.Settings().policies_dir)]))"
    )
    found = _run([str(venv / "bin" / "python"), "-c", probe], cwd=workdir, env=_environment(workdir), timeout=60)
    module, migrations, policies = (Path(p) for p in json.loads(found))
    for path in (module, migrations, policies):
        assert path.is_relative_to(venv), path
        assert not path.is_relative_to(REPO_ROOT), path
    assert (migrations / "versions").is_dir() and (policies / "demo-city.yaml").is_file()


@pytest.fixture
def served(venv: Path, workdir: Path) -> Iterator[str]:
    """`casebridge db upgrade`, then `casebridge serve` on a free port, from the installed wheel."""
    data = workdir / "data"
    port = _free_port()
    env = _environment(data, CASEBRIDGE_PORT=str(port))
    command = str(venv / "bin" / "casebridge")
    upgraded = _run([command, "db", "upgrade", "--json"], cwd=workdir, env=env, timeout=120)
    assert json.loads(upgraded)["status"] == "ok"
    log = (workdir / "serve.log").open("w")
    server = subprocess.Popen(  # noqa: S603 - the installed CLI
        [command, "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            assert server.poll() is None, (workdir / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /healthz in 45 s"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_the_installed_wheel_upgrades_and_serves_the_demo_network(served: str, workdir: Path) -> None:
    assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{served}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    clients = json.loads((workdir / "data" / "demo-clients.json").read_text())
    coordinator = next(c for c in clients if c["client_id"] == "municipality-coordinator")
    token = httpx.post(f"{served}/v1/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": coordinator["client_id"],
        "client_secret": coordinator["client_secret"],
    })
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = httpx.get(f"{served}/v1/me", headers=headers, timeout=10)
    assert me.status_code == 200, me.text
    agreements = httpx.get(f"{served}/v1/agreements", headers=headers, timeout=10)
    assert agreements.status_code == 200, agreements.text
    assert "demo-city" in agreements.text  # the shipped demo agreements, read from the installed package
    # The API docs' assets come from an installed package too (dev publishes them).
    assert httpx.get(f"{served}/docs-static/swagger-ui-bundle.js", timeout=10).status_code == 200
