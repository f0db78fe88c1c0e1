"""Sign-in through the city's identity provider: OpenID Connect, authorization code flow with PKCE.

The console is a confidential client of the provider named by ``oidc_issuer`` (``oidc_client_id`` and
``oidc_client_secret``). The parts, all of them Authlib's or joserfc's (Authlib's JOSE library), none
hand-written:

- Discovery: ``<issuer>/.well-known/openid-configuration`` is read (and kept for ``DISCOVERY_TTL``); its
  ``issuer`` must be exactly ``oidc_issuer``. The provider's keys (``jwks_uri``) are kept too and read
  again once when a token names a key id they lack (key rotation).
- The request: ``response_type=code``, a random ``state`` and ``nonce``, a PKCE ``code_verifier`` whose
  S256 ``code_challenge`` is sent, scope ``openid profile`` plus the scopes the provider offers under
  the names of the agency and roles claims, and (when the provider supports the ``claims`` parameter)
  a request for those two claims in the ID token. The state, nonce and verifier stay on the server.
- The answer: the state is compared in constant time and the pending request is used up whatever
  happens next (one attempt per request, no replay); the code is exchanged with the verifier, the
  client authenticating as the provider's metadata allows (``client_secret_basic``, else ``_post``);
  the ID token's signature is checked against the provider's keys (only the algorithms it publishes,
  never ``none``), then ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``nonce`` and ``at_hash``
  (Authlib's ``CodeIDToken``). The agency and roles claims are read from the ID token, or from the
  userinfo endpoint (whose ``sub`` must be the token's) when the provider puts them only there.
- The person: the one whose ``(oidc_issuer, oidc_subject)`` is the token's ``(iss, sub)`` signs in, if
  their agency is the claim's; otherwise a person is made just in time (id from ``preferred_username``,
  else the subject), in the claim's agency, which must exist. The roles are the claim's roles this
  service knows, set again at every sign-in (the provider is their source); none known: refused.

Second factor: people who sign in through the provider are never asked for the console's own TOTP
code. The provider authenticates them, and its policy (multi-factor included) is the city's to set and
enforce for every service it serves; a second, separate factor here would duplicate it. The password
path (app/console/router.py) keeps asking coordinators, auditors and admins for one.

Why a second cookie: the session cookie (``cb_console``) is SameSite=Strict, so a browser does not send
it on the provider's redirect back to the callback (a navigation started on another site). When the
request starts, a new anonymous session holds the pending request (``console_sessions.pending``) and
its token is also set in ``cb_oidc``: HttpOnly, SameSite=Lax (sent on a top-level GET from another
site, never on a cross-site POST or sub-request), Path=/console/sign-in/oidc (nowhere else), Secure
outside dev, ten minutes. The callback finds the row by that cookie's SHA-256 (as ``cb_console``'s),
deletes it in the same statement that reads it (``DELETE … RETURNING``: one use, even when two
callbacks race), deletes the cookie, and on success starts a new signed-in session (a new id: no
fixation). Lax alone would not stop a forged callback; the state does, since only this browser's row
holds it.

Why the callback answers with a page and not a redirect: the redirect would continue the navigation
the provider started, which browsers still treat as cross-site, so the Strict cookie just set would
not be sent on the next page and the person would look signed out. The page (with a ``Refresh``
header and a link to follow) starts a navigation of its own, from this site.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agencies.models import Agency, ApiClient
from app.agencies.schemas import Role
from app.config import Settings
from app.console import people
from app.console.models import Person

with warnings.catch_warnings():
    # Authlib 1.9 announces a move from httpx to its fork "httpx2" at import; the project uses httpx,
    # which Authlib still supports (the warning says nothing about our use of it).
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

DISCOVERY_TTL = 3600.0
PENDING_SECONDS = 600
TIMEOUT = httpx.Timeout(10.0)
LEEWAY = 60
KNOWN_ROLES = frozenset(role.value for role in Role)
CALLBACK_PATH = "/console/sign-in/oidc/callback"
_SLUG = re.compile(r"[^a-z0-9]+")


class OidcRefused(Exception):
    """The sign-in did not succeed: ``reason`` goes to the log, ``status`` to the page."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ProviderUnavailable(OidcRefused):
    """The provider could not be reached or answered nonsense (the page says so, 503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 503)


@dataclass(frozen=True, slots=True)
class Identity:
    """What the provider said of the person, read from validated claims."""

    issuer: str
    subject: str
    username: str | None
    name: str | None
    agency: str | None
    roles: tuple[str, ...]


# Discovery and keys ------------------------------------------------------------------------------

_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_keys: dict[str, dict[str, Any]] = {}


def forget_provider() -> None:
    """Drop the kept discovery documents and keys (tests; a provider that changed)."""
    _metadata.clear()
    _keys.clear()


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            answer = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"unreachable: {type(exc).__name__}") from None
    if answer.status_code != 200:
        raise ProviderUnavailable(f"answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise ProviderUnavailable("not JSON") from None
    if not isinstance(body, dict):
        raise ProviderUnavailable("not a JSON object")
    return body


async def discover(settings: Settings) -> dict[str, Any]:
    """The provider's metadata (OpenID Connect Discovery 1.0), kept for ``DISCOVERY_TTL`` seconds."""
    issuer = settings.oidc_issuer
    if not issuer:
        raise OidcRefused("not-configured", 404)
    kept = _metadata.get(issuer)
    if kept is not None and time.monotonic() - kept[0] < DISCOVERY_TTL:
        return kept[1]
    metadata = await _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if metadata.get("issuer") != issuer:  # Discovery §4.3: exactly the issuer asked for
        raise ProviderUnavailable("discovery names another issuer")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(needed), str):
            raise ProviderUnavailable(f"discovery lacks {needed}")
    if "code" not in metadata.get("response_types_supported", ["code"]):
        raise ProviderUnavailable("the provider does not offer the code flow")
    _metadata[issuer] = (time.monotonic(), metadata)
    return metadata


