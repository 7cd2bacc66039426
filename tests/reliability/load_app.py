"""WSGI app for the load test: the task endpoint with no-op steps on SQLite, built from env."""

# gunicorn -b 127.0.0.1:8099 'tests.reliability.load_app:create_app()' with COURSEGEN_LOAD_DATA
# (a folder holding events.db) and COURSEGEN_TASK_SECRET set. Routes: POST /tasks (a Cloud
# Tasks delivery), GET /status/<course_id> (the course head), GET /healthz. Each answer carries
# X-Handle-Ms: the server-side time of the endpoint alone (auth, validation, idempotency,
# TaskStarted and TaskSucceeded appends, the no-op step).

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from handlers.auth import HmacVerifier
from handlers.endpoint import MAX_BODY_BYTES, TaskEndpoint
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_STATUS = re.compile(r"^/status/([A-Za-z0-9][A-Za-z0-9_-]{0,127})$")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def create_app() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    from bridge.tooling.synthetic import noop_steps

    data = Path(os.environ["COURSEGEN_LOAD_DATA"])
    secret = os.environ["COURSEGEN_TASK_SECRET"].encode()
    synchronous = os.environ.get("COURSEGEN_SQLITE_SYNCHRONOUS", "FULL")
    store = SqliteStore(data / "events.db", synchronous=synchronous)
    pipeline = default_pipeline()
    endpoint = TaskEndpoint(
        store=store,
        steps=noop_steps(pipeline),
        pipeline=pipeline,
        verify=HmacVerifier(secret, time.time),
        notify=lambda course_id, version: None,  # in the cloud: a Pub/Sub publish, not timed
        services=None,
    )

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        t0 = time.perf_counter()
        if method == "POST" and path == "/tasks":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(min(length, MAX_BODY_BYTES + 1))
            headers = {
                k[5:].replace("_", "-").title(): v
                for k, v in environ.items()
                if k.startswith("HTTP_")
            }
            answer = endpoint.handle(headers, body, "http://127.0.0.1/tasks")
            status, doc = answer.status, dict(answer.body)
        elif method == "GET" and (match := _STATUS.match(path)):
            head = store.head(match.group(1))
            status = 200 if head else 404
            doc = {"courseId": match.group(1), "status": head.status if head else None}
            if head:
                doc["version"] = head.version
        elif method == "GET" and path == "/healthz":
            status, doc = 200, {"status": "ok", "pid": os.getpid()}
        else:
            status, doc = 404, {"status": 404, "title": "Not found"}
        payload = json.dumps(doc).encode()
        took = f"{(time.perf_counter() - t0) * 1000:.3f}"
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Handle-Ms", took),
            ],
        )
        return [payload]

    return app
