"""OIDC verification with tokens signed by a key the test generates, certs served on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from werkzeug.wrappers import Response

from handlers.auth import Unauthorized
from handlers.oidc import OidcVerifier, audiences_for
from tests.emulators import serve

AUD = "https://step.example.run.app/"
INVOKER = "invoker@proj.iam.gserviceaccount.com"


def keypair(kid: str) -> tuple[crypt.RSASigner, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kid)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return crypt.RSASigner.from_string(pem, key_id=kid), cert.public_bytes(
        serialization.Encoding.PEM
    ).decode()


@pytest.fixture(scope="module")
def keys():
    return {"k1": keypair("k1"), "k2": keypair("k2"), "rogue": keypair("k1")}


@pytest.fixture(scope="module")
def certs_url(keys):
    published = {kid: keys[kid][1] for kid in ("k1", "k2")}
    fetches: list[float] = []

    def app(environ, start_response):
        fetches.append(time.time())
        body = json.dumps(published)
        headers = {"Cache-Control": "public, max-age=600"}
        return Response(body, content_type="application/json", headers=headers)(
            environ, start_response
        )

    with serve(app) as url:
        yield url + "/oauth2/v1/certs", fetches


def token(signer, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": AUD,
        "email": INVOKER,
        "email_verified": True,
        "sub": "1234",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(signer, claims).decode()


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def verify(certs_url):
    return OidcVerifier(AUD, [INVOKER], certs_url=certs_url[0])


def test_a_valid_token_names_the_caller(verify, keys):
    assert verify(auth(token(keys["k1"][0])), b"{}", "http://ignored/") == INVOKER
    assert verify({"authorization": "bearer " + token(keys["k2"][0])}, b"", "") == INVOKER


def test_certificates_are_cached(certs_url, keys):
    v = OidcVerifier(AUD, [INVOKER], certs_url=certs_url[0])
    before = len(certs_url[1])
    for _ in range(3):
        v(auth(token(keys["k1"][0])), b"", "")
    assert len(certs_url[1]) - before == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other.example/"}, "audience"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
        ({"email": "mallory@evil.iam.gserviceaccount.com"}, "not allowed"),
        ({"email_verified": False}, "not verified"),
        ({"email_verified": None}, "not verified"),
        ({"email": None}, "no email"),
        ({"iss": "https://evil.example"}, "issuer"),
    ],
)
def test_bad_claims_are_refused_with_the_reason(verify, keys, overrides, reason):
    with pytest.raises(Unauthorized, match=reason):
        verify(auth(token(keys["k1"][0], **overrides)), b"", "")


def test_a_token_from_another_signer_is_refused(verify, keys):
    with pytest.raises(Unauthorized, match="signature"):
        verify(auth(token(keys["rogue"][0])), b"", "")


def test_a_token_naming_an_unpublished_key_is_refused(verify):
    signer = keypair("k9")[0]
    with pytest.raises(Unauthorized, match="k9"):
        verify(auth(token(signer)), b"", "")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer "}, "Bearer"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed"),
        ({"Authorization": "Bearer a.b.c"}, "malformed"),
    ],
)
def test_missing_or_malformed_headers_are_refused(verify, headers, reason):
    with pytest.raises(Unauthorized, match=reason):
        verify(headers, b"", "")


def test_without_a_configured_audience_the_request_url_is_expected(certs_url, keys):
    v = OidcVerifier(None, [INVOKER], certs_url=certs_url[0])
    tok = token(keys["k1"][0], aud="https://bridge.example/pubsub/course-events")
    assert v(auth(tok), b"", "http://bridge.example/pubsub/course-events") == INVOKER
    with pytest.raises(Unauthorized, match="audience"):
        v(auth(tok), b"", "http://bridge.example/reconcile")
    assert "https://bridge.example/x" in audiences_for("http://bridge.example/x?y=1")


def test_an_unreachable_certs_url_is_unauthorized_not_a_crash(keys):
    from tests.emulators import free_port

    v = OidcVerifier(AUD, [INVOKER], certs_url=f"http://127.0.0.1:{free_port()}/certs")
    with pytest.raises(Unauthorized, match="certificates"):
        v(auth(token(keys["k1"][0])), b"", "")


def test_an_empty_allow_list_is_a_configuration_error():
    with pytest.raises(ValueError, match="COURSEGEN_ALLOWED_INVOKERS"):
        OidcVerifier(AUD, [" "])
