"""The benchmark-only bare read: refused in prod, ignored unless switched on, never anonymous."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.referrals import COORDINATOR, PURPOSE

from app.audit.models import AuditEntry
from app.config import ConfigError, Settings, load_settings
from app.state import AppState

Auth = Callable[..., dict[str, str]]
BARE = {"X-Bench-Bare": "1"}


@pytest.fixture
def bare_reads() -> bool:
    return False


@pytest.fixture
def settings(settings: Settings, bare_reads: bool) -> Settings:
    return settings.model_copy(update={"bench_bare_reads": bare_reads})


def entries(state: AppState) -> int:
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


class TestProdGuard:
    def test_prod_refuses_the_switch_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
        monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql://db/cb")
        monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", "/run/secrets/keyring.json")
        monkeypatch.setenv("CASEBRIDGE_BENCH_BARE_READS", "true")
        refusal = "CASEBRIDGE_BENCH_BARE_READS cannot be enabled in prod"
        with pytest.raises(ConfigError, match=refusal):
            load_settings()

    def test_prod_refuses_the_switch_as_an_override(self) -> None:
        with pytest.raises(ConfigError, match="CASEBRIDGE_BENCH_BARE_READS"):
            load_settings(
                env="prod",
                database_url="postgresql://db/cb",
                keyring_path="/run/secrets/keyring.json",
                bench_bare_reads=True,
            )

    def test_the_switch_is_off_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CASEBRIDGE_BENCH_BARE_READS", raising=False)
        assert load_settings().bench_bare_reads is False


class TestSwitchedOff:
    def test_the_header_is_ignored_and_a_purpose_still_required(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        url = f"/v1/referrals/{created['id']}"
        response = app_client.get(url, headers=auth(COORDINATOR, **BARE))
        assert response.status_code == 400
        assert "safeguarding_assessment" in response.json()["purposes"]
        assert "Yasmin" not in response.text

    def test_a_read_with_purpose_is_logged_as_usual(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        before = entries(state)
        response = app_client.get(
            f"/v1/referrals/{created['id']}", headers=auth(COORDINATOR, **BARE, **PURPOSE)
        )
        assert response.status_code == 200
        assert response.headers["x-granted-view"] == "referral.full"
        assert entries(state) == before + 1


@pytest.mark.parametrize("bare_reads", [True])
class TestSwitchedOn:
    def test_a_bare_read_returns_the_whole_referral_and_logs_nothing(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        before = entries(state)
        url = f"/v1/referrals/{created['id']}"
        response = app_client.get(url, headers=auth(COORDINATOR, **BARE))
        assert response.status_code == 200
        assert response.json()["subject"]["given_name"] == "Yasmin"
        assert "x-granted-view" not in response.headers
        assert entries(state) == before

    def test_authentication_is_still_required(
        self, app_client: TestClient, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        assert app_client.get(f"/v1/referrals/{created['id']}", headers=BARE).status_code == 401

    def test_without_the_header_the_read_is_the_real_one(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        url = f"/v1/referrals/{created['id']}"
        assert app_client.get(url, headers=auth(COORDINATOR)).status_code == 400
