"""The one door: every console route is a `page` (sign-in, roles, purpose, CSRF), the console reads no case data
except through the API, and a referral the API refuses is refused by its console page the same way.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from support.console import ConsoleClient
from support.referrals import BASE_REFERRAL, NARRATIVE

from app.agencies.models import Agency
from app.console import web
from app.main import create_app
from app.state import AppState

SignedIn = Callable[..., ConsoleClient]
CONSOLE = Path(web.__file__).parent
# What a console module may not import: the services, repositories and models that hold case data.
FORBIDDEN = ("app.referrals", "app.notes", "app.meetings", "app.partners", "app.subjects", "app.emergency",
             "app.audit.service", "app.audit.queries", "app.audit.store", "app.audit.models", "app.erasure",
             "app.retention", "app.statistics", "app.legal_holds")
# Pure tables inside those packages a page may use (no database, no case data): each is checked for that below.
PURE = {"app.referrals.lifecycle"}
# Mounted apps (not pages) under /console: only the static files.
MOUNTS = {"/console/static"}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Every route of the application (included routers walked), built once: the routes need no database."""
    from support.settings import suite_settings

    folder = tmp_path_factory.mktemp("routes")
    app = create_app(suite_settings(folder, f"sqlite:///{folder / 'unused.db'}"))
    return list(iter_route_contexts(app.routes))


def console_routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        path = getattr(route, "path", "")
        if path == web.PREFIX or path.startswith(web.PREFIX + "/"):
            yield route


def test_every_console_route_is_a_page(routes: list[Any]) -> None:
    seen = []
    for route in console_routes(routes):
        if route.path in MOUNTS:
            continue
        endpoint = getattr(route, "endpoint", None)
        assert endpoint is not None, route.path
        mark = getattr(endpoint, "__console_page__", None)
        assert mark is not None, f"{route.methods} {route.path} is not wrapped by app.console.router.page"
        assert hasattr(endpoint, "__wrapped__"), route.path
        seen.append((route.path, mark))
    assert len(seen) >= 10
    # Whatever is under /console is a page; nothing else is mounted there.
    assert {r.path for r in console_routes(routes) if getattr(r, "endpoint", None) is None} <= MOUNTS


def test_pages_that_read_case_data_need_a_role(routes: list[Any]) -> None:
    """A page that asks for a purpose (it reads case data) also names the roles it serves."""
    for route in console_routes(routes):
        mark = getattr(getattr(route, "endpoint", None), "__console_page__", None)
        if mark and mark["needs_purpose"]:
            assert mark["roles"], route.path


def test_no_console_route_is_shadowed_by_an_earlier_one(routes: list[Any]) -> None:
    """Routes are tried in order: `/referrals/{referral_id}` before `/referrals/new` would answer both."""
    ordered = [r for r in console_routes(routes) if getattr(r, "methods", None)]
    shadowed = []
    for index, route in enumerate(ordered):
        literal = re.sub(r"\{[^}]+\}", "x-param-x", route.path)
        for earlier in ordered[:index]:
            if set(earlier.methods) & set(route.methods) and earlier.path_regex.match(literal):
                shadowed.append(f"{route.path} (taken by {earlier.path})")
                break
    assert shadowed == []


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Each module a file imports (`from a import b` gives a.b as well as a), and any importlib string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            yield node.lineno, "." * node.level + (node.module or "")  # relative: inside app.console only
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def forbidden(module: str) -> bool:
    if any(module == p or module.startswith(p + ".") for p in PURE):
        return False
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_the_pure_tables_a_page_may_import_are_pure() -> None:
    """What PURE lets through reaches no database and no case data itself (only the standard library)."""
    root = CONSOLE.parent.parent
    for module in PURE:
        path = root / (module.replace(".", "/") + ".py")
        imports = [name for _, name in imported_modules(path)]
        assert imports, module
        assert [n for n in imports if n.startswith(("app", "sqlalchemy", "."))] == [], module


def test_the_console_imports_nothing_that_reads_case_data() -> None:
    files = sorted(CONSOLE.rglob("*.py"))
    assert len(files) >= 6 and CONSOLE / "pages" / "case.py" in files
    found = [f"{path.relative_to(CONSOLE)}:{line} imports {module}"
             for path in files for line, module in imported_modules(path) if forbidden(module)]
    assert found == []
    relative = [f"{path.relative_to(CONSOLE)}:{line}" for path in files
                for line, module in imported_modules(path) if module.startswith("..")]
    assert relative == []  # a relative import could leave app.console unseen


