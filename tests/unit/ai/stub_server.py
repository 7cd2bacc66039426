"""A local stub of the Gemini and OpenAI HTTP APIs, so the real SDKs can be tested offline.

It listens on 127.0.0.1 only and speaks:

* Gemini: ``POST /{version}/models/{model}:generateContent``; the Files API resumable upload
  (``POST /upload/{version}/files`` with ``X-Goog-Upload-Protocol: resumable`` answers an
  ``X-Goog-Upload-URL``; ``POST`` to that URL with ``upload, finalize`` answers the file in
  state PROCESSING); ``GET /{version}/files/{id}`` (PROCESSING for ``processing_polls`` polls,
  then ACTIVE); ``DELETE /{version}/files/{id}``. Any version prefix (v1, v1beta) is accepted.
* OpenAI: ``POST /v1/chat/completions`` and multipart ``POST /v1/audio/transcriptions``; a
  chat request may ask for JSON as OpenAI does (``json_schema``) or as llama-cpp-python's
  server does (``json_object`` with a ``schema``), the local provider's way.

Each test scripts it: ``stub.queue(route, *responses)`` queues answers (status, body,
headers; see ``stub_answers``) per route, and ``stub.seen(route)`` lists the requests
received. With ``auto=True`` a route with nothing queued answers with a valid canned
document for the requested schema (built from the inputs in the prompt), so a whole
pipeline can run against it::

    stub = start_stub(auto=True)
    env = {"COURSEGEN_GEMINI_BASE_URL": stub.gemini_base_url, "GEMINI_API_KEY": "test-key",
           "COURSEGEN_OPENAI_BASE_URL": stub.openai_base_url, "OPENAI_API_KEY": "test-key"}
    ...
    stub.stop()

or from a shell: ``python -m tests.unit.ai.stub_server --port 8765`` (always auto).
"""

from __future__ import annotations

import argparse
import collections
import email.parser
import email.policy
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.unit.ai.stub_answers import (
    Canned,
    camel_keys,
    canned_document,
    gemini_answer,
    gemini_blocked,
    gemini_error,
    openai_answer,
    openai_error,
    openai_transcription,
    prompt_inputs,
    schema_kind,
    voiced_regions,
)

__all__ = [
    "CHAT",
    "FILE_DELETE",
    "FILE_GET",
    "GENERATE",
    "ROUTES",
    "TRANSCRIBE",
    "UPLOAD",
    "UPLOAD_START",
    "Canned",
    "Seen",
    "StubServer",
    "camel_keys",
    "canned_document",
    "gemini_answer",
    "gemini_blocked",
    "gemini_error",
    "multipart_fields",
    "openai_answer",
    "openai_error",
    "openai_transcription",
    "start_stub",
    "voiced_regions",
]

GENERATE = "gemini_generate"
UPLOAD_START = "gemini_upload_start"
UPLOAD = "gemini_upload"
FILE_GET = "gemini_file_get"
FILE_DELETE = "gemini_file_delete"
CHAT = "openai_chat"
TRANSCRIBE = "openai_transcribe"
ROUTES = (GENERATE, UPLOAD_START, UPLOAD, FILE_GET, FILE_DELETE, CHAT, TRANSCRIBE)

_PATHS = (
    ("POST", re.compile(r"^/v1\w*/models/([^/:]+):generateContent$"), GENERATE),
    ("POST", re.compile(r"^/upload/v1\w*/files$"), UPLOAD_START),
    ("POST", re.compile(r"^/upload-session/(\w+)$"), UPLOAD),
    ("GET", re.compile(r"^/v1\w*/files/(\w+)$"), FILE_GET),
    ("DELETE", re.compile(r"^/v1\w*/files/(\w+)$"), FILE_DELETE),
    ("POST", re.compile(r"^/v1/chat/completions$"), CHAT),
    ("POST", re.compile(r"^/v1/audio/transcriptions$"), TRANSCRIBE),
)


@dataclass(frozen=True)
class Seen:
    """One request the stub received."""

    route: str
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# --- the server ------------------------------------------------------------------------------


