"""Rate limits for POST /v1/token: token buckets per client id and per client address.

Why: each token request costs a database lookup and a hash; without a limit a flood of
wrong-secret requests takes the process's time from everyone else (issue 12).

How: one bucket per key holds up to ``burst`` attempts and refills at ``per_minute``. An
attempt takes one token from the client's bucket *and* the address's bucket before any work
is done (so a burst of concurrent requests cannot overshoot), and the tokens are given back
when a token is issued. Only failed attempts use up the allowance: a legitimate client that
asks for tokens often is not guessing, and clients of one agency behind one address must not
lock each other out by succeeding. Unknown client ids get buckets like known ones, so a 429
says nothing about whether a client exists.

The buckets live in this process's memory: with N worker processes (``casebridge serve
--workers N``) each keeps its own, so the effective limit is N times the configured one, and
a restart forgets them. Settings: ``CASEBRIDGE_TOKEN_CLIENT_PER_MINUTE``, ``…_CLIENT_BURST``,
``…_ADDRESS_PER_MINUTE``, ``…_ADDRESS_BURST`` (0 per minute: that limit is off),
``CASEBRIDGE_TOKEN_LIMIT_MAX_KEYS``.

A known trade-off: whoever knows a client id can keep that client's bucket empty with a
few wrong attempts a minute, so the client's *new* token requests are refused until the
attack stops (tokens already issued keep working until they expire). The operator sees it in
the log (one warning per refusal streak, per bucket).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.errors import TooManyRequests

log = logging.getLogger("casebridge.auth")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    refusing: bool = False  # in a streak of refusals: logged once, when it starts


class TokenBuckets:
    """Buckets by key, bounded in number; not thread-safe on its own (``TokenEndpointLimits`` locks)."""

    def __init__(self, per_minute: float, burst: int, *, max_keys: int) -> None:
        self.enabled = per_minute > 0
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key, now)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self.rate

    def take(self, key: str, now: float) -> None:
        if self.enabled:
            bucket = self._refilled(key, now)
            bucket.tokens -= 1.0
            bucket.refusing = False

    def give_back(self, key: str, now: float) -> None:
        if self.enabled:
            bucket = self._refilled(key, now)
            bucket.tokens = min(self.burst, bucket.tokens + 1.0)

    def start_refusing(self, key: str) -> bool:
        """Mark `key` as refused; True when this starts a streak (worth one log line)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.refusing:
            return False
        bucket.refusing = True
        return True

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.burst, stamp=now)
            self._buckets[key] = bucket
            self._bound(now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._buckets.move_to_end(key)
        return bucket

    def _bound(self, now: float) -> None:
        """Over the cap: drop buckets that have refilled (they hold nothing), then the least
        recently used, down to 90 % of the cap so the sweep is not repeated on every new key."""
        if len(self._buckets) <= self.max_keys:
            return
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * self.rate >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys * 9 // 10:
            self._buckets.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Charge:
    """One attempt taken from both buckets; handed back with ``TokenEndpointLimits.refund``."""

    client_key: str
    address: str


class TokenEndpointLimits:
    """The per-client and per-address limits of POST /v1/token, independent of each other."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = TokenBuckets(settings.token_client_per_minute, settings.token_client_burst,
                                    max_keys=settings.token_limit_max_keys)
        self.addresses = TokenBuckets(settings.token_address_per_minute, settings.token_address_burst,
                                      max_keys=settings.token_limit_max_keys)
        self._clock = clock
        self._lock = threading.Lock()

    def charge(self, client_id: str, address: str) -> Charge:
        """Take one attempt from the client's and the address's bucket, or raise 429 (taking none)."""
        client_key = client_id[:64]  # the service looks clients up by the same 64 characters
        with self._lock:
            now = self._clock()
            waits = {"client": self.clients.wait(client_key, now), "address": self.addresses.wait(address, now)}
            if max(waits.values()) > 0:
                self._note_refusal(client_key, address, waits)
                raise TooManyRequests(
                    "Too many failed token requests; retry after the time in Retry-After.",
                    retry_after=math.ceil(max(waits.values())),
                )
            self.clients.take(client_key, now)
            self.addresses.take(address, now)
        return Charge(client_key=client_key, address=address)

    def refund(self, charge: Charge) -> None:
        """A token was issued: the attempt does not count."""
        with self._lock:
            now = self._clock()
            self.clients.give_back(charge.client_key, now)
            self.addresses.give_back(charge.address, now)

    def _note_refusal(self, client_key: str, address: str, waits: dict[str, float]) -> None:
        started = []
        if waits["client"] > 0 and self.clients.start_refusing(client_key):
            started.append("client")
        if waits["address"] > 0 and self.addresses.start_refusing(address):
            started.append("address")
        if started:
            # Never the client id as typed (a secret pasted into the wrong field would be logged):
            # a short digest, which an operator can compute from their own client ids.
            log.warning(
                "token requests refused: rate limit",
                extra={
                    "limits": started,
                    "client_address": address,
                    "client_digest": hashlib.sha256(client_key.encode()).hexdigest()[:12],
                    "retry_after_s": math.ceil(max(waits.values())),
                },
            )
