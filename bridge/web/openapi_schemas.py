"""Component schemas of the ``coursegen serve`` OpenAPI document (``bridge.web.openapi``)."""

from __future__ import annotations

from typing import Any

from bridge.ops.operations import OPERATIONS
from statemachine.lifecycle import COURSE, TASK

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str | list[str], **more: Any) -> Schema:
    kinds = [kind] if isinstance(kind, str) else kind
    return {"type": [*kinds, "null"], **more}


def _obj(required: list[str], **props: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": props}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}


def components() -> dict[str, Any]:
    task_states = list(TASK.states)
    row = _obj(
        ["course_id", "status", "progress", "percent", "cost_usd"],
        course_id=STR,
        title=STR,
        status={"type": "string", "enum": [*COURSE.states, "new"]},
        variant=STR,
        done=INT,
        total=INT,
        progress=STR,
        percent={"type": "integer", "minimum": 0, "maximum": 100},
        created_at=nullable("string"),
        updated_at=nullable("string"),
        age_s=nullable("number"),
        cost_usd=NUM,
        version=INT,
    )
    task = _obj(
        ["task", "status", "attempts"],
        task=STR,
        status={"type": "string", "enum": task_states},
        attempts=INT,
        generation=INT,
        duration_ms=nullable("integer"),
        wall_s=nullable("number"),
        provider=STR,
        tokens=INT,
        cost_usd=NUM,
        error=STR,
    )
    course = _obj(
        ["course_id", "status", "version", "tasks", "steps", "highlight", "links"],
        course_id=STR,
        status=STR,
        title=STR,
        variant=nullable("string"),
        version=INT,
        pipeline_version=INT,
        failure=nullable("object"),
        outputs={"type": "object"},
        tasks={"type": "array", "items": ref("Task")},
        cost_usd=NUM,
        created_at=nullable("string"),
        updated_at=nullable("string"),
        age_s=nullable("number"),
        done=INT,
        total=INT,
        percent=INT,
        steps={"type": "object", "additionalProperties": STR},
        highlight={"type": "object", "additionalProperties": {"type": "object"}},
        badges={"type": "object"},
        links=_obj(
            ["files", "frames", "frame_count"],
            files={"type": "object"},
            frames={"type": "array", "items": STR},
            frame_count=INT,
        ),
    )
    verdict = _obj(
        ["ok", "course_id", "events", "first_bad_version", "problem"],
        ok={"type": "boolean"},
        course_id=STR,
        events=INT,
        first_bad_version=nullable("integer"),
        problem=nullable("string"),
    )
    event = _obj(
        ["time", "version", "event", "actor", "task", "attempt", "duration_ms", "detail"],
        time=STR,
        version=INT,
        event=STR,
        actor=STR,
        task=STR,
        attempt=STR,
        duration_ms=STR,
        detail=STR,
    )
    bar = _obj(
        ["task", "step", "attempt", "queued_s", "start_s", "end_s", "outcome"],
        task=STR,
        step=STR,
        attempt=INT,
        queued_s=nullable("number"),
        start_s=NUM,
        end_s=nullable("number"),
        outcome={
            "type": "string",
            "enum": ["running", "succeeded", "retrying", "failed", "exhausted", "moot", "lost"],
        },
    )
    message = {
        "type": "object",
        "properties": {
            "data": {"type": "string", "description": "base64 of the JSON message"},
            "attributes": {"type": "object", "additionalProperties": STR},
            "messageId": STR,
            "publishTime": STR,
        },
    }
    return {
        "securitySchemes": {
            "operatorToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "COURSEGEN_OPERATOR_TOKEN",
            },
            "taskToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "the dispatcher's HMAC task token, or OIDC in the cloud",
            },
        },
        "schemas": {
            "Problem": _obj(["title", "status"], type=STR, title=STR, status=INT, detail=STR),
            "CourseRow": row,
            "CourseList": _obj(
                ["courses", "count"],
                courses={"type": "array", "items": ref("CourseRow")},
                count=INT,
            ),
            "Task": task,
            "Course": course,
            "Verification": verdict,
            "Event": event,
            "EventLog": _obj(
                ["course_id", "verification", "events"],
                course_id=STR,
                verification=ref("Verification"),
                events={"type": "array", "items": ref("Event")},
            ),
            "Bar": bar,
            "Gantt": _obj(
                ["course_id", "status", "started_at", "span_s", "rows", "bars"],
                course_id=STR,
                status=STR,
                started_at=STR,
                span_s=NUM,
                rows={"type": "array", "items": STR},
                bars={"type": "array", "items": ref("Bar")},
            ),
            "TaskPayload": _plain(schemas_doc("task_payload")),
            "TaskAnswer": _obj(["status"], status=STR, task=STR, detail=STR),
            "PushEnvelope": _obj(
                ["message"], message=message, subscription=STR, deliveryAttempt=INT
            ),
            "PushAnswer": _obj(
                ["status"],
                status={"type": "string", "enum": ["accepted", "advanced", "rejected"]},
                courseId=STR,
                reason=STR,
                commands=INT,
            ),
            "OperationRequest": _obj(
                ["reason"],
                reason={"type": "string", "maxLength": 2000},
                step=nullable("string"),
                at={**nullable("string"), "description": "resume only: hold until (ISO time)"},
            ),
            "OperationResult": _obj(
                ["course_id", "operation", "actor", "version"],
                course_id=STR,
                operation={"type": "string", "enum": list(OPERATIONS)},
                actor=STR,
                reason=STR,
                version=INT,
                status=nullable("string"),
                at=STR,
            ),
        },
    }


def schemas_doc(name: str) -> Schema:
    import schemas

    return schemas.load(name)


def _plain(schema: Schema) -> Schema:
    """A package JSON Schema as an OpenAPI component (no ``$schema``/``$id`` of its own)."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
