"""The OpenAPI 3.1 document of ``coursegen serve``: every route of the one local server."""

from __future__ import annotations

from functools import cache
from typing import Any

from bridge import diagrams
from bridge.ops.operations import OPERATIONS
from bridge.web.dashboard.data import COURSE_ID, FRAME_NAME, MAX_ROWS, OUTPUT_FILES
from bridge.web.openapi_schemas import components, ref
from statemachine.lifecycle import COURSE

VERSION = "0.1.0"
Schema = dict[str, Any]


PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}


def _problems(*codes: int) -> dict[str, Any]:
    titles = {
        400: "Bad request",
        401: "Unauthorized",
        404: "Not found",
        409: "Not allowed in the course's state",
        413: "Payload too large (checked before the body is read)",
        422: "Well-formed but invalid",
        503: "Transient failure: try again later",
    }
    return {str(c): {"description": titles[c], "content": PROBLEM} for c in codes}


def _json(schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(content_type: str, description: str = "OK") -> dict[str, Any]:
    schema: Schema = {"type": "string"}
    if content_type.startswith("image/jpeg"):
        schema = {"type": "string", "contentMediaType": content_type}
    return {"description": description, "content": {content_type: {"schema": schema}}}


COURSE_PARAM = {
    "name": "course_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": COURSE_ID.pattern},
}


def _get(summary: str, responses: dict[str, Any], *params: Schema, tag: str) -> Schema:
    return {
        "get": {
            "summary": summary,
            "tags": [tag],
            "operationId": _op_id("get", summary),
            "parameters": list(params),
            "responses": responses,
        }
    }


def _op_id(method: str, summary: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in summary.lower()).split()
    return method + "".join(w.capitalize() for w in words[:6])


def _paths() -> dict[str, Any]:
    query = [
        {
            "name": "status",
            "in": "query",
            "schema": {"type": "string", "enum": list(COURSE.states)},
        },
        {
            "name": "variant",
            "in": "query",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        },
        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS, "default": 100},
        },
    ]
    after = {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}
    return {
        "/": _get("Course list page", {"200": _body("text/html")}, tag="pages"),
        "/courses/{course_id}": _get(
            "Course page", {"200": _body("text/html"), **_problems(404)}, COURSE_PARAM, tag="pages"
        ),
        "/courses/{course_id}/outputs/{name}": _get(
            "A course output file",
            {
                "200": {
                    "description": "The file (served sandboxed)",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {},
                    },
                },
                **_problems(404),
            },
            COURSE_PARAM,
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(OUTPUT_FILES)},
            },
            tag="outputs",
        ),
        "/courses/{course_id}/outputs/media/frames/{frame}": _get(
            "A key frame image",
            {
                "200": {"description": "The image", "content": {"image/jpeg": {}, "image/png": {}}},
                **_problems(404),
            },
            COURSE_PARAM,
            {
                "name": "frame",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": FRAME_NAME.pattern},
            },
            tag="outputs",
        ),
        "/diagrams/{name}.svg": _get(
            "A diagram as SVG",
            {"200": _body("image/svg+xml"), **_problems(404)},
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(diagrams.NAMES)},
            },
            {
                "name": "course",
                "in": "query",
                "description": "highlight this course's states",
                "schema": {"type": "string", "pattern": COURSE_ID.pattern},
            },
            {
                "name": "inline",
                "in": "query",
                "description": "1: without the embedded stylesheet",
                "schema": {"type": "string", "enum": ["0", "1"]},
            },
            tag="pages",
        ),
        "/static/{filename}": _get(
            "Dashboard stylesheet and script",
            {
                "200": {
                    "description": "The file",
                    "content": {"text/css": {}, "text/javascript": {}},
                },
                **_problems(404),
            },
            {
                "name": "filename",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": ["dashboard.css", "dashboard.js"]},
            },
            tag="pages",
        ),
        "/api/courses": _get(
            "List courses",
            {"200": _json(ref("CourseList")), **_problems(400)},
            *query,
            tag="api",
        ),
        "/api/courses/{course_id}": _get(
            "One course with its tasks",
            {"200": _json(ref("Course")), **_problems(404)},
            COURSE_PARAM,
            tag="api",
        ),
        "/api/courses/{course_id}/events": _get(
            "The event log and its verification",
            {"200": _json(ref("EventLog")), **_problems(400, 404)},
            COURSE_PARAM,
            after,
            tag="api",
        ),
        "/api/courses/{course_id}/gantt": _get(
            "Task attempts as Gantt bars",
            {"200": _json(ref("Gantt")), **_problems(404)},
            COURSE_PARAM,
            tag="api",
        ),
        "/openapi.json": _get("This document", {"200": _json({"type": "object"})}, tag="api"),
        **_runtime_paths(),
    }


def _post(
    summary: str,
    tag: str,
    request: Schema,
    ok: Schema,
    codes: tuple[int, ...],
    security: str,
    *params: Schema,
) -> Schema:
    return {
        "post": {
            "summary": summary,
            "tags": [tag],
            "operationId": _op_id("post", summary),
            "security": [{security: []}],
            "parameters": list(params),
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {"200": _json(ok, _OK.get(tag, "OK")), **_problems(*codes)},
        }
    }


_OK = {
    "runtime": "Done; a Pub/Sub message that can never be accepted is also 200: dead-lettered",
    "operator": "Done: recorded as one event with the operator as actor",
}


def _runtime_paths() -> dict[str, Any]:
    operation = {
        "name": "operation",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(OPERATIONS)},
    }
    operator = {
        "name": "X-Coursegen-Operator",
        "in": "header",
        "description": "who acts (recorded as actor operator:NAME)",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9@._+-]{0,127}$"},
    }
    return {
        "/tasks": _post(
            "Run a task (the Cloud Tasks target)",
            "runtime",
            ref("TaskPayload"),
            ref("TaskAnswer"),
            (400, 401, 404, 413, 422, 503),
            "taskToken",
        ),
        "/pubsub/course-requests": _post(
            "Course request push",
            "runtime",
            ref("PushEnvelope"),
            ref("PushAnswer"),
            (400, 401, 413, 503),
            "operatorToken",
        ),
        "/pubsub/course-events": _post(
            "Course event push",
            "runtime",
            ref("PushEnvelope"),
            ref("PushAnswer"),
            (400, 401, 413, 503),
            "operatorToken",
        ),
        "/reconcile": _post(
            "Advance quiet courses",
            "runtime",
            {},
            {"type": "object"},
            (401, 413, 503),
            "operatorToken",
        ),
        "/operator/courses/{course_id}/{operation}": _post(
            "Operator action on a course",
            "operator",
            ref("OperationRequest"),
            ref("OperationResult"),
            (400, 401, 404, 409, 413, 422, 503),
            "operatorToken",
            COURSE_PARAM,
            operation,
            operator,
        ),
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "coursegen serve",
            "version": VERSION,
            "description": (
                "One local server: the dashboard pages and JSON API, course outputs, "
                "diagrams, the task endpoint, the bridge's Pub/Sub push routes and the "
                "operator actions. Errors are RFC 9457 problem documents; every request "
                "body is capped at 1 MiB (413 before it is read)."
            ),
        },
        "tags": [{"name": t} for t in ("pages", "api", "outputs", "runtime", "operator")],
        "paths": _paths(),
        "components": components(),
    }
