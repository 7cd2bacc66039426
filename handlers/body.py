"""One request-body guard for every app (the bridge function, the task function, ``serve``).

A body over the cap is refused whole, whether it declares its length or arrives chunked: the
guard reads at most one byte past the cap, so a chunked body is never cut silently and the
memory a request can take is bounded. Flask's own ``MAX_CONTENT_LENGTH`` truncates a chunked
body at the limit without an error, so apps set it to ``flask_limit(cap)`` (one byte more)
and read through ``read_body``.
"""

from __future__ import annotations

from typing import IO, Protocol

MAX_BODY_BYTES = 1024 * 1024  # a Cloud Tasks task and a Pub/Sub push are at most ~1 MB


class BodyTooLarge(ValueError):
    """The body is over the cap (HTTP 413)."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"bodies are at most {cap} bytes")
        self.cap = cap


class Incoming(Protocol):
    """What the guard reads of a request (Flask's and functions-framework's offer it)."""

    @property
    def content_length(self) -> int | None: ...

    @property
    def stream(self) -> IO[bytes]: ...


def read_body(request: Incoming, cap: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, or ``BodyTooLarge`` if it has more than ``cap`` bytes."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise BodyTooLarge(cap)
    body = request.stream.read(cap + 1)
    if len(body) > cap:
        raise BodyTooLarge(cap)
    return body


def flask_limit(cap: int = MAX_BODY_BYTES) -> int:
    """The ``MAX_CONTENT_LENGTH`` that lets ``read_body`` see a chunked body's excess byte."""
    return cap + 1
