"""The one SSRF policy: which video sources may be fetched, judged at intake and again by
the fetcher (``handlers.media.fetch``) once a host resolves.

Intake (``hostile_uri``) refuses what is wrong on its face: a scheme other than gs:// or
https://, credentials, control characters, internal names, numeric private addresses in any
spelling, a gs:// URI without an object. The fetcher resolves the host and refuses if any of
its addresses is not public (``check_address``), and connects to the address it checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from handlers.artifacts import SourceRefused, split_source_uri

Resolver = Callable[..., list[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

VIDEO_SCHEMES = ("gs", "https")  # what a cloud request may name
# NAT64 prefix: an IPv6 address here reaches the IPv4 address in its last 32 bits.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"[0-9][0-9a-fx.]*", re.IGNORECASE)
_BLOCKED_HOSTS = {"localhost", "metadata", "metadata.google.internal", "metadata.goog"}


class FetchRefused(Exception):
    """Permanent: retrying the same request cannot succeed."""

    def __init__(self, reason: str, *, uri: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason}: {uri}" if uri else reason)
        self.reason = reason
        self.uri = uri
        self.status = status


class FetchFailed(Exception):
    """Transient: connection errors, timeouts, 5xx; a retry may succeed."""

    def __init__(self, reason: str, *, uri: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason}: {uri}" if uri else reason)
        self.reason = reason
        self.uri = uri
        self.status = status


def is_public_address(ip: IPAddress) -> bool:
    """True when the address is globally routable unicast, looking through IPv6 wrappers."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
    # is_global alone lets multicast through (224/4 is "global"), hence the explicit checks.
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(
    host: str,
    port: int,
    *,
    resolver: Resolver = socket.getaddrinfo,
    allowed_hosts: frozenset[str] = frozenset(),
) -> list[str]:
    """Resolve host and return its addresses; refuse if any of them is not public.

    Every address must pass, not just the first: the connection may use any of them.
    A host named in allowed_hosts is exempt (e.g. a local test server).
    """
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        if err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
            raise FetchRefused("host does not resolve", uri=host) from err
        raise FetchFailed(f"name resolution failed ({err})", uri=host) from err
    ips = _unique(str(info[4][0]).split("%", 1)[0] for info in infos)
    if not ips:
        raise FetchRefused("host resolves to no address", uri=host)
    if _normalise_host(host) in {_normalise_host(h) for h in allowed_hosts}:
        return ips
    for ip in ips:
        if not is_public_address(ipaddress.ip_address(ip)):
            raise FetchRefused(f"address {ip} is not public", uri=host)
    return ips


def _normalise_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _unique(items: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(items))


def gs_uri_problem(uri: str) -> str | None:
    """Why a gs:// URI cannot name a source video (no object, an unsafe name...), or None."""
    try:
        split_source_uri(uri)
    except SourceRefused as err:
        return err.reason
    return None


def hostile_uri(uri: str) -> str | None:
    """Why a video URI must not be fetched in the cloud, or None (the fetcher checks again)."""
    if len(uri) > 2048 or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        return "too long, or contains whitespace or control characters"
    parts = urlsplit(uri)
    if parts.scheme not in VIDEO_SCHEMES:
        return f"scheme {parts.scheme or 'none'!r} is not one of {', '.join(VIDEO_SCHEMES)}"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URI"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "no host or bucket"
    if parts.scheme == "gs":
        return gs_uri_problem(uri)  # the fetcher's own rule: a bucket and a safe object name
    if parts.scheme == "https":
        internal = (".internal", ".local", ".localhost")
        if host in _BLOCKED_HOSTS or host.endswith(internal):
            return f"internal host {host!r}"
        ip = literal_ip(host)
        if ip is not None and not is_public_address(ip):
            return f"non-public address {host}"
    return None


def literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a numeric host names, including the legacy IPv4 forms that resolvers
    accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``: all 127.0.0.1)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # parses; never resolves
        except OSError:
            return None
    return None
