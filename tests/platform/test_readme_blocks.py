"""Every ```sh block of README.md and docs/*.md runs as written, in order, against a fresh service.

The conventions the documentation follows (so a newcomer can paste each block):

- a file's ```sh blocks run in order in one bash session (``set -eo pipefail``: each command must
  succeed), from the root of a fresh copy of the repository, against a fresh dev service on SQLite
  with the demo network seeded (its data in the copy's ``var/``, as after ``make run``);
- ``make run`` / ``make test`` lines are not run: the test starts the service itself, on a free port
  that replaces ``127.0.0.1:8000`` (and ``localhost:8000``) in the blocks;
- README.md runs with a bare PATH (it must activate the venv itself); docs/*.md run with the venv
  activated, as their convention says;
- a block whose first lines include ``# needs: docker`` (or ``postgres``, or another command) is
  skipped with that reason when this machine lacks it. ``postgres`` counts as present when
  ``CASEBRIDGE_TEST_POSTGRES_URL`` is set (the blocks see that variable, and nothing else changes:
  the service and every other block keep the copy's SQLite database);
- output-only or illustrative blocks use ```text, ```json …, never ```sh.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)\s*$")
NEEDS = re.compile(r"^\s*#\s*needs:\s*(.+?)\s*$")
NOT_RUN = re.compile(r"^\s*make\s+(run|test)\b.*$")
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "var", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "*.egg-info",
    ".hypothesis", "build", "dist",
)
FILE_TIMEOUT = 600  # seconds for one file's blocks
OUTPUT_SHOWN = 6000  # characters of a failing block's output in the message


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in its file (1-based, the fence line)
    text: str
    needs: tuple[str, ...]


def sh_blocks(path: Path) -> list[Block]:
    """The ```sh (or ```bash / ```shell) blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, language = i, match.group(1).lower()
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        if language in ("sh", "bash", "shell", "console-sh"):
            needs: list[str] = []
            for line in body:
                if not line.strip():
                    continue
                found = NEEDS.match(line)
                if found is None:
                    if not line.lstrip().startswith("#"):
                        break
                    continue
                needs.extend(n.strip().lower() for n in re.split(r"[,\s]+", found.group(1)) if n.strip())
            blocks.append(Block(start + 1, "\n".join(body) + "\n", tuple(needs)))
    return blocks


def missing(need: str) -> str | None:
    """Why this machine cannot run a block that needs `need` (None: it can)."""
    if need == "docker":
        if shutil.which("docker") is None:
            return "needs docker: no docker command"
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)  # noqa: S607
        return None if probe.returncode == 0 else "needs docker: no Docker daemon reachable"
    if need in ("postgres", "postgresql"):
        return None if os.environ.get("CASEBRIDGE_TEST_POSTGRES_URL") else (
            "needs postgres: CASEBRIDGE_TEST_POSTGRES_URL is not set")
    return None if shutil.which(need) else f"needs {need}: not installed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def substitute(text: str, port: int) -> str:
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("localhost:8000", f"localhost:{port}")
    return "\n".join(line for line in text.splitlines() if not NOT_RUN.match(line)) + "\n"


def base_env(activated: bool) -> dict[str, str]:
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    system_path = "/usr/local/bin:/usr/bin:/bin"
    env["PATH"] = f"{VENV_BIN}:{system_path}" if activated else system_path
    if activated:
        env["VIRTUAL_ENV"] = str(REPO / ".venv")
    env["CASEBRIDGE_LOG_LEVEL"] = "WARNING"
    return env


class Service:
    """`casebridge serve` in dev, in the copy, on a free port: what `make run` starts."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.log = workdir.parent / "serve.log"
        env = base_env(activated=True) | {"CASEBRIDGE_ENV": "dev", "CASEBRIDGE_PORT": str(port),
                                           "CASEBRIDGE_HOST": "127.0.0.1", "CASEBRIDGE_LOG_LEVEL": "INFO"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603
                [str(VENV_BIN / "casebridge"), "serve"], cwd=workdir, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200 and (workdir / "var" / "demo-clients.json").exists():
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"the service was not ready within 90 s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def fresh_copy(tmp_path: Path) -> Path:
    """The repository as a fresh clone has it (no var/), with the venv `make run` made."""
    workdir = tmp_path / "casebridge"
    shutil.copytree(REPO, workdir, ignore=COPY_IGNORE, symlinks=True)
    (workdir / ".venv").symlink_to(REPO / ".venv")
    return workdir


def driver(blocks: list[tuple[int, Block]], state: Path) -> str:
    """One bash session: each block sourced in turn, its output kept apart; stops at the first failure."""
    lines = ["set -eo pipefail", f'cd "{state.parent / "casebridge"}"',
             """trap 'echo ">>> this command failed (exit $?): $BASH_COMMAND" >&2' ERR"""]
    for number, _ in blocks:
        lines.append(f'echo {number} > "{state}/current"; echo "{number} $(date +%s.%N)" >> "{state}/times"')
        lines.append(f'source "{state}/block{number}.sh" > "{state}/out{number}" 2>&1 < /dev/null')
    lines.append(f'echo done > "{state}/current"; echo "done $(date +%s.%N)" >> "{state}/times"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("doc", DOC_FILES, ids=[str(p.relative_to(REPO)) for p in DOC_FILES])
def test_shell_blocks_run_as_written(doc: Path, tmp_path: Path) -> None:
    blocks = sh_blocks(doc)
    if not blocks:
        pytest.skip(f"{doc.name} has no sh blocks")
    name = str(doc.relative_to(REPO))
    runnable: list[tuple[int, Block]] = []
    skipped: list[str] = []
    for number, block in enumerate(blocks, 1):
        reasons = [r for r in (missing(n) for n in block.needs) if r]
        if reasons:
            skipped.append(f"{name}:{block.line}: {'; '.join(reasons)}")
        else:
            runnable.append((number, block))
    if not runnable:
        pytest.skip("; ".join(skipped))
    workdir = fresh_copy(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    service = Service(workdir, free_port())
    try:
        for number, block in runnable:
            (state / f"block{number}.sh").write_text(substitute(block.text, service.port))
        (state / "driver.sh").write_text(driver(runnable, state))
        env = base_env(activated=doc.name != "README.md")
        if os.environ.get("CASEBRIDGE_TEST_POSTGRES_URL"):  # for `# needs: postgres` blocks only
            env["CASEBRIDGE_TEST_POSTGRES_URL"] = os.environ["CASEBRIDGE_TEST_POSTGRES_URL"]
        try:
            run = subprocess.run(  # noqa: S603
                ["/bin/bash", "--noprofile", "--norc", str(state / "driver.sh")],  # noqa: S607
                cwd=workdir, env=env, capture_output=True, text=True, timeout=FILE_TIMEOUT, check=False,
            )
            returncode, stray = run.returncode, run.stdout + run.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stray = -1, f"timed out after {FILE_TIMEOUT} s: {exc}"
        current = (state / "current").read_text().strip() if (state / "current").exists() else "1"
        if current != "done" or returncode != 0:
            number = int(current) if current.isdigit() else runnable[-1][0]
            block = blocks[number - 1]
            out_file = state / f"out{number}"
            output = out_file.read_text(errors="replace") if out_file.exists() else ""
            pytest.fail(
                f"{name}: the sh block at line {block.line} failed (exit {returncode}).\n"
                f"--- block (as run, port {service.port} for 8000) ---\n"
                f"{(state / f'block{number}.sh').read_text()}"
                f"--- its output ---\n{output[-OUTPUT_SHOWN:]}{stray[-1000:]}\n"
                f"--- the service's log ---\n{service.log_tail(1500)}",
                pytrace=False,
            )
    finally:
        service.stop()
    if skipped:
        warnings.warn("skipped: " + " | ".join(skipped), stacklevel=1)