async def key_set(metadata: Mapping[str, Any], *, refresh: bool = False) -> KeySet:
    uri = str(metadata["jwks_uri"])
    if refresh or uri not in _keys:
        _keys[uri] = await _get_json(uri)
    try:
        return KeySet.import_key_set(_keys[uri])  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError):
        raise ProviderUnavailable("unreadable keys") from None


# The request -------------------------------------------------------------------------------------


def redirect_uri(settings: Settings, own_origin: str) -> str:
    return (settings.oidc_redirect_base or own_origin).rstrip("/") + CALLBACK_PATH


def _client(settings: Settings, metadata: Mapping[str, Any], redirect: str) -> AsyncOAuth2Client:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return AsyncOAuth2Client(client_id=settings.oidc_client_id, client_secret=secret,
                             token_endpoint_auth_method=method, code_challenge_method="S256",
                             redirect_uri=redirect, timeout=TIMEOUT, follow_redirects=False)


def scope_for(settings: Settings, metadata: Mapping[str, Any]) -> str:
    """``openid profile`` and the provider's scopes named as the agency and roles claims, if it has them."""
    offered = metadata.get("scopes_supported") or []
    extra = [name for name in (settings.oidc_agency_claim, settings.oidc_roles_claim)
             if name in offered and name not in ("openid", "profile")]
    return " ".join(["openid", "profile", *dict.fromkeys(extra)])


def begin(settings: Settings, metadata: Mapping[str, Any], redirect: str, target: str,
          now: float) -> tuple[str, dict[str, Any]]:
    """The authorization URL to send the browser to, and what the callback needs (kept server-side)."""
    import json

    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = generate_token(64)  # RFC 7636 §4.1: 43 to 128 characters of the unreserved set
    params: dict[str, str] = {"nonce": nonce}
    if metadata.get("claims_parameter_supported"):
        wanted = {settings.oidc_agency_claim: {"essential": True}, settings.oidc_roles_claim: {"essential": True},
                  "preferred_username": None, "name": None}
        params["claims"] = json.dumps({"id_token": wanted}, separators=(",", ":"))
    client = _client(settings, metadata, redirect)
    url, _ = client.create_authorization_url(str(metadata["authorization_endpoint"]), state=state,
                                             code_verifier=verifier, response_type="code",
                                             scope=scope_for(settings, metadata), **params)
    pending = {"state": state, "nonce": nonce, "code_verifier": verifier, "redirect_uri": redirect,
               "next": target, "started": int(now)}
    return str(url), pending