class StubServer:
    """Gemini + OpenAI HTTP stub on 127.0.0.1 in a background thread."""

    def __init__(self, *, auto: bool = False, port: int = 0, processing_polls: int = 1) -> None:
        self.auto = auto
        self.processing_polls = processing_polls
        self._queues: dict[str, collections.deque[Canned]] = {
            r: collections.deque() for r in ROUTES
        }
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._sessions: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}  # id -> {meta, data, polls}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def gemini_base_url(self) -> str:
        return self.url

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> StubServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="ai-stub",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting
    def queue(self, route: str, *answers: Canned) -> None:
        if route not in ROUTES:
            raise KeyError(f"unknown route {route!r}: one of {ROUTES}")
        with self._lock:
            self._queues[route].extend(answers)

    def seen(self, route: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if route is None or s.route == route]

    def reset(self) -> None:
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._seen.clear()

    # --- answering
    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Canned:
        route, match = _route(method, path)
        if route is None or match is None:
            return Canned(404, {"error": {"code": 404, "message": f"stub: no route {path}"}})
        with self._lock:
            self._seen.append(Seen(route, method, path, headers, body))
            scripted = self._queues[route].popleft() if self._queues[route] else None
        if scripted is not None:
            return scripted
        if route == UPLOAD_START:
            return self._upload_start(headers, body)
        if route == UPLOAD:
            return self._upload(match.group(1), headers, body)
        if route == FILE_GET:
            return self._file_get(match.group(1))
        if route == FILE_DELETE:
            with self._lock:
                self.files.pop(match.group(1), None)
            return Canned(body={})
        if not self.auto:
            return Canned(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": f"stub: nothing queued for {route}",
                        "status": "FAILED_PRECONDITION",
                    }
                },
            )
        if route == GENERATE:
            return self._auto_generate(camel_keys(json.loads(body or b"{}")))
        if route == CHAT:
            return self._auto_chat(json.loads(body or b"{}"))
        return self._auto_transcribe(headers, body)

    def _upload_start(self, headers: Mapping[str, str], body: bytes) -> Canned:
        session = uuid.uuid4().hex[:16]
        meta = (json.loads(body or b"{}") or {}).get("file") or {}
        with self._lock:
            self._sessions[session] = {
                "mime": headers.get(
                    "x-goog-upload-header-content-type", "application/octet-stream"
                ),
                "display_name": meta.get("displayName", ""),
                "data": bytearray(),
            }
        return Canned(
            body={},
            headers={
                "X-Goog-Upload-URL": f"{self.url}/upload-session/{session}",
                "X-Goog-Upload-Status": "active",
            },
        )

    def _upload(self, session: str, headers: Mapping[str, str], body: bytes) -> Canned:
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                return Canned(404, {"error": {"code": 404, "message": "no such upload"}})
            state["data"].extend(body)
            if "finalize" not in headers.get("x-goog-upload-command", ""):
                return Canned(body={}, headers={"X-Goog-Upload-Status": "active"})
            del self._sessions[session]
            file_id = uuid.uuid4().hex[:12]
            resource = {
                "name": f"files/{file_id}",
                "displayName": state["display_name"],
                "mimeType": state["mime"],
                "sizeBytes": str(len(state["data"])),
                "uri": f"{self.url}/v1beta/files/{file_id}",
                "state": "PROCESSING",
            }
            self.files[file_id] = {"meta": resource, "data": bytes(state["data"]), "polls": 0}
        if self.processing_polls <= 0:
            resource = {**resource, "state": "ACTIVE"}
        return Canned(body={"file": resource}, headers={"X-Goog-Upload-Status": "final"})

    def _file_get(self, file_id: str) -> Canned:
        with self._lock:
            entry = self.files.get(file_id)
            if entry is None:
                return Canned(
                    404, {"error": {"code": 404, "message": "no such file", "status": "NOT_FOUND"}}
                )
            entry["polls"] += 1
            state = "ACTIVE" if entry["polls"] >= self.processing_polls else "PROCESSING"
            return Canned(body={**entry["meta"], "state": state})

    def _auto_generate(self, request: Mapping[str, Any]) -> Canned:
        config = request.get("generationConfig") or {}
        kind = schema_kind(config.get("responseJsonSchema") or config.get("responseSchema"))
        parts = [p for c in request.get("contents", [])[:1] for p in c.get("parts", [])]
        text = "\n".join(p.get("text", "") for p in parts)
        audio = None
        for p in parts:
            uri = (p.get("fileData") or {}).get("fileUri", "")
            entry = self.files.get(uri.rsplit("/", 1)[-1])
            if entry is not None:
                audio = entry["data"]
        if kind is None:
            return Canned(400, {"error": {"code": 400, "message": "stub: unknown schema"}})
        return gemini_answer(canned_document(kind, prompt_inputs(text), audio=audio))

    def _auto_chat(self, request: Mapping[str, Any]) -> Canned:
        response_format = request.get("response_format") or {}
        # OpenAI's json_schema, or llama-cpp-python's {"type": "json_object", "schema": ...}
        schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get(
            "schema"
        )
        kind = schema_kind(schema)
        user = next((m for m in request.get("messages", []) if m.get("role") == "user"), {})
        content = user.get("content")
        text = (
            content
            if isinstance(content, str)
            else "\n".join(c.get("text", "") for c in content or [] if c.get("type") == "text")
        )
        if kind is None:
            return openai_error(400, "stub: unknown schema")
        return openai_answer(canned_document(kind, prompt_inputs(text)))

    def _auto_transcribe(self, headers: Mapping[str, str], body: bytes) -> Canned:
        fields = multipart_fields(headers.get("content-type", ""), body)
        duration, regions = voiced_regions(fields.get("file", b""))
        segments = [(a, b, f"Stub sentence {i + 1}.") for i, (a, b) in enumerate(regions)]
        return openai_transcription(segments, duration=duration or 1.0)


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by field name."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + body)
    out: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            out[str(name)] = payload if isinstance(payload, bytes) else b""
    return out


def _route(method: str, path: str) -> tuple[str | None, re.Match[str] | None]:
    bare = path.split("?", 1)[0]
    for verb, pattern, route in _PATHS:
        match = pattern.match(bare)
        if verb == method and match:
            return route, match
    return None, None


def _handler_for(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(data)
                    data.extend(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            body = self._body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            canned = stub.answer(self.command, self.path, headers, body)
            if canned.delay_s:
                time.sleep(canned.delay_s)
            payload = canned.body
            if isinstance(payload, bytes):
                data, ctype = payload, "application/octet-stream"
            elif isinstance(payload, str):
                data, ctype = payload.encode(), "text/plain"
            else:
                data, ctype = (
                    json.dumps({} if payload is None else payload).encode(),
                    "application/json",
                )
            try:
                self.send_response(canned.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


def start_stub(*, auto: bool = True, port: int = 0, processing_polls: int = 1) -> StubServer:
    """A started stub; with ``auto`` every model request gets a valid canned answer."""
    return StubServer(auto=auto, port=port, processing_polls=processing_polls).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    stub = start_stub(auto=True, port=args.port)
    print(f"COURSEGEN_GEMINI_BASE_URL={stub.gemini_base_url}", flush=True)
    print(f"COURSEGEN_OPENAI_BASE_URL={stub.openai_base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stub.stop()


if __name__ == "__main__":
    main()
