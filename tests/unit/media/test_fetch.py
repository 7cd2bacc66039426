"""Tests for the SSRF-safe fetcher: decisions with a fake resolver, transfers on 127.0.0.1 only."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from handlers.artifacts import LocalArtifacts, SourceUnavailable
from handlers.media.fetch import FetchFailed, FetchPolicy, FetchRefused, fetch, open_connection
from handlers.media.ssrf import check_address, gs_uri_problem

BODY = bytes(range(256)) * 8  # 2048 bytes
METADATA = "http://169.254.169.254/latest/meta-data/"


@dataclass
class FakeResolver:
    """getaddrinfo stand-in: a fixed table of names, recording every lookup."""

    table: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_addrinfo(ip, port) for ip in self.table[host]]


def _addrinfo(ip: str, port: int) -> tuple:
    if ":" in ip:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))


@dataclass
class RecordingConnections:
    """Connection factory that records every connection the fetcher asks for."""

    calls: list[tuple[str, str, int, tuple[str, ...]]] = field(default_factory=list)
    ssl_context: ssl.SSLContext | None = None

    def __call__(self, scheme: str, host: str, port: int, *, ips: list[str], timeout: float):
        self.calls.append((scheme, host, port, tuple(ips)))
        return open_connection(
            scheme, host, port, ips=ips, timeout=timeout, ssl_context=self.ssl_context
        )


# ---- decisions: no traffic at all ---------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.5.6.7",
    "::1",
    "10.1.2.3",
    "172.16.5.4",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "100.64.0.1",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
]


@pytest.mark.parametrize("ip", REFUSED_ADDRESSES)
def test_check_address_refuses_non_public(ip: str) -> None:
    resolver = FakeResolver({"media.example": [ip]})
    with pytest.raises(FetchRefused, match="not public"):
        check_address("media.example", 443, resolver=resolver)


@pytest.mark.parametrize("ip", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_check_address_accepts_public(ip: str) -> None:
    resolver = FakeResolver({"media.example": [ip]})
    assert check_address("media.example", 443, resolver=resolver) == [ip]


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    resolver = FakeResolver({"media.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.7"):
        check_address("media.example", 443, resolver=resolver)


def test_scope_id_is_ignored_when_classifying() -> None:
    resolver = FakeResolver({"media.example": ["fe80::1%eth0"]})
    with pytest.raises(FetchRefused):
        check_address("media.example", 80, resolver=resolver)


def test_allowed_host_is_exempt_case_and_trailing_dot_insensitive() -> None:
    resolver = FakeResolver({"LocalHost.": ["127.0.0.1"]})
    ips = check_address("LocalHost.", 80, resolver=resolver, allowed_hosts=frozenset({"localhost"}))
    assert ips == ["127.0.0.1"]


def test_unknown_host_is_refused() -> None:
    with pytest.raises(FetchRefused, match="does not resolve"):
        check_address("nowhere.invalid", 80, resolver=FakeResolver({}))


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://media.example/lecture.mp4",
        "gopher://media.example/1",
        "data:video/mp4;base64,AAAA",
        "dict://media.example:11211/stat",
        "ldap://media.example/",
        "javascript:alert(1)",
        "file://media.example/etc/passwd",
        "http://user:pw@media.example/lecture.mp4",
    ],
)
def test_unsupported_uris_are_refused_before_any_lookup(uri: str, tmp_path: Path) -> None:
    resolver = FakeResolver({"media.example": ["93.184.216.34"]})
    connections = RecordingConnections()
    with pytest.raises(FetchRefused):
        fetch(
            uri,
            tmp_path / "out.mp4",
            _policy(tmp_path),
            resolver=resolver,
            connection_factory=connections,
        )
    assert resolver.calls == []
    assert connections.calls == []


def test_private_target_is_refused_before_connecting(tmp_path: Path) -> None:
    resolver = FakeResolver({"internal.example": ["10.0.0.5"]})
    connections = RecordingConnections()
    with pytest.raises(FetchRefused):
        fetch(
            "https://internal.example/x.mp4",
            tmp_path / "out.mp4",
            _policy(tmp_path),
            resolver=resolver,
            connection_factory=connections,
        )
    assert resolver.calls == ["internal.example"]
    assert connections.calls == []


# ---- local sources ------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "uploads"
    root.mkdir()
    (root / "lecture.mp4").write_bytes(BODY)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"top secret")
    return root, outside


def test_local_path_under_root_is_copied(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = local
    dest = tmp_path / "work" / "source.mp4"
    assert fetch(str(root / "lecture.mp4"), dest, _policy(root)) == dest
    assert dest.read_bytes() == BODY


def test_file_uri_under_root_is_copied(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = local
    dest = tmp_path / "source.mp4"
    fetch((root / "lecture.mp4").as_uri(), dest, _policy(root))
    assert dest.read_bytes() == BODY


def test_local_path_outside_roots_is_refused(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, outside = local
    with pytest.raises(FetchRefused, match="outside"):
        fetch(str(outside), tmp_path / "out", _policy(root))
    with pytest.raises(FetchRefused, match="outside"):
        fetch(outside.as_uri(), tmp_path / "out", _policy(root))


def test_dotdot_escape_is_refused(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = local
    with pytest.raises(FetchRefused, match="outside"):
        fetch(f"{root}/../secret.txt", tmp_path / "out", _policy(root))
    with pytest.raises(FetchRefused, match="outside"):
        fetch(f"file://{root}/../secret.txt", tmp_path / "out", _policy(root))


def test_symlink_escape_is_refused(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, outside = local
    (root / "innocent.mp4").symlink_to(outside)
    (root / "dir").symlink_to(outside.parent)
    with pytest.raises(FetchRefused, match="outside"):
        fetch(str(root / "innocent.mp4"), tmp_path / "out", _policy(root))
    with pytest.raises(FetchRefused, match="outside"):
        fetch(str(root / "dir" / "secret.txt"), tmp_path / "out", _policy(root))
    assert not (tmp_path / "out").exists()


def test_missing_local_file_and_directory_are_refused(local: tuple[Path, Path]) -> None:
    root, _ = local
    with pytest.raises(FetchRefused, match="not found"):
        fetch(str(root / "nope.mp4"), root / "out", _policy(root))
    (root / "folder").mkdir()
    with pytest.raises(FetchRefused, match="regular file"):
        fetch(str(root / "folder"), root / "out", _policy(root))


def test_local_file_over_max_bytes_is_refused(local: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = local
    dest = tmp_path / "out.mp4"
    with pytest.raises(FetchRefused, match="exceeds"):
        fetch(str(root / "lecture.mp4"), dest, _policy(root, max_bytes=100))
    _assert_nothing_left(dest)


# ---- gs:// --------------------------------------------------------------------------------


def test_gs_without_a_source_reader_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="not configured"):
        fetch("gs://bucket/lecture.mp4", tmp_path / "out", _policy(tmp_path))


@pytest.fixture
def bucket_store(tmp_path: Path) -> tuple[LocalArtifacts, Path]:
    """A LocalArtifacts whose bucket ``lectures`` is the folder ``bucket/``."""
    folder = tmp_path / "bucket"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "lecture.mp4").write_bytes(BODY)
    return LocalArtifacts(tmp_path / "artifacts", buckets={"lectures": folder}), folder


def test_gs_goes_through_the_source_reader(
    bucket_store: tuple[LocalArtifacts, Path], tmp_path: Path
) -> None:
    store, _ = bucket_store
    dest = tmp_path / "work" / "out.mp4"
    assert fetch("gs://lectures/a/lecture.mp4", dest, _policy(tmp_path), sources=store) == dest
    assert dest.read_bytes() == BODY


def test_gs_over_max_bytes_is_refused_and_leaves_no_file(
    bucket_store: tuple[LocalArtifacts, Path], tmp_path: Path
) -> None:
    store, _ = bucket_store
    dest = tmp_path / "out.mp4"
    with pytest.raises(FetchRefused, match="over 100"):
        fetch("gs://lectures/a/lecture.mp4", dest, _policy(tmp_path, max_bytes=100), sources=store)
    _assert_nothing_left(dest)


def test_gs_missing_object_is_refused(
    bucket_store: tuple[LocalArtifacts, Path], tmp_path: Path
) -> None:
    store, _ = bucket_store
    with pytest.raises(FetchRefused, match="no such object"):
        fetch("gs://lectures/a/nope.mp4", tmp_path / "o", _policy(tmp_path), sources=store)


class FlakySource:
    """A source reader whose storage is down: it writes nothing and says so."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch_source(self, uri: str, dest: Path, *, max_bytes: int) -> Path:
        self.asked.append(uri)
        raise SourceUnavailable("Cloud Storage answered 503", uri=uri)


