"""The scenarios: what each one sends, with the tokens and pages it needs fetched up front."""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Callable

import httpx

from .data import PARTNER, READER, REFERRERS, post_bodies
from .runs import Load

DISCLOSURE_PURPOSE = "safeguarding_assessment"
READ_PROBES = 600
SCENARIOS = ("hello", "bare_read", "disclosure", "summaries_sync", "post_referral")


def token(base: str, credentials: dict[str, str], client_id: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": credentials[client_id],
    }
    response = httpx.post(f"{base}/v1/token", data=form, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def summary_pages(base: str, bearer: str, limit: int = 500) -> list[str]:
    """Walk the partner's full sync once; each page's URL is one request of the scenario."""
    headers = {"Authorization": f"Bearer {bearer}", "X-Purpose": "service_provision"}
    pages = ["/v1/summaries"]
    with httpx.Client(base_url=base, timeout=60) as client:
        while len(pages) < limit:
            response = client.get(pages[-1], headers=headers)
            response.raise_for_status()
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
            pages.append("/v1/summaries?cursor=" + urllib.parse.quote(cursor, safe=""))
    return pages


class Scenarios:
    """Builds each scenario's `Load` against a running server."""

    def __init__(self, base: str, credentials: dict[str, str], ids: list[str], rng: random.Random, run_id: str) -> None:
        self.base, self.credentials, self.ids, self.rng, self.run_id = base, credentials, ids, rng, run_id
        self._readable: list[str] | None = None

    def build(self, name: str) -> Load:
        builders: dict[str, Callable[[], Load]] = {
            "hello": self.hello,
            "bare_read": self.bare_read,
            "disclosure": self.disclosure,
            "summaries_sync": self.summaries_sync,
            "post_referral": self.post_referral,
        }
        if name not in builders:
            raise ValueError(name)
        return builders[name]()

    def token(self, client_id: str) -> str:
        return token(self.base, self.credentials, client_id)

    def reads(self) -> list[str]:
        """Referrals the reader may read for the disclosure's purpose (an agreement grants it the
        referral in some statuses only), so both read scenarios measure reads that disclose, not
        refusals.  Found once, before any measured run, by reading up to READ_PROBES of them."""
        if self._readable is None:
            headers = {"Authorization": f"Bearer {self.token(READER)}", "X-Purpose": DISCLOSURE_PURPOSE}
            paths = [f"/v1/referrals/{i}" for i in self.ids[:READ_PROBES]]
            with httpx.Client(base_url=self.base, timeout=30) as client:
                self._readable = [p for p in paths if client.get(p, headers=headers).status_code == 200]
            if not self._readable:
                raise RuntimeError(f"{READER} may read none of the first {len(paths)} referrals")
        return self._readable

    def hello(self) -> Load:
        return Load("hello", "GET", ["/healthz"])

    def bare_read(self) -> Load:
        return Load("bare_read", "GET", self.reads(), headers={"X-Bench-Bare": "1"}, tokens=[self.token(READER)])

    def disclosure(self) -> Load:
        return Load(
            "disclosure",
            "GET",
            self.reads(),
            headers={"X-Purpose": DISCLOSURE_PURPOSE},
            tokens=[self.token(READER)],
            case_header="X-Granted-View",
        )

    def summaries_sync(self) -> Load:
        bearer = self.token(PARTNER)
        return Load(
            "summaries_sync",
            "GET",
            summary_pages(self.base, bearer),
            headers={"X-Purpose": "service_provision"},
            tokens=[bearer],
            sequential=True,
        )

    def post_referral(self) -> Load:
        return Load(
            "post_referral",
            "POST",
            ["/v1/referrals"],
            tokens=[self.token(c) for c, _ in REFERRERS],
            bodies=post_bodies(self.rng),
            idempotency_prefix=f"bench-{self.run_id}",
        )
