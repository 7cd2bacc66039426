"""Schemathesis against the live ``coursegen serve``: no 5xx, every answer as documented."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.dashboard.stack import in_background, local_stack
from statemachine.pipeline import default_pipeline

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')"
)
hypothesis = pytest.importorskip("hypothesis")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "schemathesis-operator-token"
BUDGET_S = 60.0  # the whole run; each operation gets an equal share
POSITIVE, NEGATIVE = 30, 20  # examples per operation and mode, at most


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The server on a data folder holding one completed course with outputs."""
    data = tmp_path_factory.mktemp("serve")
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite", "COURSEGEN_OPERATOR_TOKEN": TOKEN})
    steps = noop_steps(default_pipeline())
    rt = embedded(data, steps=steps, settings=settings)
    try:
        course_id = rt.bridge.ingest(
            {"videoUri": "https://example.com/v.mp4", "title": "Fuzzed"},
            message_id=f"st-{uuid.uuid4()}",
        )
        rt.dispatcher.start(2)
        deadline = time.monotonic() + 30
        while rt.store.head(course_id).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        rt.artifacts.put_bytes(course_id, "course.html", b"<!doctype html><p>course</p>")
        rt.artifacts.put_bytes(course_id, "course.json", b'{"title": "Fuzzed"}')
        rt.artifacts.put_bytes(course_id, "media/frames/f0001.jpg", b"\xff\xd8\xff\xd9")
    finally:
        rt.close()
    stack = local_stack(data, settings=settings, steps=steps, workers=1)
    server = in_background(stack.app)
    try:
        yield server.url, course_id
    finally:
        server.stop()
        stack.close()


def _checks() -> list[Any]:
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]


def _run(operation: Any, strategy: Any, examples: int, url: str, headers: dict[str, str]) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    calls = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=_checks(), timeout=10)
        calls.append(1)

    check()
    return len(calls)


def test_every_operation_answers_as_documented(served: tuple[str, str]) -> None:
    from schemathesis import GenerationMode

    url, course_id = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    share = BUDGET_S / len(operations)
    calls: dict[str, int] = {}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for op in operations:
        started = time.monotonic()
        fixed = {"course_id": course_id} if "{course_id}" in op.path else None
        runs = [
            (GenerationMode.POSITIVE, None, auth),
            (GenerationMode.POSITIVE, fixed, auth),
            (GenerationMode.NEGATIVE, None, auth),
            (GenerationMode.POSITIVE, fixed, {}),  # no credentials at all
        ]
        for mode, path_parameters, headers in runs:
            if time.monotonic() - started > share:
                break
            strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            examples = POSITIVE if mode == GenerationMode.POSITIVE else NEGATIVE
            try:
                n = _run(op, strategy, examples, url, headers)
            except hypothesis.errors.Unsatisfiable:
                n = 0  # nothing negative to say about this operation (no inputs to break)
            calls[op.label] = calls.get(op.label, 0) + n
    assert all(calls.get(op.label, 0) > 0 for op in operations), calls
