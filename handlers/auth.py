"""Caller authentication for the task endpoint: HMAC tokens locally, OIDC in the cloud.

A local token binds the exact request body: ``v1.<expiry>.<hex HMAC-SHA256(secret,
"v1.<expiry>.<sha256(body)>")>``, so a token lifted from one task cannot carry another.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class Unauthorized(Exception):
    """The caller did not prove who it is (401)."""


def sign(secret: bytes, body: bytes, expires_at: int) -> str:
    message = f"v1.{expires_at}.{hashlib.sha256(body).hexdigest()}".encode()
    return f"v1.{expires_at}.{hmac.new(secret, message, hashlib.sha256).hexdigest()}"


@dataclass(frozen=True, slots=True)
class HmacVerifier:
    secret: bytes
    now: Callable[[], float]

    def __call__(self, headers: Mapping[str, str], body: bytes, url: str) -> str:
        token = bearer(headers)
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1" or not _decimal(parts[1], 12):
            raise Unauthorized("malformed task token")
        expires_at = int(parts[1])
        expected = sign(self.secret, body, expires_at)
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise Unauthorized("task token signature does not match this request")
        if expires_at < self.now():
            raise Unauthorized("task token expired")
        return "local-dispatcher"


def _decimal(text: str, max_digits: int) -> bool:
    """ASCII digits only (``str.isdigit`` admits "²", which ``int`` refuses), and not too many."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def allow_all(headers: Mapping[str, str], body: bytes, url: str) -> str:
    return "unauthenticated"


def bearer(headers: Mapping[str, str]) -> str:
    value = header(headers, "authorization")
    if not value:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (Cloud Tasks and proxies vary the case)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
