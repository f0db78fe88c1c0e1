"""The demo's first start seeds its training network beside the demo networks, credentials written as theirs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.settings import suite_settings

from app.config import Settings
from app.training_network.create import DEMO_PLAN
from app.training_network.marks import HEADER


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """As a first `make run` starts: dev, the demo seeded into the empty database."""
    return suite_settings(tmp_path, database_url, seed_demo=True)


def test_the_first_start_seeds_the_training_network(app_client: TestClient, settings: Settings) -> None:
    clients_file = settings.data_dir / f"{DEMO_PLAN.network_id}-clients.json"
    people_file = settings.data_dir / f"{DEMO_PLAN.network_id}-people.json"
    for path in (clients_file, people_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    clients = {c["client_id"]: c for c in json.loads(clients_file.read_text())}
    people = json.loads(people_file.read_text())
    assert sorted({p["locale"] for p in people}) == ["ar", "en", "mk", "sq"] and len(people) == 16
    coordinator = clients[DEMO_PLAN.client("coordinator")]
    form = {"grant_type": "client_credentials", "client_id": coordinator["client_id"],
            "client_secret": coordinator["client_secret"]}
    token = app_client.post("/v1/token", data=form).json()["access_token"]
    listed = app_client.get("/v1/referrals?limit=100", headers={"Authorization": f"Bearer {token}",
                                                                 "X-Purpose": "safeguarding_assessment"})
    assert listed.status_code == 200 and listed.headers[HEADER] == "true"
    assert {r["status"] for r in listed.json()["items"]} == {"submitted", "triaged", "accepted", "declined",
                                                             "assigned", "in_intervention", "closed", "withdrawn"}
    assert len(listed.json()["items"]) == DEMO_PLAN.people
