"""Browser tests: a real `casebridge serve` (SQLite, demo network) per module, Debian's Chromium per session.

Without Chromium or axe-core these tests skip with what to install, except in CI (CI=true), where a
missing browser fails them: CI must never pass by skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from browser.harness import CHROMIUM, LAUNCH_ARGS, Console, in_ci, missing
from support.server import RunningServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _require_browser() -> None:
    reason = missing()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    _require_browser()  # no server start when the browser is missing anyway
    running = RunningServer(tmp_path_factory.mktemp("browser") / "data")
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def console(server: RunningServer, browser: Browser) -> Iterator[Console]:
    found = Console(server, browser)
    try:
        yield found
    finally:
        found.close()
