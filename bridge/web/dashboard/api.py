"""The dashboard's JSON API: the course list, one course, its event log and its Gantt bars."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, request

from bridge.web.dashboard import data
from bridge.web.dashboard.app import Backend, json_response, problem
from statemachine.lifecycle import COURSE

VARIANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_QUERY = 200


def register(app: Flask, backend: Backend) -> None:
    store = backend.store

    @app.get("/api/courses")
    def courses() -> Response:
        args = request.args
        status = args.get("status") or None
        if status is not None and status not in COURSE.states:
            return problem(400, "Bad filter", f"status must be one of {', '.join(COURSE.states)}")
        variant = args.get("variant") or None
        if variant is not None and not VARIANT.match(variant):
            return problem(400, "Bad filter", f"variant must match {VARIANT.pattern}")
        q = args.get("q", "")
        if len(q) > MAX_QUERY:
            return problem(400, "Bad filter", f"q is at most {MAX_QUERY} characters")
        limit = _int_arg("limit", 100, 1, data.MAX_ROWS)
        if isinstance(limit, Response):
            return limit
        rows = data.course_rows(store, status=status, variant=variant, q=q, limit=limit)
        return json_response({"courses": rows, "count": len(rows)})

    @app.get("/api/courses/<course_id>")
    def course(course_id: str) -> Response:
        detail = _known(course_id) or data.course_detail(store, backend.artifacts_root, course_id)
        return detail if isinstance(detail, Response) else _found(detail, course_id)

    @app.get("/api/courses/<course_id>/events")
    def events(course_id: str) -> Response:
        after = _int_arg("after", 0, 0, 10**9)
        if isinstance(after, Response):
            return after
        log = _known(course_id) or data.event_log(store, course_id, after=after)
        return log if isinstance(log, Response) else _found(log, course_id)

    @app.get("/api/courses/<course_id>/gantt")
    def gantt(course_id: str) -> Response:
        bars = _known(course_id) or data.gantt(store, course_id)
        return bars if isinstance(bars, Response) else _found(bars, course_id)


def _known(course_id: str) -> Response | None:
    """A 404 for an id that cannot name a course (so nothing odd reaches the store)."""
    if not data.COURSE_ID.match(course_id):
        return problem(404, "Unknown course", f"course ids match {data.COURSE_ID.pattern}")
    return None


def _found(body: dict[str, Any] | None, course_id: str) -> Response:
    if body is None:
        return problem(404, "Unknown course", f"no course {course_id!r}")
    return json_response(body)


def _int_arg(name: str, default: int, low: int, high: int) -> int | Response:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not low <= int(raw) <= high:
        return problem(400, "Bad parameter", f"{name} must be an integer in [{low}, {high}]")
    return int(raw)
