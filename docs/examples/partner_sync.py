"""Keep a local copy of the summaries CaseBridge grants your organisation, honouring retention and withdrawals.

Standard library only (Python 3.11+): copy this file into your own system and run it from a
scheduler. The client secret comes from the environment, never from the command line (where
other users of the machine could read it in the process list):

    export CASEBRIDGE_CLIENT_SECRET=...        # from your secret store
    python partner_sync.py --base-url https://casebridge.city.example --client-id youth-ngo-reader

What it does, and why (docs/partners.md):

- gets an OAuth 2.0 client-credentials token, renews it shortly before it expires, and once
  more on a 401 (the operator may have rotated keys or restarted the service);
- retries a 503 (the disclosure log could not be written, so nothing was disclosed) or a 429
  (too many requests) after the `Retry-After` the service sends, a few times, then gives up;
- shows the problem details (RFC 9457: title, detail, the fields at fault, the request id to
  quote to the operator) of any other error, and exits 1;
- syncs incrementally (`updated_since`, `ETag` / 304), deletes what was withdrawn and what is
  past its `retain_until`, and writes the store (mode 0600) only after a complete sync.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SECRET_ENV = "CASEBRIDGE_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
RETRIED = (429, 503)


class SyncError(Exception):
    """The service said no, or could not be reached: the message says what and what to do."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def problem_text(answer: Answer) -> str:
    """An RFC 9457 problem as a person would want to read it (or the raw body if it is not one)."""
    try:
        problem = answer.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return f"HTTP {answer.status}: {answer.body[:500].decode(errors='replace')}"
    lines = [f"HTTP {answer.status} {problem.get('title') or problem.get('error', '')}".rstrip()]
    for key in ("detail", "error_description", "type"):
        if problem.get(key):
            lines.append(f"  {key}: {problem[key]}")
    for error in problem.get("errors") or []:
        lines.append(f"  at {error.get('path', '?')}: {error.get('message', error)}"
                     + (f" (valid: {', '.join(map(str, error['valid_codes']))})" if error.get("valid_codes") else ""))
    for key, value in problem.items():
        if key not in ("title", "detail", "type", "status", "errors", "instance", "request_id", "error",
                       "error_description"):
            lines.append(f"  {key}: {value}")
    request_id = problem.get("request_id") or answer.headers.get("x-request-id")
    if request_id:
        lines.append(f"  request id (quote it to the operator): {request_id}")
    return "\n".join(lines)