# The answer --------------------------------------------------------------------------------------


def check_state(pending: Mapping[str, Any], sent: str | None, now: float) -> None:
    expected = pending.get("state")
    if not isinstance(expected, str) or not sent or \
            not secrets.compare_digest(sent.encode(), expected.encode()):
        raise OidcRefused("state-mismatch", 400)
    started = pending.get("started")
    if not isinstance(started, int) or now - started > PENDING_SECONDS:
        raise OidcRefused("expired", 400)


async def exchange(settings: Settings, metadata: Mapping[str, Any], pending: Mapping[str, Any],
                   code: str) -> dict[str, Any]:
    """The token endpoint's answer for the code (with the PKCE verifier)."""
    async with _client(settings, metadata, str(pending["redirect_uri"])) as client:
        try:
            token = await client.fetch_token(str(metadata["token_endpoint"]), grant_type="authorization_code",
                                             code=code, code_verifier=str(pending["code_verifier"]),
                                             redirect_uri=str(pending["redirect_uri"]))
        except (OAuthError, OAuth2Error) as exc:
            raise OidcRefused(f"token-refused: {getattr(exc, 'error', '') or 'error'}"[:80]) from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from None
        except ValueError:
            raise OidcRefused("token-unreadable") from None
    if not isinstance(token, Mapping) or not isinstance(token.get("id_token"), str):
        raise OidcRefused("no-id-token")
    return dict(token)


def validate_id_token(id_token: str, *, keys: KeySet, algorithms: list[str], issuer: str, client_id: str,
                      nonce: str, access_token: str | None = None, now: int | None = None) -> dict[str, Any]:
    """The ID token's claims, if its signature is the provider's and iss/aud/azp/exp/iat/nonce/at_hash hold."""
    allowed = [alg for alg in algorithms if alg and alg.lower() != "none"] or ["RS256"]
    try:
        decoded = jwt.decode(id_token, keys, registry=JWSRegistry(algorithms=allowed, strict_check_header=False))
        params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(decoded.claims, decoded.header,
                             {"iss": {"essential": True, "value": issuer},
                              "aud": {"essential": True, "value": client_id},
                              "sub": {"essential": True}}, params)
        claims.validate(now=now, leeway=LEEWAY)
    except JoseError as exc:
        raise OidcRefused(f"id-token-invalid: {exc.error}"[:80]) from None
    except (ValueError, TypeError, KeyError):
        raise OidcRefused("id-token-invalid") from None
    if not nonce or not isinstance(claims.get("nonce"), str):
        raise OidcRefused("id-token-invalid: nonce")
    return dict(claims)


async def id_token_claims(settings: Settings, metadata: Mapping[str, Any], token: Mapping[str, Any],
                          nonce: str) -> dict[str, Any]:
    """Validate the token's ID token with the provider's keys (read again once if its key is unknown)."""
    algorithms = list(metadata.get("id_token_signing_alg_values_supported") or ["RS256"])
    arguments: dict[str, Any] = {"algorithms": algorithms, "issuer": str(metadata["issuer"]),
                                 "client_id": str(settings.oidc_client_id), "nonce": nonce,
                                 "access_token": token.get("access_token")}
    try:
        return validate_id_token(str(token["id_token"]), keys=await key_set(metadata), **arguments)
    except OidcRefused as refused:
        if "key_id" not in refused.reason and "signature" not in refused.reason:
            raise
    return validate_id_token(str(token["id_token"]), keys=await key_set(metadata, refresh=True), **arguments)