def test_gs_transient_storage_errors_are_transient(tmp_path: Path) -> None:
    source = FlakySource()
    dest = tmp_path / "out.mp4"
    with pytest.raises(FetchFailed, match="503"):
        fetch("gs://lectures/a.mp4", dest, _policy(tmp_path), sources=source)
    assert source.asked == ["gs://lectures/a.mp4"]
    _assert_nothing_left(dest)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("gs://bucket", "no object"),
        ("gs://bucket/", "no object"),
        ("gs:///lecture.mp4", "no bucket"),
        ("gs://bucket//abs/lecture.mp4", "absolute"),
        ("gs://bucket/a/../../etc/passwd", "'..'"),
        ("gs://bucket/a/./b.mp4", "'.'"),
        ("gs://bucket/a//b.mp4", "''"),
        ("gs://bucket/folder/", "folder"),
        ("gs://Bucket/a.mp4", "bucket name"),
        ("gs://bucket/a\x00.mp4", "control"),
    ],
)
def test_gs_uris_that_name_no_safe_object_are_refused_before_any_read(
    uri: str, why: str, tmp_path: Path
) -> None:
    source = FlakySource()
    with pytest.raises(FetchRefused, match=why):
        fetch(uri, tmp_path / "o", _policy(tmp_path), sources=source)
    assert source.asked == []
    assert gs_uri_problem(uri) is not None


