"""What a production service shows: its own agreements only, no API docs unless asked, a keyring a secret can give.

Dev keeps the demo agreements and the docs. The keyring tests play the container: a root-owned
secret read by a service that does not run as root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import REPO_ROOT, Settings
from app.crypto.keyring import Keyring
from app.db import transaction
from app.demo import seed_demo
from app.main import create_app

DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/docs-static/swagger-ui-bundle.js", "/openapi.json")
COORDINATOR = "municipality-coordinator"


def _keyring(folder: Path) -> Path:
    path = folder / "keyring.json"
    Keyring.generate().save(path)
    return path


def _prod(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    given: dict[str, Any] = {"keyring_path": overrides.pop("keyring_path", None) or _keyring(tmp_path), **overrides}
    return Settings(env="prod", database_url=database_url, data_dir=tmp_path / "data", **given)  # type: ignore[arg-type]


@pytest.fixture
def serve(tmp_path: Path, database_url: str) -> Iterator[Callable[..., TestClient]]:
    """Start a prod app (settings overridden as given) with the demo network's clients in its database."""
    clients: list[TestClient] = []

    def _serve(**overrides: Any) -> TestClient:
        client = TestClient(create_app(_prod(tmp_path, database_url, **overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield _serve
    for client in clients:
        client.__exit__(None, None, None)


def _login(client: TestClient, client_id: str = COORDINATOR) -> dict[str, str]:
    state = client.app.state.cb  # type: ignore[attr-defined]
    with transaction(state.sessions) as session:
        secrets = {c["client_id"]: c["client_secret"] for c in seed_demo(session, state)}
    response = client.post("/v1/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secrets[client_id],
    })
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _agreement_ids(client: TestClient, headers: dict[str, str]) -> set[str]:
    response = client.get("/v1/agreements", headers=headers)
    assert response.status_code == 200, response.text
    return {a["id"] for a in response.json()["items"]}


class TestApiDocs:
    def test_prod_publishes_no_docs_and_no_openapi_document(self, serve: Callable[..., TestClient]) -> None:
        client = serve()
        for path in DOCS:
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json"), path
        assert client.get("/healthz").status_code == 200

    def test_prod_publishes_them_when_the_setting_says_so(self, serve: Callable[..., TestClient]) -> None:
        client = serve(publish_api_docs=True)
        for path in DOCS:
            assert client.get(path).status_code == 200, path
        assert client.get("/openapi.json").json()["info"]["title"] == "CaseBridge"

    def test_dev_publishes_them(self, app_client: TestClient) -> None:
        for path in DOCS:
            assert app_client.get(path).status_code == 200, path

    def test_the_setting_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CASEBRIDGE_PUBLISH_API_DOCS", "true")
        assert Settings(env="prod", database_url="sqlite://", keyring_path="/k").should_publish_api_docs  # type: ignore[arg-type]
        monkeypatch.delenv("CASEBRIDGE_PUBLISH_API_DOCS")
        assert not Settings(env="prod", database_url="sqlite://", keyring_path="/k").should_publish_api_docs  # type: ignore[arg-type]


class TestAgreements:
    def test_prod_loads_none_of_the_shipped_demo_agreements(self, serve: Callable[..., TestClient]) -> None:
        client = serve()
        headers = _login(client)
        assert _agreement_ids(client, headers) == set()
        networks = client.get("/v1/networks", headers=headers)
        assert networks.status_code == 200 and networks.json()["items"] == []

    def test_prod_loads_exactly_the_agreements_in_its_policies_dir(
        self, serve: Callable[..., TestClient], tmp_path: Path
    ) -> None:
        folder = tmp_path / "policies"
        folder.mkdir()
        shutil.copy(REPO_ROOT / "policies" / "demo-town.yaml", folder)
        client = serve(policies_dir=folder)
        assert _agreement_ids(client, _login(client)) == {"demo-town"}

    def test_prod_takes_the_folder_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
        monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "sqlite://")
        monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", "/k")
        assert Settings().policies_dir == Path("/etc/casebridge/policies")
        monkeypatch.setenv("CASEBRIDGE_POLICIES_DIR", str(tmp_path))
        assert Settings().policies_dir == tmp_path

    def test_prod_offers_none_of_the_shipped_code_mappings(
        self, serve: Callable[..., TestClient], tmp_path: Path
    ) -> None:
        client = serve()
        operator = _login(client, "municipality-operator")
        listed = client.get("/v1/admin/mappings", headers=operator)
        assert listed.status_code == 200, listed.text
        assert [m["id"] for m in listed.json()["items"]] == []
        folder = tmp_path / "policies"
        shutil.copytree(REPO_ROOT / "policies" / "mappings", folder / "mappings")
        client = serve(policies_dir=folder)
        listed = client.get("/v1/admin/mappings", headers=_login(client, "municipality-operator"))
        assert [m["id"] for m in listed.json()["items"]] == ["school-north-legacy"]

    def test_dev_still_loads_the_demo_agreements(
        self, app_client: TestClient, auth: Callable[..., dict[str, str]]
    ) -> None:
        assert {"demo-city", "demo-town"} <= _agreement_ids(app_client, auth(COORDINATOR))


class TestKeyringFromASecret:
    """A Docker or Kubernetes secret is root's: 0600 keeps the service out, 0640 with its group lets it read."""

    def test_prod_accepts_a_keyring_readable_by_a_group_of_the_service(
        self, serve: Callable[..., TestClient], tmp_path: Path
    ) -> None:
        path = _keyring(tmp_path / "secret")
        path.chmod(0o640)
        assert path.stat().st_gid in {os.getegid(), *os.getgroups()}
        client = serve(keyring_path=path)
        assert client.get("/readyz").status_code == 200

    @pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root")
    def test_prod_refuses_a_keyring_readable_by_a_group_the_service_is_not_in(self, tmp_path: Path) -> None:
        from app.bootstrap import build_state
        from app.crypto.keyring import KeyringError

        path = _keyring(tmp_path)
        os.chown(path, 0, _foreign_gid())
        path.chmod(0o640)
        settings = Settings(env="prod", database_url=f"sqlite:///{tmp_path}/x.db",  # type: ignore[arg-type]
                            keyring_path=path)
        with pytest.raises(KeyringError, match="open to others; chmod 600"):
            build_state(settings)

    @pytest.mark.parametrize("mode", [0o660, 0o604])
    def test_prod_refuses_a_keyring_others_may_write_or_read(self, tmp_path: Path, mode: int) -> None:
        from app.bootstrap import build_state
        from app.crypto.keyring import KeyringError

        path = _keyring(tmp_path)
        path.chmod(mode)
        settings = Settings(env="prod", database_url=f"sqlite:///{tmp_path}/x.db",  # type: ignore[arg-type]
                            keyring_path=path)
        with pytest.raises(KeyringError, match="chmod 600"):
            build_state(settings)

    @pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                        reason="running as another user needs root and setpriv")
    def test_a_root_secret_reaches_a_non_root_service_through_its_group(self) -> None:
        """As in docs/deploy.md: uid 10001 cannot read root's 0600 file and is told what to do; 0640 + group works."""
        casebridge = Path(sys.executable).with_name("casebridge")
        with tempfile.TemporaryDirectory(prefix="cb-secret-") as name:
            root = Path(name)
            root.chmod(0o755)
            data = root / "data"
            data.mkdir()
            os.chown(data, 10001, 10001)
            keyring = _keyring(root)  # root:root 0600, like a secret file on the host
            gid = _foreign_gid()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
            env.update(CASEBRIDGE_ENV="prod", CASEBRIDGE_KEYRING_PATH=str(keyring),
                       CASEBRIDGE_DATABASE_URL=f"sqlite:///{data}/casebridge.db", CASEBRIDGE_DATA_DIR=str(data))

            def upgrade(*groups: str) -> subprocess.CompletedProcess[str]:
                as_service = ["setpriv", "--reuid", "10001", "--regid", "10001",
                              *(["--groups", ",".join(groups)] if groups else ["--clear-groups"])]
                return subprocess.run([*as_service, str(casebridge), "db", "upgrade"], env=env, cwd=root,  # noqa: S603
                                      capture_output=True, text=True, timeout=120)

            refused = upgrade()
            assert refused.returncode != 0
            assert "Permission denied" in refused.stderr and "uid 10001 gid 10001" in refused.stderr
            assert "0640" in refused.stderr and "docs/deploy.md" in refused.stderr
            os.chown(keyring, 0, gid)
            keyring.chmod(0o640)
            assert stat.S_IMODE(keyring.stat().st_mode) == 0o640 and keyring.stat().st_uid == 0
            accepted = upgrade(str(gid))
            assert accepted.returncode == 0, accepted.stderr


def _foreign_gid() -> int:
    """A group id this process is not in."""
    mine = {os.getegid(), *os.getgroups()}
    return next(g for g in range(4242, 5000) if g not in mine)