def test_the_import_scan_sees_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import app.referrals.service\nfrom app.audit import queries\nfrom app.notes.models import Note\n"
                      "import importlib\nimportlib.import_module('app.meetings.service')\n"
                      "from app.audit.events import AuditEvent\nfrom app.policy import who\n"
                      "from app.audit import verify\n", encoding="utf-8")
    hits = {m for _, m in imported_modules(sample) if forbidden(m)}
    assert hits == {"app.audit.queries", "app.meetings.service", "app.notes.models", "app.notes.models.Note",
                    "app.referrals.service"}


# What the API refuses, the console refuses --------------------------------------------------------

REFUSED = [("south-referrer", "safeguarding_assessment"), ("council-reader", "service_provision"),
           ("health-caseworker", "intervention_planning"), ("town-coordinator-person", "safeguarding_assessment"),
           ("nour-reader", "service_provision")]


def values_of(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for value in document.values():
            yield from values_of(value)
    elif isinstance(document, list):
        for value in document:
            yield from values_of(value)
    elif isinstance(document, str) and len(document) >= 5:
        yield document


def api_as(app_client: TestClient, state: AppState, person_id: str, agency_id: str, roles: list[str],
           path: str, purpose: str) -> Any:
    """The API, called as the console calls it for this person (the same token, the same purpose)."""
    with state.read_sessions() as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None
        sector = agency.sector
    token, _ = state.tokens.issue(client_id=person_id, agency_id=agency_id, sector=sector, roles=roles,
                                  act=person_id)
    return app_client.get(path, headers={"Authorization": f"Bearer {token}", "X-Purpose": purpose})


def test_a_referral_the_api_refuses_is_refused_by_its_page_with_nothing_of_it(
    signed_in: SignedIn, app_client: TestClient, state: AppState, post_referral: Callable[..., dict[str, Any]],
) -> None:
    from support.console import PEOPLE

    referral = post_referral()
    secrets = [v for v in values_of(BASE_REFERRAL) if v not in ("referral/v1",)] + [NARRATIVE]
    refused = 0
    for person_id, purpose in REFUSED:
        _, agency_id, _, roles = next(p for p in PEOPLE if p[0] == person_id)
        path = f"/v1/referrals/{referral['id']}"
        api = api_as(app_client, state, person_id, agency_id, roles, path, purpose)
        client = signed_in(person_id, purpose=purpose)
        page = client.get(f"/console/referrals/{referral['id']}", follow_redirects=False)
        if api.status_code == 200:
            assert page.status_code == 200, person_id
            continue
        refused += 1
        assert api.status_code in (403, 404), (person_id, api.status_code)
        assert page.status_code == api.status_code, (person_id, page.status_code, api.status_code)
        assert page.headers["content-type"].startswith("text/html")
        leaked = [v for v in secrets if v in page.text]
        assert leaked == [], (person_id, leaked)
    assert refused >= 3
    # And the owner does see it (so the refusals above are the agreements', not a broken page).
    owner = signed_in("rana-referrer", purpose="safeguarding_assessment")
    shown = owner.get(f"/console/referrals/{referral['id']}")
    assert shown.status_code == 200 and NARRATIVE in shown.text


def test_a_made_up_or_crafted_referral_id_is_a_404_page_and_reaches_no_other_api_route(
    signed_in: SignedIn, state: AppState, post_referral: Callable[..., dict[str, Any]]
) -> None:
    from support.audit_log import entries

    referral = post_referral()
    client = signed_in("rana-referrer", purpose="safeguarding_assessment")
    page = client.get("/console/referrals/01HZZZZZZZZZZZZZZZZZZZZZZZ", follow_redirects=False)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    # A path parameter is decoded before the page builds the API's path from it: "..", "?" and "#" would take
    # the call to another route, or add a query, as the person. The console refuses them without calling.
    before = len(entries(state))
    for crafted in ("%2E%2E", f"{referral['id']}%3Fview%3Dfull", f"{referral['id']}%23x", "..%3F", "%2E"):
        page = client.get(f"/console/referrals/{crafted}", follow_redirects=False)
        assert page.status_code == 404, (crafted, page.status_code)
        assert page.headers["content-type"].startswith("text/html")
        assert NARRATIVE not in page.text
    assert len(entries(state)) == before
