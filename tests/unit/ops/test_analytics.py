"""Analytics: one JSON line per task created, started, succeeded, failed and exhausted, in the
shape Cloud Logging reads and Terraform's log-based metrics count."""

from __future__ import annotations

import json

from handlers import analytics
from handlers.registry import TransientStepError

from .conftest import Ops

KINDS = ("task_created", "task_started", "task_succeeded", "task_failed", "task_exhausted")


def test_every_task_lifecycle_line_carries_its_labels(ops: Ops, analytics_lines) -> None:
    ops.steps.fail("transcribe", *[TransientStepError("asr down")] * 10)
    course = ops.ingest("m1")
    ops.run()
    assert ops.status(course) == "failed"
    lines = [r for r in analytics_lines.records if r["course_id"] == course]
    by_kind = {kind: [r for r in lines if r["event"] == kind] for kind in KINDS}
    assert all(by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    for kind, records in by_kind.items():
        for r in records:
            labels = r["logging.googleapis.com/labels"]
            assert labels["course_id"] == course
            assert labels["step"] == r["step"]
            assert labels["variant"] == r["variant"] == "cloudtasks"
            assert r["severity"] in ("INFO", "WARNING", "ERROR")
            assert r["message"].startswith(f"{kind} {course}")
            if kind != "task_created":  # an attempt exists only once a delivery starts
                assert labels["attempt"] == str(r["attempt"])
    assert {r["step"] for r in by_kind["task_failed"]} == {"transcribe"}
    assert by_kind["task_failed"][0]["severity"] == "WARNING"
    assert by_kind["task_exhausted"][0]["severity"] == "ERROR"
    ended = [r for r in lines if r["event"] == "course_failed"]
    assert [r["severity"] for r in ended] == ["ERROR"]  # the course's end, once
    # Terraform's metrics read jsonPayload.event, step, variant and duration_ms.
    for r in by_kind["task_succeeded"] + by_kind["task_failed"]:
        assert isinstance(r["duration_ms"], int)
    failed_attempts = [r["attempt"] for r in by_kind["task_failed"]]
    assert failed_attempts == list(range(1, len(failed_attempts) + 1))
    assert by_kind["task_exhausted"][0]["attempt"] == failed_attempts[-1]


def test_ingest_logs_course_requested_with_the_course_id(ops: Ops, analytics_lines) -> None:
    course = ops.ingest("m1")
    requested = [r for r in analytics_lines.records if r["event"] == "course_requested"]
    assert [(r["course_id"], r["variant"]) for r in requested] == [(course, "cloudtasks")]
    ops.ingest("m1")  # a redelivery is not a second request
    assert len([r for r in analytics_lines.records if r["event"] == "course_requested"]) == 1


def test_a_trace_is_linked_in_the_format_cloud_logging_reads() -> None:
    record = analytics.emit(
        "task_started", course_id="c1", step="transcribe", attempt=2, trace="abc", project="p1"
    )
    assert record["logging.googleapis.com/trace"] == "projects/p1/traces/abc"
    assert json.loads(json.dumps(record)) == record


def test_the_project_of_a_trace_defaults_to_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p2")
    record = analytics.emit("task_started", course_id="c1", trace="abc")
    assert record["logging.googleapis.com/trace"] == "projects/p2/traces/abc"