def retry_after(headers: dict[str, str], default: float) -> float:
    """Seconds to wait: `Retry-After` as seconds or as an HTTP date; `default` when absent."""
    value = headers.get("retry-after")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Client:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    max_retries: int = 5
    max_wait: float = 120.0
    renew_margin: float = 60.0
    timeout: float = 30.0
    log: Any = sys.stderr
    _token: str | None = field(default=None, repr=False)
    _expires_at: float = 0.0

    def _send(self, method: str, path: str, *, headers: dict[str, str], data: bytes | None = None) -> Answer:
        url = self.base_url.rstrip("/") + path  # http(s) only: checked in arguments()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - a URL you configure
                return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    def _with_retries(self, method: str, path: str, *, headers: dict[str, str], data: bytes | None = None) -> Answer:
        """Send; on 429/503 or a dropped connection wait (Retry-After, else backing off) and send again."""
        for attempt in range(self.max_retries + 1):
            try:
                answer = self._send(method, path, headers=headers, data=data)
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.max_retries:
                    raise SyncError(f"cannot reach {self.base_url}: {getattr(exc, 'reason', exc)}") from None
                wait = min(2.0 ** attempt, self.max_wait)
                print(f"cannot reach the service ({getattr(exc, 'reason', exc)}); retrying in {wait:.0f} s",
                      file=self.log)
                time.sleep(wait)
                continue
            if answer.status not in RETRIED or attempt == self.max_retries:
                return answer
            wait = min(retry_after(answer.headers, default=2.0 ** attempt), self.max_wait)
            print(f"{method} {path.split('?')[0]}: {answer.status}, retrying in {wait:g} s", file=self.log)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def token(self) -> str:
        """A valid access token: the one held, or a new one when it is about to expire."""
        if self._token is None or time.monotonic() >= self._expires_at - self.renew_margin:
            form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": self.client_id,
                                           "client_secret": self.client_secret}).encode()
            answer = self._with_retries("POST", "/v1/token", data=form,
                                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                                 "Accept": "application/json"})
            if answer.status != 200:
                raise SyncError("could not get an access token:\n" + problem_text(answer))
            granted = answer.json()
            self._token = str(granted["access_token"])
            self._expires_at = time.monotonic() + float(granted.get("expires_in", 0))
            print(f"got an access token for {self.client_id} (expires in {granted.get('expires_in')} s)",
                  file=self.log)
        return self._token

    def get(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Answer:
        """GET with a fresh token; a 401 gets one more try with a new token."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        target = f"{path}?{query}" if query else path
        for renewed in (False, True):
            sent = {"Accept": "application/json", **headers, "Authorization": f"Bearer {self.token()}"}
            answer = self._with_retries("GET", target, headers=sent)
            if answer.status != 401 or renewed:
                return answer
            print("the access token was refused (401); getting a new one", file=self.log)
            self._token = None
        raise AssertionError("unreachable")


def sync(client: Client, store: dict[str, Any], purpose: str, page_size: int = 100) -> dict[str, Any]:
    """One incremental sync into `store` ({"summaries": {id: summary}, "synced_at": ..., "etag": ...})."""
    summaries: dict[str, Any] = dict(store.get("summaries", {}))
    params: dict[str, Any] = {"limit": page_size, "updated_since": store.get("synced_at")}
    headers = {"X-Purpose": purpose}
    if store.get("etag") and store.get("synced_at"):
        headers["If-None-Match"] = store["etag"]
    etag, synced_at, withdrawn, pulled = store.get("etag"), store.get("synced_at"), 0, 0
    first = True
    while True:
        answer = client.get("/v1/summaries", params, headers)
        if answer.status == 304:  # nothing changed since the last sync: it cost almost nothing
            break
        if answer.status != 200:
            raise SyncError("the summaries could not be read:\n" + problem_text(answer))
        page = answer.json()
        if first:
            etag, synced_at = answer.headers.get("etag"), page["synced_at"]
            for referral_id in page["withdrawn"]:  # consent withdrawn, case moved on, or erased: delete now
                withdrawn += summaries.pop(referral_id, None) is not None
            first = False
        for item in page["items"]:
            summaries[item["id"]] = item
            pulled += 1
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
        headers.pop("If-None-Match", None)  # the ETag is the first page's
    expired = purge_expired(summaries, date.today())
    return {"summaries": summaries, "synced_at": synced_at, "etag": etag,
            "last_run": {"pulled": pulled, "withdrawn": withdrawn, "expired": expired}}


def purge_expired(summaries: dict[str, Any], today: date) -> int:
    """Keep nothing past its retain_until: the agreement's retention is a promise you made."""
    gone = [k for k, v in summaries.items() if date.fromisoformat(v["retain_until"]) < today]
    for referral_id in gone:
        del summaries[referral_id]
    return len(gone)


def write_store(path: Path, store: dict[str, Any]) -> None:
    """Atomically, readable by this user only: it holds case summaries."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(store, out, indent=2, sort_keys=True)
    os.replace(tmp, path)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Sync the summaries CaseBridge grants your organisation into a local JSON store.",
        epilog=f"The client secret is read from ${SECRET_ENV}.",
    )
    parser.add_argument("--base-url", default=os.environ.get("CASEBRIDGE_URL", "http://127.0.0.1:8000"),
                        help="the service's address (default: $CASEBRIDGE_URL or http://127.0.0.1:8000)")
    parser.add_argument("--client-id", default=os.environ.get("CASEBRIDGE_CLIENT_ID"),
                        help="your API client id (default: $CASEBRIDGE_CLIENT_ID)")
    parser.add_argument("--store", type=Path, default=Path("partner-summaries.json"),
                        help="the local store, written after each complete sync (default: %(default)s)")
    parser.add_argument("--purpose", default="service_provision",
                        help="the purpose your agreement grants summaries for (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="syncs to run (0: until interrupted)")
    parser.add_argument("--every", type=float, default=300.0, help="seconds between syncs (default: %(default)s)")
    parser.add_argument("--max-retries", type=int, default=5, help="retries of a 429/503 (default: %(default)s)")
    parser.add_argument("--renew-margin", type=float, default=60.0,
                        help="renew the token this many seconds before it expires (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.client_id:
        parser.error("--client-id (or $CASEBRIDGE_CLIENT_ID) is required")
    if urllib.parse.urlsplit(args.base_url).scheme not in ("http", "https"):
        parser.error(f"--base-url must be an http:// or https:// address, not {args.base_url!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        print(f"error: set {SECRET_ENV} to your client secret (from your secret store)", file=sys.stderr)
        return 2
    client = Client(args.base_url, args.client_id, secret, max_retries=args.max_retries,
                    renew_margin=args.renew_margin)
    store = json.loads(args.store.read_text()) if args.store.exists() else {}
    done = 0
    try:
        while True:
            store = sync(client, store, args.purpose)
            write_store(args.store, store)
            run = store["last_run"]
            print(f"{len(store['summaries'])} summaries held in {args.store} ({run['pulled']} pulled, "
                  f"{run['withdrawn']} withdrawn, {run['expired']} expired); next sync from {store['synced_at']}")
            done += 1
            if args.rounds and done >= args.rounds:
                return 0
            time.sleep(args.every)
    except SyncError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
