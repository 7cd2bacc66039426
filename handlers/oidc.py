"""OIDC caller verification in the cloud: Google-signed ID tokens (Cloud Tasks, Pub/Sub, Scheduler).

Checks the RS256 signature against Google's published certificates (cached per their
Cache-Control max-age, refetched early when a token names an unknown key), the expiry, the
issuer, the audience (configured, or the URL the request came to), the caller's email against
an allow-list, and ``email_verified``. Any failure raises ``Unauthorized`` naming the reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from google.auth import exceptions as gexc
from google.auth import jwt

from handlers.auth import Unauthorized, bearer

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
CLOCK_SKEW_S = 10
_DEFAULT_TTL_S = 300.0
_MIN_REFETCH_S = 30.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class OidcVerifier:
    """``(headers, body, url) -> caller email``, for the task endpoint and the bridge."""

    def __init__(
        self,
        audience: str | None,
        allowed_emails: Iterable[str],
        certs_url: str = GOOGLE_CERTS_URL,
        request: Any = None,
        issuers: Iterable[str] = GOOGLE_ISSUERS,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience or None
        self.allowed_emails = frozenset(e.strip().lower() for e in allowed_emails if e.strip())
        if not self.allowed_emails:
            raise ValueError("OIDC needs at least one allowed caller (COURSEGEN_ALLOWED_INVOKERS)")
        self.certs_url = certs_url
        self.issuers = frozenset(issuers)
        self.now = now
        self._request = request
        self._certs: dict[str, str] = {}
        self._fetched_at = float("-inf")
        self._ttl = 0.0
        self._lock = threading.Lock()

    def __call__(self, headers: Mapping[str, str], body: bytes, url: str) -> str:
        token = bearer(headers)
        if token.count(".") != 2:
            raise Unauthorized("malformed ID token: not a JWT")
        try:
            header = jwt.decode_header(token)
        except (ValueError, gexc.GoogleAuthError) as err:
            raise Unauthorized(f"malformed ID token: {err}") from None
        if header.get("alg") != "RS256":
            raise Unauthorized(f"ID token algorithm {header.get('alg')!r} is not RS256")
        claims = self._decode(token, header.get("kid"))
        return self._check(claims, url)

    def _decode(self, token: str, kid: str | None) -> Mapping[str, Any]:
        certs = self._certificates(refresh_for=kid)
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token, certs=certs, verify=True, clock_skew_in_seconds=CLOCK_SKEW_S
            )
        except (ValueError, gexc.GoogleAuthError) as err:
            raise Unauthorized(f"ID token rejected: {err}") from None
        return claims

    def _check(self, claims: Mapping[str, Any], url: str) -> str:
        if claims.get("iss") not in self.issuers:
            raise Unauthorized(f"ID token issuer {claims.get('iss')!r} is not Google")
        expected = {self.audience} if self.audience else audiences_for(url)
        aud = claims.get("aud")
        auds = set(aud) if isinstance(aud, list) else {aud}
        if not auds & expected:
            raise Unauthorized(f"ID token audience {aud!r} is not {sorted(expected)!r}")
        email = str(claims.get("email") or "").lower()
        if not email:
            raise Unauthorized("ID token carries no email claim")
        if claims.get("email_verified") is not True:
            raise Unauthorized(f"ID token email {email} is not verified")
        if email not in self.allowed_emails:
            raise Unauthorized(f"caller {email} is not allowed to call this service")
        if "exp" not in claims:
            raise Unauthorized("ID token has no expiry")
        return email

    def _certificates(self, refresh_for: str | None) -> Mapping[str, str]:
        with self._lock:
            age = self.now() - self._fetched_at
            stale = age >= self._ttl
            unknown = refresh_for is not None and refresh_for not in self._certs
            if stale or (unknown and age >= _MIN_REFETCH_S):
                self._fetch()
            return dict(self._certs)

    def _fetch(self) -> None:
        import json

        request = self._request
        if request is None:
            import google.auth.transport.requests

            request = self._request = google.auth.transport.requests.Request()
        try:
            response = request(self.certs_url, method="GET")
        except gexc.TransportError as err:
            raise Unauthorized(f"could not fetch the OIDC certificates: {err}") from None
        if response.status != 200:
            raise Unauthorized(f"could not fetch the OIDC certificates: HTTP {response.status}")
        data = response.data.decode() if isinstance(response.data, bytes) else response.data
        self._certs = dict(json.loads(data))
        headers = {k.lower(): v for k, v in dict(response.headers or {}).items()}
        match = _MAX_AGE.search(headers.get("cache-control", ""))
        self._ttl = float(match.group(1)) if match else _DEFAULT_TTL_S
        self._fetched_at = self.now()


def audiences_for(url: str) -> set[str]:
    """The audiences a token for ``url`` may carry: behind Google's front ends the app sees
    ``http://``; callers put the public ``https://`` URL (without the query) in the token."""
    parts = urlsplit(url)
    found = set()
    for scheme in {parts.scheme, "https"}:
        base = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
        found |= {base, base.rstrip("/") or base, base if base.endswith("/") else base + "/"}
    return found
