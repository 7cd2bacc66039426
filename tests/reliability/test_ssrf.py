"""SSRF through the whole chain: hostile video URIs and redirects end in one permanent failure."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from handlers.media.fetch import FetchPolicy, FetchRefused, fetch
from statemachine.store.memory import MemoryStore


@pytest.fixture(autouse=True)
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tripwire: these tests decide; none may open a socket to anywhere."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (tmp_path / "secret.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)
    os.symlink(tmp_path / "secret.mp4", uploads / "link.mp4")
    settings = Settings.from_env({"COURSEGEN_STORE": "memory", "COURSEGEN_TASK_SECRET": "s"})
    rt = embedded(
        tmp_path / "data",
        settings=settings,
        clock=VirtualClock(),
        store=MemoryStore(),
        options={"local_roots": [str(uploads)]},
    )
    yield rt
    rt.close()


# Literal addresses only: resolving them is parsing, never a DNS query.
HOSTILE_SOURCES = [
    "https://169.254.169.254/computeMetadata/v1/instance/",
    "http://127.0.0.1:8080/lecture.mp4",
    "http://[::1]/lecture.mp4",
    "http://10.0.0.1/lecture.mp4",
    "http://192.168.0.1/lecture.mp4",
    "http://[::ffff:169.254.169.254]/lecture.mp4",
    "http://2130706433/lecture.mp4",  # 127.0.0.1 in decimal
    "file:///etc/passwd",
    "/etc/passwd",
    "file://{root}/../secret.mp4",
    "{root}/link.mp4",  # a symlink inside the root pointing out of it
]


@pytest.mark.parametrize("uri", HOSTILE_SOURCES)
def test_a_hostile_source_fails_the_course_once_and_for_all(
    runtime: Runtime, tmp_path: Path, uri: str
) -> None:
    uri = uri.format(root=tmp_path / "uploads")
    # The embedded runtime takes local paths, as `coursegen run` does; only the fetcher stands
    # between the request and the target.
    course = runtime.bridge.ingest({"videoUri": uri, "title": "SSRF"}, message_id="ssrf")
    runtime.dispatcher.run_until_idle()

    head = runtime.store.head(course)
    assert head is not None and head.status == "failed"
    events = list(runtime.store.load(course))
    types = [e.type for e in events]
    assert types.count("TaskStarted") == 1  # permanent: no retry, no storm
    failed = next(e for e in events if e.type == "TaskFailed")
    assert failed.data["retryable"] is False and "refused" in failed.data["message"]
    assert types.count("TaskScheduled") == 1  # nothing after prepare_video ran


# -- redirects, decided hop by hop with a fake resolver and fake connections ----------------
@dataclass
class FakeResponse:
    status: int
    location: str | None = None
    length: int | None = 0

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.location if name == "Location" else default

    def read(self, amt: int | None = None) -> bytes:
        return b""


@dataclass
class FakeConnections:
    """Every hop answers with a redirect to ``target``; records the hops it was asked for."""

    target: str
    hops: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def __call__(self, scheme: str, host: str, port: int, *, ips: list[str], timeout: float):
        self.hops.append((scheme, host, tuple(ips)))
        target = self.target

        class Conn:
            def request(self, *args: Any, **kwargs: Any) -> None: ...

            def getresponse(self) -> FakeResponse:
                return FakeResponse(302, target)

            def close(self) -> None: ...

        return Conn()


NAMES = {
    "cdn.example": ["93.184.216.34"],
    "internal.example": ["10.0.0.7"],
    "rebind.example": ["93.184.216.35", "127.0.0.1"],  # one public, one loopback
    "metadata.google.internal": ["169.254.169.254"],
}


def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    """getaddrinfo without the network: literal addresses (legacy IPv4 forms too) and NAMES."""
    try:
        ips = [socket.inet_ntoa(socket.inet_aton(host))] if ":" not in host else [host]
    except OSError:
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        ips = NAMES[host]
    family = {True: socket.AF_INET6, False: socket.AF_INET}
    return [(family[":" in ip], socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]


REDIRECT_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.0.0.1:6379/",
    "http://[::1]/",
    "http://internal.example/admin",
    "http://rebind.example/lecture.mp4",
    "http://0x7f000001/",
    "http://017700000001/",
    "file:///etc/passwd",
    "gopher://cdn.example/",
    "https://user:pw@cdn.example/a.mp4",
]


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_a_redirect_to_a_hostile_target_is_refused_before_the_second_hop(
    tmp_path: Path, target: str
) -> None:
    connections = FakeConnections(target)
    policy = FetchPolicy(local_roots=(tmp_path,), max_bytes=10**6)
    with pytest.raises(FetchRefused):
        fetch(
            "https://cdn.example/lecture.mp4",
            tmp_path / "out.mp4",
            policy,
            resolver=resolver,
            connection_factory=connections,
        )
    assert connections.hops == [("https", "cdn.example", ("93.184.216.34",))]
    assert not (tmp_path / "out.mp4").exists()
