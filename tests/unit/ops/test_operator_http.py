"""The bridge's /operator/ routes: authenticated (bearer token locally, the app's verifier in the
cloud), one event per operation, RFC 9457 problem details on every refusal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridge.web.bridge_app import create_bridge_app
from handlers.auth import Unauthorized, allow_all, bearer

from .conftest import Ops, settings

TOKEN = "s3cret-operator-token"


def app_for(ops: Ops, *, token: str = TOKEN, verify=allow_all):
    rt = SimpleNamespace(
        bridge=ops.rt.bridge,
        verify=verify,
        settings=settings(COURSEGEN_OPERATOR_TOKEN=token),
        dead_letter=lambda *a: None,
        quiet_s=300.0,
    )
    return create_bridge_app(lambda: rt).test_client()


def post(client, path: str, body=None, *, token: str | None = TOKEN, who: str = "alice"):
    headers = {"X-Coursegen-Operator": who}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, json=body, headers=headers)


def test_operations_over_http_are_recorded_with_the_operator(ops: Ops) -> None:
    client = app_for(ops)
    course = ops.ingest("m1")
    answer = post(client, f"/operator/courses/{course}/pause", {"reason": "outage"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "paused"
    answer = post(client, f"/operator/courses/{course}/resume", {"reason": "over"})
    assert answer.get_json()["status"] == "running"
    ops.run()
    assert ops.status(course) == "completed"
    actors = [(e.type, e.actor) for e in ops.store.load(course) if e.actor.startswith("operator")]
    assert actors == [("CoursePaused", "operator:alice"), ("CourseResumed", "operator:alice")]


@pytest.mark.parametrize(
    ("path", "body", "token", "status", "title"),
    [
        ("/operator/courses/{c}/cancel", {"reason": "r"}, None, 401, "Unauthorized"),
        ("/operator/courses/{c}/cancel", {"reason": "r"}, "wrong", 401, "Unauthorized"),
        ("/operator/courses/nobody/cancel", {"reason": "r"}, TOKEN, 404, "Unknown course"),
        ("/operator/courses/{c}/explode", {"reason": "r"}, TOKEN, 404, "Not found"),
        ("/operator/courses/{c}/cancel", {}, TOKEN, 422, "Invalid operation"),
        ("/operator/courses/{c}/cancel", {"reason": ""}, TOKEN, 422, "Invalid operation"),
        ("/operator/courses/{c}/cancel", {"reason": 5}, TOKEN, 422, "Invalid operation"),
        ("/operator/courses/{c}/resume", {"reason": "r"}, TOKEN, 409, "Not allowed in this state"),
        ("/operator/courses/{c}/cancel", ["r"], TOKEN, 400, "Malformed JSON"),
    ],
)
def test_refusals_are_problem_documents(ops: Ops, path, body, token, status, title) -> None:
    client = app_for(ops)
    course = ops.ingest("m1")
    version = ops.store.head(course).version
    answer = post(client, path.format(c=course), body, token=token)
    assert answer.status_code == status
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert (problem["status"], problem["title"]) == (status, title)
    assert ops.store.head(course).version == version  # nothing written


def test_an_illegal_operation_answers_409_with_the_state(ops: Ops) -> None:
    client = app_for(ops)
    course = ops.ingest("m1")
    ops.run()
    answer = post(client, f"/operator/courses/{course}/cancel", {"reason": "late"})
    assert answer.status_code == 409
    problem = answer.get_json()
    assert problem["state"]["status"] == "completed"
    assert "it is completed" in problem["detail"]


def test_redrive_over_http_takes_a_step(ops: Ops) -> None:
    from handlers.registry import PermanentStepError

    client = app_for(ops)
    course = ops.ingest("m1")
    ops.steps.fail("transcribe", PermanentStepError("bad audio"))
    ops.run()
    body = {"reason": "fixed", "step": "transcribe"}
    answer = post(client, f"/operator/courses/{course}/redrive", body)
    assert answer.status_code == 200, answer.get_json()
    assert "transcribe" in answer.get_json()["tasks"]
    ops.run()
    assert ops.status(course) == "completed"


def test_without_a_token_the_apps_verifier_names_the_operator(ops: Ops) -> None:
    def oidc_like(headers, body, url):
        if bearer(headers) != "id-token-of-bob":
            raise Unauthorized("ID token rejected")
        return "bob@example.com"

    client = app_for(ops, token="", verify=oidc_like)
    course = ops.ingest("m1")
    refused = post(client, f"/operator/courses/{course}/pause", {"reason": "r"}, token="forged")
    assert refused.status_code == 401
    answer = post(
        client, f"/operator/courses/{course}/pause", {"reason": "r"}, token="id-token-of-bob"
    )
    assert answer.status_code == 200
    assert ops.store.load(course)[-1].actor == "operator:bob@example.com"


def test_operator_routes_refuse_an_app_that_accepts_everyone(ops: Ops) -> None:
    client = app_for(ops, token="", verify=allow_all)
    course = ops.ingest("m1")
    answer = post(client, f"/operator/courses/{course}/cancel", {"reason": "r"})
    assert answer.status_code == 401
    assert ops.status(course) != "cancelled"
