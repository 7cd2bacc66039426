"""Cloud Functions entry points (functions-framework): the bridge, the task runner, Pub/Sub events.

The decorators only register; the runtime is built once per process, on first use, from
``Settings.from_env()`` by ``bridge.runtime.cloud.cloud_runtime``. ``use_runtime`` puts a
runtime built elsewhere in its place (a test's, an embedding process's); ``reset`` forgets it.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import functions_framework
from flask import Response

log = logging.getLogger("coursegen.main")

_lock = threading.Lock()
_built: dict[str, Any] = {}


def runtime() -> Any:
    """The process's CloudRuntime (built on first use)."""
    with _lock:
        if "runtime" not in _built:
            from bridge.runtime.cloud import cloud_runtime
            from bridge.settings import Settings

            _built["runtime"] = cloud_runtime(Settings.from_env())
        return _built["runtime"]


def use_runtime(rt: Any) -> None:
    """Serve the entry points from ``rt`` from now on, instead of building one from the
    environment; what was made from the previous runtime is dropped. The caller owns ``rt``."""
    with _lock:
        _built.clear()
        _built["runtime"] = rt


def reset() -> None:
    """Forget the runtime and what was made from it: the next call builds them anew from
    ``Settings.from_env()``, as in a fresh process. Nothing is closed."""
    with _lock:
        _built.clear()


def _bridge_app() -> Any:
    with _lock:
        if "app" not in _built:
            from bridge.web.bridge_app import create_bridge_app

            _built["app"] = create_bridge_app(runtime)
        return _built["app"]


@functions_framework.http
def bridge(request: Any) -> Any:
    """HTTP: Pub/Sub push (/pubsub/course-requests, /pubsub/course-events) and /reconcile."""
    app = _bridge_app()
    with app.request_context(request.environ):
        return app.full_dispatch_request()


@functions_framework.http
def run_task(request: Any) -> Any:
    """HTTP: the task endpoint Cloud Tasks calls (COURSEGEN_STEP restricts it to one step)."""
    from handlers.body import BodyTooLarge, read_body
    from handlers.endpoint import MAX_BODY_BYTES
    from handlers.outcomes import problem

    try:
        body = read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge as err:
        answer = problem(413, "Payload too large", f"task {err}")
    else:
        answer = runtime().endpoint.handle(dict(request.headers), body, request.url)
    return Response(
        json.dumps(answer.body),
        answer.status,
        headers=dict(answer.headers),
        mimetype=answer.headers.get("Content-Type", "application/json"),
    )


@functions_framework.cloud_event
def ingest_course_request(cloud_event: Any) -> None:
    """Pub/Sub CloudEvent on course-requests: ingest, or dead-letter a malformed message."""
    from bridge.web.bridge_app import ingest_envelope

    _settle("course request", ingest_envelope(runtime(), _envelope(cloud_event)))


@functions_framework.cloud_event
def on_course_event(cloud_event: Any) -> None:
    """Pub/Sub CloudEvent on course-events: advance the course it names."""
    from bridge.web.bridge_app import advance_envelope

    _settle("course event", advance_envelope(runtime(), _envelope(cloud_event)))


@functions_framework.cloud_event
def legacy_step_created(cloud_event: Any) -> None:
    """Eventarc ``google.cloud.firestore.document.v1.created`` on ``legacy_steps/{stepId}``:
    run the step the new document names through the task endpoint's logic. A retryable
    failure raises (Eventarc delivers the event again); anything else is acknowledged."""
    from bridge.dispatch.firestore_trigger import document_fields, step_runner

    try:
        document = document_fields(cloud_event.data)
    except ValueError as err:
        log.error("legacy step event %s ignored: %s", _event_id(cloud_event), err)
        return
    rt = runtime()
    with _lock:
        run = _built.get("legacy_run")
        if run is None:
            run = _built["legacy_run"] = step_runner(rt.endpoint)
    answer = run(document)
    if answer.status >= 500:
        raise RuntimeError(f"legacy step {document.get('name')}: {answer.body.get('detail')}")
    log.info("legacy step %s: %s", document.get("name"), dict(answer.body))


def _event_id(cloud_event: Any) -> Any:
    get = getattr(cloud_event, "get", None)
    return get("id") if get is not None else None


def _envelope(cloud_event: Any) -> dict[str, Any]:
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    message = data.get("message")
    return {**data, "message": message if isinstance(message, dict) else {}}


def _settle(what: str, outcome: tuple[int, dict[str, Any]]) -> None:
    status, body = outcome
    if status >= 500:  # raising makes Eventarc deliver the event again
        raise RuntimeError(f"{what} not processed ({status}): {body.get('detail')}")
    log.info("%s: %s", what, body)
