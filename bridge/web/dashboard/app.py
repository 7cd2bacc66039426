"""The dashboard's Flask app: pages, JSON API, outputs, OpenAPI, and the runtime's routes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from handlers.body import MAX_BODY_BYTES, BodyTooLarge, flask_limit, read_body

log = logging.getLogger("coursegen.dashboard")

BRIDGE_PREFIXES = ("/pubsub/", "/reconcile", "/operator/")


@dataclass
class Backend:
    """What the app serves from: the event store and artifacts folder; with ``endpoint`` it
    serves ``POST /tasks``; with ``bridge_app`` the bridge's push and operator routes."""

    store: Any
    artifacts_root: Path
    endpoint: Any = None
    bridge_app: Flask | None = None


def create_app(backend: Backend) -> Flask:
    from bridge.web.dashboard import api, pages
    from bridge.web.openapi import document

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = flask_limit(MAX_BODY_BYTES)
    app.url_map.merge_slashes = False  # "//" is a 404, never a redirect
    app.extensions["coursegen"] = backend

    @app.before_request
    def cap_body() -> Response | None:
        # Refuse an oversized body before anything reads or parses it.
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return problem(413, "Payload too large", f"bodies are at most {MAX_BODY_BYTES}")
        return None

    pages.register(app, backend)
    api.register(app, backend)
    if backend.endpoint is not None:
        app.add_url_rule("/tasks", "tasks", _tasks_view(backend), methods=["POST"])
    if backend.bridge_app is not None:
        _merge_bridge_routes(app, backend.bridge_app)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(json.dumps(document(), indent=1), 200, mimetype="application/json")

    _error_handlers(app)
    return app


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(json.dumps(body), status, mimetype="application/problem+json")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status, mimetype="application/json")


def _tasks_view(backend: Backend) -> Any:
    def tasks() -> Response:
        try:
            body = read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge as err:
            return problem(413, "Payload too large", str(err))
        answer = backend.endpoint.handle(dict(request.headers), body, request.url)
        mimetype = answer.headers.get("Content-Type", "application/json")
        return Response(json.dumps(answer.body), answer.status, mimetype=mimetype)

    return tasks


def _merge_bridge_routes(app: Flask, bridge_app: Flask) -> None:
    """The bridge's own view functions under their own paths: one server, one URL map."""
    for rule in bridge_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        app.add_url_rule(
            rule.rule,
            endpoint=f"bridge.{rule.endpoint}",
            view_func=bridge_app.view_functions[rule.endpoint],
            methods=methods,
        )


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        code = err.code or 400
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
            code, err.name
        )
        detail = {
            404: f"no route {request.path}",
            405: f"{request.method} {request.path}",
            413: f"bodies are at most {MAX_BODY_BYTES}",
        }.get(code, err.description or err.name)
        response = problem(code, title, detail)
        if code == 405 and err.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def failed(err: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        if request.path.startswith(BRIDGE_PREFIXES):
            # As the bridge answers alone: transient, so Pub/Sub or Scheduler tries again.
            return problem(503, "Try again later", f"{type(err).__name__}: {err}"[:500])
        return problem(500, "Internal error", type(err).__name__)
