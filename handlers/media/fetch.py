"""SSRF-safe fetching of a source video (local path, http(s) or gs://) into the work dir.

http(s) and local paths are fetched here; a gs:// source is read through the artifact
port's ``fetch_source`` (Cloud Storage in the cloud, a mapped folder on a laptop).
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

from handlers.artifacts import SourceReader, SourceRefused, SourceUnavailable
from handlers.media.ssrf import FetchFailed as FetchFailed  # raised by fetch: re-exported
from handlers.media.ssrf import FetchRefused as FetchRefused
from handlers.media.ssrf import Resolver, check_address, gs_uri_problem

HTTP_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 408 and 429 say "not now", not "never": Cloud Tasks should retry them like a 5xx.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
CHUNK = 1 << 16


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchPolicy:
    """Where a source may come from and how much of it we accept."""

    local_roots: tuple[Path, ...]
    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int
    max_redirects: int = 5
    timeout_s: float = 30.0


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to already-vetted IPs while the Host header keeps the hostname."""

    def __init__(self, host: str, port: int, *, ips: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ips = ips

    def connect(self) -> None:
        self.sock = _connect_first(self._ips, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As _PinnedHTTPConnection, with SNI and certificate checks for the hostname."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ips: list[str],
        timeout: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        # A default context verifies the chain and the hostname; callers may narrow the CAs.
        self._tls = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._ips = ips

    def connect(self) -> None:
        raw = _connect_first(self._ips, self.port, self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _connect_first(ips: list[str], port: int, timeout: float | None) -> socket.socket:
    last: OSError | None = None
    for ip in ips:
        try:
            return socket.create_connection((ip, port), timeout)
        except OSError as err:
            last = err
    raise last or OSError(errno.EHOSTUNREACH, "no address to connect to")


ConnectionFactory = Callable[..., http.client.HTTPConnection]


def open_connection(
    scheme: str,
    host: str,
    port: int,
    *,
    ips: list[str],
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> http.client.HTTPConnection:
    """Default connection factory: pinned to the vetted IPs, never re-resolving the host."""
    if scheme == "https":
        return _PinnedHTTPSConnection(host, port, ips=ips, timeout=timeout, context=ssl_context)
    return _PinnedHTTPConnection(host, port, ips=ips, timeout=timeout)


def fetch(
    uri: str,
    dest: Path,
    policy: FetchPolicy,
    *,
    resolver: Resolver = socket.getaddrinfo,
    sources: SourceReader | None = None,
    connection_factory: ConnectionFactory = open_connection,
) -> Path:
    """Copy the source named by uri to dest and return dest (gs:// through ``sources``).

    Raises FetchRefused for anything retrying cannot fix and FetchFailed otherwise. dest
    appears only complete: the bytes go to a temporary file beside it that is renamed last.
    """
    scheme = urlsplit(uri).scheme.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if scheme in ("", "file"):
        return _fetch_local(uri, dest, policy)
    if scheme == "gs":
        return _fetch_gcs(uri, dest, policy, sources)
    if scheme in HTTP_SCHEMES:
        return _fetch_http(uri, dest, policy, resolver, connection_factory)
    raise FetchRefused(f"scheme {scheme!r} is not allowed", uri=uri)


def local_source(uri: str, policy: FetchPolicy) -> Path:
    """The real path of a local or file:// source, refused unless under a local root."""
    parts = urlsplit(uri)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchRefused("file:// URI names a remote host", uri=uri)
        raw = unquote(parts.path)
    else:
        raw = uri
    try:
        # strict: a dangling symlink must not slip past the root check.
        real = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise FetchRefused("local source not found", uri=uri) from err
    roots = [root.resolve() for root in policy.local_roots]
    if not any(real.is_relative_to(root) for root in roots):
        raise FetchRefused("local source is outside the allowed roots", uri=uri)
    return real


def _fetch_local(uri: str, dest: Path, policy: FetchPolicy) -> Path:
    real = local_source(uri, policy)
    try:
        # O_NOFOLLOW: a symlink swapped in after the check is not followed;
        # O_NONBLOCK: a FIFO under a root must not hang the worker before the type check.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise FetchRefused("local source cannot be opened", uri=uri) from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FetchRefused("local source is not a regular file", uri=uri)
    with os.fdopen(fd, "rb") as src, _atomic_dest(dest) as out:
        _copy_limited(iter(lambda: src.read(CHUNK), b""), out, policy.max_bytes, uri)
    return dest


def _fetch_gcs(uri: str, dest: Path, policy: FetchPolicy, sources: SourceReader | None) -> Path:
    problem = gs_uri_problem(uri)
    if problem:
        raise FetchRefused(problem, uri=uri)
    if sources is None:
        raise FetchRefused("gs:// sources are not configured here", uri=uri)
    try:
        return sources.fetch_source(uri, dest, max_bytes=policy.max_bytes)
    except SourceRefused as err:
        raise FetchRefused(err.reason, uri=uri) from err
    except SourceUnavailable as err:
        raise FetchFailed(err.reason, uri=uri) from err


def _fetch_http(
    uri: str,
    dest: Path,
    policy: FetchPolicy,
    resolver: Resolver,
    connection_factory: ConnectionFactory,
) -> Path:
    current = uri
    for _hop in range(policy.max_redirects + 1):
        conn, response = _request(current, policy, resolver, connection_factory)
        try:
            if response.status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise FetchRefused("redirect without Location", uri=current)
                current = urljoin(current, location)
                continue
            _raise_for_status(response.status, current)
            _check_length(response, policy.max_bytes, current)
            with _atomic_dest(dest) as out:
                _copy_limited(_body_chunks(response, current), out, policy.max_bytes, current)
            return dest
        finally:
            conn.close()
    raise FetchRefused(f"more than {policy.max_redirects} redirects", uri=uri)


def _request(
    uri: str, policy: FetchPolicy, resolver: Resolver, connection_factory: ConnectionFactory
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Vet one hop (scheme, host, every address) and only then connect and send GET."""
    scheme, host, port, target = _split_http(uri)
    ips = check_address(host, port, resolver=resolver, allowed_hosts=policy.allowed_hosts)
    conn = connection_factory(scheme, host, port, ips=ips, timeout=policy.timeout_s)
    try:
        conn.request("GET", target, headers={"User-Agent": "coursegen-fetch/1"})
        return conn, conn.getresponse()
    except http.client.InvalidURL as err:
        conn.close()
        raise FetchRefused("invalid URL", uri=uri) from err
    except ssl.SSLCertVerificationError as err:
        conn.close()
        raise FetchRefused(f"certificate rejected ({err.verify_message})", uri=uri) from err
    except (OSError, http.client.HTTPException) as err:
        conn.close()
        raise FetchFailed(f"connection failed ({err!r})", uri=uri) from err


def _split_http(uri: str) -> tuple[str, str, int, str]:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in HTTP_SCHEMES:
        raise FetchRefused(f"scheme {scheme!r} is not allowed", uri=uri)
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("credentials in the URL are not accepted", uri=uri)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as err:
        raise FetchRefused("invalid port", uri=uri) from err
    if not parts.hostname:
        raise FetchRefused("URL has no host", uri=uri)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return scheme, parts.hostname, port, target


def _raise_for_status(status: int, uri: str) -> None:
    if status == 200:
        return
    if status >= 500 or status in TRANSIENT_CLIENT_STATUSES:
        raise FetchFailed(f"HTTP {status}", uri=uri, status=status)
    raise FetchRefused(f"HTTP {status}", uri=uri, status=status)


def _check_length(response: http.client.HTTPResponse, max_bytes: int, uri: str) -> None:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"Content-Length {declared} exceeds {max_bytes} bytes", uri=uri)


def _body_chunks(response: http.client.HTTPResponse, uri: str) -> Iterator[bytes]:
    # read(amt) ends quietly at EOF even when fewer bytes than Content-Length arrived,
    # so a cut-off transfer is detected here by counting.
    declared = response.length
    received = 0
    try:
        while chunk := response.read(CHUNK):
            received += len(chunk)
            yield chunk
    except (OSError, http.client.HTTPException) as err:
        raise FetchFailed(f"transfer interrupted ({err!r})", uri=uri) from err
    if declared is not None and received < declared:
        raise FetchFailed(f"transfer interrupted after {received} of {declared} bytes", uri=uri)


def _copy_limited(chunks: Iterator[bytes], out: IO[bytes], max_bytes: int, uri: str) -> None:
    # The declared length may lie or be absent; the count of bytes actually read decides.
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise FetchRefused(f"source exceeds {max_bytes} bytes", uri=uri)
        out.write(chunk)


@contextmanager
def _atomic_dest(dest: Path) -> Iterator[IO[bytes]]:
    """A temp file beside dest, renamed onto dest on success and deleted on any failure."""
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - its life spans the with-block
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    try:
        with tmp:
            yield tmp
        os.replace(tmp.name, dest)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