async def userinfo(metadata: Mapping[str, Any], access_token: str) -> dict[str, Any]:
    endpoint = metadata.get("userinfo_endpoint")
    if not isinstance(endpoint, str) or not access_token:
        return {}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            answer = await client.get(endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                         "Accept": "application/json"})
    except httpx.HTTPError:
        raise ProviderUnavailable("userinfo unreachable") from None
    if answer.status_code != 200 or not answer.headers.get("content-type", "").startswith("application/json"):
        return {}  # a signed (JWT) userinfo is not used: the ID token is asked for the claims first
    body = answer.json()
    return body if isinstance(body, dict) else {}


async def identify(settings: Settings, metadata: Mapping[str, Any], token: Mapping[str, Any],
                   nonce: str) -> Identity:
    claims = await id_token_claims(settings, metadata, token, nonce)
    wanted = (settings.oidc_agency_claim, settings.oidc_roles_claim)
    if any(name not in claims for name in wanted):
        extra = await userinfo(metadata, str(token.get("access_token") or ""))
        if extra.get("sub") == claims["sub"]:  # Core §5.3.2: else the userinfo answer is not used
            claims = {**{k: v for k, v in extra.items() if k in (*wanted, "preferred_username", "name")},
                      **claims}
    return identity_of(settings, str(metadata["issuer"]), claims)


def identity_of(settings: Settings, issuer: str, claims: Mapping[str, Any]) -> Identity:
    agency = claims.get(settings.oidc_agency_claim)
    raw_roles = claims.get(settings.oidc_roles_claim)
    if isinstance(raw_roles, str):
        roles = tuple(raw_roles.split())
    elif isinstance(raw_roles, list):
        roles = tuple(str(r) for r in raw_roles if isinstance(r, str))
    else:
        roles = ()
    username = claims.get("preferred_username")
    name = claims.get("name")
    return Identity(issuer=issuer, subject=str(claims["sub"]),
                    username=username if isinstance(username, str) else None,
                    name=name if isinstance(name, str) else None,
                    agency=agency if isinstance(agency, str) else None, roles=roles)


# The person --------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """A person id from a user name: lower-case ASCII letters, digits and hyphens, 3 to 64 of them."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _SLUG.sub("-", ascii_text).strip("-")[:56].strip("-")


def _free_id(session: Session, identity: Identity) -> str:
    import hashlib

    base = slug(identity.username or "") or slug(identity.subject)
    if len(base) < 3:
        base = "oidc-" + hashlib.sha256(identity.subject.encode()).hexdigest()[:12]
    candidate, n = base, 1
    while session.get(Person, candidate) is not None or session.get(ApiClient, candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def sign_in_person(session: Session, settings: Settings, identity: Identity) -> Person:
    """The person the identity is (made now if new), with the claim's roles; refused when it cannot be."""
    if not identity.subject or len(identity.subject) > 200:  # people.oidc_subject's size
        raise OidcRefused("subject-unusable", 403)
    roles = sorted({r for r in identity.roles if r in KNOWN_ROLES})
    stored_issuer = settings.oidc_issuer or identity.issuer
    person = session.scalars(select(Person).where(Person.oidc_issuer == stored_issuer,
                                                  Person.oidc_subject == identity.subject)).first()
    if person is not None:
        if person.disabled:
            raise OidcRefused("disabled", 403)
        if identity.agency != person.agency_id:
            raise OidcRefused("agency-mismatch", 403)
        if not roles:
            raise OidcRefused("no-known-role", 403)
        if sorted(person.roles) != roles:
            person.roles = roles
            client = session.get(ApiClient, person.id)
            if client is not None:
                client.roles = roles
        person.failed_attempts = 0
        session.flush()
        return person
    if not identity.agency or session.get(Agency, identity.agency) is None:
        raise OidcRefused("unknown-agency", 403)
    if not roles:
        raise OidcRefused("no-known-role", 403)
    name = (identity.name or identity.username or identity.subject)[:200]
    try:
        return people.create_person(session, person_id=_free_id(session, identity), agency_id=identity.agency,
                                    name=name, roles=roles, password=None, oidc_issuer=stored_issuer,
                                    oidc_subject=identity.subject)
    except people.PersonInvalid:
        raise OidcRefused("person-invalid", 403) from None