def test_gs_uri_problem_accepts_a_plain_object() -> None:
    assert gs_uri_problem("gs://lectures-2024/term 1/week#3?.mp4") is None


# ---- real transfers from a server on 127.0.0.1 ---------------------------------------------


class LectureHandler(http.server.BaseHTTPRequestHandler):
    """Routes for the transfer tests; every request path is recorded by the server."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.server.hosts.append(self.headers.get("Host"))  # type: ignore[attr-defined]
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            self._reply(404, b"not found")
        else:
            route(self)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._reply(302, b"", {"Location": location})

    def _chunked(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 512):
            part = body[start : start + 512]
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _close_delimited(self, body: bytes) -> None:
        # No length at all: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _truncated(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[:100])
        self.close_connection = True

    def _slow(self) -> None:
        time.sleep(1.5)
        self._reply(200, BODY)

    def log_message(self, *args: object) -> None:
        pass


ROUTES = {
    "/lecture.mp4": lambda h: h._reply(200, BODY, {"Content-Type": "video/mp4"}),
    "/redirect-ok": lambda h: h._redirect("/hop"),
    "/hop": lambda h: h._redirect("lecture.mp4?x=1"),
    "/redirect-evil": lambda h: h._redirect("/hop-evil"),
    "/hop-evil": lambda h: h._redirect(METADATA),
    "/redirect-ftp": lambda h: h._redirect("ftp://localhost/lecture.mp4"),
    "/redirect-private-name": lambda h: h._redirect("http://internal.example/lecture.mp4"),
    "/loop": lambda h: h._redirect("/loop"),
    "/missing": lambda h: h._reply(404, b"gone"),
    "/forbidden": lambda h: h._reply(403, b"no"),
    "/unavailable": lambda h: h._reply(503, b"later"),
    "/throttled": lambda h: h._reply(429, b"slow down"),
    "/chunked": lambda h: h._chunked(BODY),
    "/no-length": lambda h: h._close_delimited(BODY),
    "/truncated": lambda h: h._truncated(),
    "/slow": lambda h: h._slow(),
}


def _serve(server: http.server.ThreadingHTTPServer) -> Iterator[http.server.ThreadingHTTPServer]:
    server.paths = []  # type: ignore[attr-defined]
    server.hosts = []  # type: ignore[attr-defined]
    # Closing joins every handler thread: a handler still writing (``/slow`` after the client
    # gave up) finishes inside this test, not on a later test's stderr.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), LectureHandler))


@dataclass
class Client:
    """Everything a transfer test needs: base URL, the fakes and a policy."""

    base: str
    resolver: FakeResolver
    connections: RecordingConnections
    policy: FetchPolicy

    def fetch(self, path: str, dest: Path) -> Path:
        return fetch(
            self.base + path,
            dest,
            self.policy,
            resolver=self.resolver,
            connection_factory=self.connections,
        )


@pytest.fixture
def client(server: http.server.ThreadingHTTPServer, tmp_path: Path) -> Client:
    port = server.server_address[1]
    resolver = FakeResolver(
        {
            "localhost": ["127.0.0.1"],
            "169.254.169.254": ["169.254.169.254"],
            "internal.example": ["93.184.216.34", "192.168.0.10"],
        }
    )
    policy = FetchPolicy(
        local_roots=(),
        allowed_hosts=frozenset({"localhost"}),
        max_bytes=len(BODY),
        max_redirects=3,
        timeout_s=5.0,
    )
    return Client(f"http://localhost:{port}", resolver, RecordingConnections(), policy)


def test_download_from_allowed_local_server(client: Client, server, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    assert client.fetch("/lecture.mp4", dest) == dest
    assert dest.read_bytes() == BODY
    port = server.server_address[1]
    assert client.connections.calls == [("http", "localhost", port, ("127.0.0.1",))]
    assert server.hosts == [f"localhost:{port}"]
    assert [p.name for p in tmp_path.iterdir()] == ["source.mp4"]


def test_redirect_chain_is_followed(client: Client, server, tmp_path: Path) -> None:
    dest = tmp_path / "source.mp4"
    client.fetch("/redirect-ok", dest)
    assert dest.read_bytes() == BODY
    assert server.paths == ["/redirect-ok", "/hop", "/lecture.mp4?x=1"]
    assert len(client.connections.calls) == 3


def test_redirect_to_metadata_is_refused_before_connecting(
    client: Client, server, tmp_path: Path
) -> None:
    dest = tmp_path / "source.mp4"
    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254"):
        client.fetch("/redirect-evil", dest)
    assert server.paths == ["/redirect-evil", "/hop-evil"]
    assert client.resolver.calls == ["localhost", "localhost", "169.254.169.254"]
    assert [call[1] for call in client.connections.calls] == ["localhost", "localhost"]
    _assert_nothing_left(dest)


def test_redirect_to_a_name_with_a_private_address_is_refused(
    client: Client, tmp_path: Path
) -> None:
    with pytest.raises(FetchRefused, match=r"192\.168\.0\.10"):
        client.fetch("/redirect-private-name", tmp_path / "out")
    assert all(call[1] == "localhost" for call in client.connections.calls)


def test_redirect_to_other_scheme_is_refused(client: Client, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="ftp"):
        client.fetch("/redirect-ftp", tmp_path / "out")
    assert len(client.connections.calls) == 1


def test_redirect_budget_is_enforced(client: Client, server, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        client.fetch("/loop", tmp_path / "out")
    assert len(server.paths) == 4


def test_content_length_over_limit_is_refused(client: Client, tmp_path: Path) -> None:
    client.policy = FetchPolicy(
        local_roots=(), allowed_hosts=frozenset({"localhost"}), max_bytes=len(BODY) - 1
    )
    dest = tmp_path / "out"
    with pytest.raises(FetchRefused, match="Content-Length"):
        client.fetch("/lecture.mp4", dest)
    _assert_nothing_left(dest)


@pytest.mark.parametrize("path", ["/chunked", "/no-length"])
def test_streamed_body_over_limit_is_refused(client: Client, path: str, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    assert client.fetch(path, dest).read_bytes() == BODY  # exactly at the limit is fine
    dest.unlink()
    client.policy = FetchPolicy(
        local_roots=(), allowed_hosts=frozenset({"localhost"}), max_bytes=1000
    )
    with pytest.raises(FetchRefused, match="exceeds 1000 bytes"):
        client.fetch(path, dest)
    _assert_nothing_left(dest)


@pytest.mark.parametrize("path, status", [("/missing", 404), ("/forbidden", 403)])
def test_client_errors_are_permanent(client: Client, path: str, status: int, tmp_path) -> None:
    with pytest.raises(FetchRefused) as info:
        client.fetch(path, tmp_path / "out")
    assert info.value.status == status
    _assert_nothing_left(tmp_path / "out")


@pytest.mark.parametrize("path, status", [("/unavailable", 503), ("/throttled", 429)])
def test_server_errors_are_transient(client: Client, path: str, status: int, tmp_path) -> None:
    with pytest.raises(FetchFailed) as info:
        client.fetch(path, tmp_path / "out")
    assert info.value.status == status
    _assert_nothing_left(tmp_path / "out")


def test_truncated_body_is_transient_and_leaves_nothing(client: Client, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(FetchFailed, match="interrupted"):
        client.fetch("/truncated", dest)
    _assert_nothing_left(dest)


def test_failed_refetch_keeps_the_previous_complete_file(client: Client, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.write_bytes(b"previous complete file")
    with pytest.raises(FetchFailed):
        client.fetch("/truncated", dest)
    assert dest.read_bytes() == b"previous complete file"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_timeout_is_transient(client: Client, tmp_path: Path) -> None:
    client.policy = FetchPolicy(
        local_roots=(), allowed_hosts=frozenset({"localhost"}), max_bytes=10**6, timeout_s=0.3
    )
    with pytest.raises(FetchFailed):
        client.fetch("/slow", tmp_path / "out")
    _assert_nothing_left(tmp_path / "out")


def test_refused_connection_is_transient(client: Client, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client.base = f"http://localhost:{closed_port}"
    with pytest.raises(FetchFailed, match="connection failed"):
        client.fetch("/lecture.mp4", tmp_path / "out")


def test_connection_goes_to_the_vetted_ip_not_a_fresh_lookup(server) -> None:
    # The hostname does not resolve anywhere; only the pinned IP can reach the server,
    # so a later DNS answer (rebinding) has nothing to act on.
    port = server.server_address[1]
    conn = open_connection("http", "media.invalid", port, ips=["127.0.0.1"], timeout=5)
    conn.request("GET", "/lecture.mp4")
    assert conn.getresponse().read() == BODY
    conn.close()
    assert server.hosts == [f"media.invalid:{port}"]


# ---- https: certificate and SNI checked for the hostname, connection to the IP ------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for media.example (its SAN), made in this process."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "media.example")])
    now = datetime.datetime.now(datetime.UTC)
    signed = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.example")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(signed.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[http.server.ThreadingHTTPServer]:
    cert, key = certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LectureHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.sni = []  # type: ignore[attr-defined]
    context.sni_callback = lambda sock, name, ctx: server.sni.append(name)  # type: ignore
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


def _tls_client(tls_server, trust: Path | None, tmp_path: Path) -> Client:
    resolver = FakeResolver({"media.example": ["127.0.0.1"]})
    context = ssl.create_default_context(cafile=str(trust)) if trust else None
    policy = FetchPolicy(
        local_roots=(), allowed_hosts=frozenset({"media.example"}), max_bytes=10**6
    )
    base = f"https://media.example:{tls_server.server_address[1]}"
    return Client(base, resolver, RecordingConnections(ssl_context=context), policy)


def test_https_sends_sni_and_verifies_the_hostname(
    tls_server, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    client = _tls_client(tls_server, certificate[0], tmp_path)
    dest = client.fetch("/lecture.mp4", tmp_path / "out")
    assert dest.read_bytes() == BODY
    assert tls_server.sni == ["media.example"]
    assert tls_server.hosts == [f"media.example:{tls_server.server_address[1]}"]


def test_https_certificate_for_another_name_is_refused(
    tls_server, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    client = _tls_client(tls_server, certificate[0], tmp_path)
    client.resolver.table["other.example"] = ["127.0.0.1"]
    client.policy = FetchPolicy(
        local_roots=(), allowed_hosts=frozenset({"other.example"}), max_bytes=10**6
    )
    client.base = client.base.replace("media.example", "other.example")
    with pytest.raises(FetchRefused, match="certificate"):
        client.fetch("/lecture.mp4", tmp_path / "out")


def test_https_with_an_untrusted_certificate_is_refused(tls_server, tmp_path: Path) -> None:
    client = _tls_client(tls_server, None, tmp_path)
    with pytest.raises(FetchRefused, match="certificate"):
        client.fetch("/lecture.mp4", tmp_path / "out")
    _assert_nothing_left(tmp_path / "out")


# ---- helpers ------------------------------------------------------------------------------


def _policy(root: Path, *, max_bytes: int = 10**6) -> FetchPolicy:
    return FetchPolicy(local_roots=(root,), max_bytes=max_bytes)


def _assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert not list(dest.parent.glob(f".{dest.name}.*"))
