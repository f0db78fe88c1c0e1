"""`casebridge clocks run`: the scheduled job by hand, against the service's database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR
from support.retention import Clock
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.state import AppState


def test_clocks_run_raises_what_is_due_once(
    app_client: TestClient, state: AppState, settings: Settings, post_referral: Callable[..., Any],
    auth: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(state)  # the referral is made in March; the CLI's clock is the real one: its triage is overdue
    created = post_referral()["id"]
    for name, value in (("ENV", "dev"), ("DATA_DIR", str(settings.data_dir)),
                        ("DATABASE_URL", settings.resolved_database_url),
                        ("KEYRING_PATH", str(settings.resolved_keyring_path))):
        monkeypatch.setenv(f"CASEBRIDGE_{name}", value)
    runner = CliRunner()
    first = runner.invoke(cli, ["clocks", "run", "--json"])
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["raised"] == {"triage_overdue": 1} and report["networks"] == 3  # demo-city, demo-town, training-demo
    again = runner.invoke(cli, ["clocks", "run"])
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == "3 networks: nothing new."
    feed = app_client.get("/v1/events", headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"}))
    raised = [(e["kind"], e["referral_id"]) for e in feed.json()["items"] if e["kind"] != "status"]
    assert raised == [("triage_overdue", created)]
