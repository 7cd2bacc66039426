"""Long-running local processes on the real clock: ``coursegen serve`` (its stack, in-process)
runs both transports of the A/B rollout, and operator commands from the CLI (another store
object on the same SQLite file, as another process would open) reach a running ``serve`` and
a running ``run``: their reconciler loop picks up what the CLI recorded."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.ops.run import run_course
from bridge.runtime.embedded import embedded, live_processes
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.dashboard.stack import Stack, local_stack
from handlers.registry import StepContext, StepFn, StepResult
from statemachine.pipeline import default_pipeline
from statemachine.timefmt import iso, parse_iso

TOKEN = "live-operator-token"
BASE = {
    "COURSEGEN_STORE": "sqlite",
    "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL",
    "COURSEGEN_OPERATOR_TOKEN": TOKEN,
}
CLI_ENV = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL", "USER": "ann"}
WAIT_S = 30.0


def until(check: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
    """Wait (bounded) for ``check()``; fail naming ``what`` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


class Gate:
    """Synthetic steps (one shard per fan-out) where ``step`` waits for ``open()`` (bounded)
    and raises the errors queued in ``failures`` first."""

    def __init__(self, step: str = "transcribe") -> None:
        self.step = step
        self.entered = threading.Event()
        self._open = threading.Event()
        self.failures: list[Exception] = []
        self.calls = 0

    def open(self) -> None:
        self._open.set()

    def registry(self) -> Mapping[str, StepFn]:
        steps = dict(noop_steps(default_pipeline(), shards=1))
        base = steps[self.step]

        def gated(ctx: StepContext) -> StepResult:
            self.calls += 1
            self.entered.set()
            if not self._open.wait(WAIT_S):
                raise TimeoutError("the test never opened the gate")
            if self.failures:
                raise self.failures.pop(0)
            return base(ctx)

        steps[self.step] = gated
        return steps


def cli(data: Path, *args: str, code: int = 0) -> str:
    """``coursegen ARGS --data DATA`` in-process: its own store object on the same file."""
    result = CliRunner().invoke(main, [*args, "--data", str(data)], env=CLI_ENV)
    assert result.exit_code == code, result.output
    return result.output


def head(data: Path, course_id: str) -> dict[str, Any]:
    out = json.loads(cli(data, "status", course_id, "--json"))
    return {"status": out["status"], "tasks": {t["task"]: t["status"] for t in out["tasks"]}}


def push(stack: Stack, request: Mapping[str, Any], message_id: str) -> str:
    """Publish a course request through the stack's Pub/Sub push route; its course id."""
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(request).encode()).decode(),
            "messageId": message_id,
            "attributes": {},
        },
        "subscription": "projects/p/subscriptions/course-requests-push",
    }
    answer = stack.app.test_client().post(
        "/pubsub/course-requests", json=envelope, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return str(answer.get_json()["courseId"])


# -- the A/B rollout under serve ------------------------------------------------------------
ROLLOUT = [  # docs/operating.md "A/B rollout and switchover", one `terraform apply` each
    ("start", "10", "true"),
    ("widen", "50", "true"),
    ("roll back", "0", "true"),
    ("switch over", "100", "false"),
]


def test_the_ab_rollout_walkthrough_completes_every_course_under_serve(tmp_path: Path) -> None:
    courses: dict[str, str] = {}  # course id -> stage
    steps = noop_steps(default_pipeline(), shards=1)
    for number, (stage, percent, legacy) in enumerate(ROLLOUT):
        cfg = Settings.from_env(
            {
                **BASE,
                "COURSEGEN_ROLLOUT_PERCENT": percent,
                "COURSEGEN_LEGACY_TRIGGER_ENABLED": legacy,
            }
        )
        stack = local_stack(tmp_path, settings=cfg, steps=steps, workers=2)
        try:
            for i in range(3):
                request = {"videoUri": "gs://lectures/v.mp4", "title": f"{stage} {i}"}
                courses[push(stack, request, f"m-{number}-{i}")] = stage
            store = stack.runtime.store

            def settled(store: Any = store) -> bool:
                return all(store.head(c).status == "completed" for c in courses)

            until(settled, what=f"every course completes at stage {stage!r}")
            if legacy == "false":
                assert stack.runtime.legacy is None  # nothing is written for the legacy transport
            else:
                assert stack.runtime.legacy is not None
                legacy_here = [c for c, s in courses.items() if s == stage]
                legacy_here = [c for c in legacy_here if store.head(c).variant == "legacy"]
                assert stack.runtime.legacy.created >= len(legacy_here)
        finally:
            stack.close()
    variants = {c: h.variant for c, h in _heads(tmp_path, courses).items()}
    assert set(variants.values()) == {"legacy", "cloudtasks"}
    assert {v for c, v in variants.items() if courses[c] == "roll back"} == {"legacy"}
    assert {v for c, v in variants.items() if courses[c] == "switch over"} == {"cloudtasks"}


def _heads(data: Path, ids: Mapping[str, str]) -> dict[str, Any]:
    rt = embedded(data, settings=Settings.from_env(BASE))
    try:
        return {c: rt.store.head(c) for c in ids}
    finally:
        rt.close()


# -- operator commands reach a running serve -------------------------------------------------
@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Stack, Gate]]:
    gate = Gate()
    stack = local_stack(
        tmp_path, settings=Settings.from_env(BASE), steps=gate.registry(), workers=2
    )
    yield stack, gate
    gate.open()
    stack.close()


def test_pause_resume_and_cancel_from_the_cli_reach_a_running_serve(
    tmp_path: Path, serving: tuple[Stack, Gate]
) -> None:
    stack, gate = serving
    course = push(stack, {"videoUri": "gs://lectures/v.mp4", "title": "Rivers"}, "m-1")
    until(gate.entered.is_set, what="transcribe starts")
    assert live_processes(tmp_path), "serve leaves a marker the CLI reads"
    out = cli(tmp_path, "pause", course, "--reason", "check the audio")
    assert "now paused" in out
    gate.open()
    until(lambda: head(tmp_path, course)["tasks"].get("transcribe") == "succeeded")
    time.sleep(1.5)  # a reconciler round or two: nothing is scheduled while paused
    view = head(tmp_path, course)
    assert view["status"] == "paused" and "generate_structure" not in view["tasks"]

    out = cli(tmp_path, "resume", course, "--reason", "audio is fine")
    assert "now running" in out and "schedules what is due within a second" in out
    until(lambda: head(tmp_path, course)["status"] == "completed", what="resumed course ends")

    second = push(stack, {"videoUri": "gs://lectures/v.mp4", "title": "Glaciers"}, "m-2")
    until(lambda: "transcribe" in head(tmp_path, second)["tasks"])
    cli(tmp_path, "cancel", second, "--reason", "duplicate")
    until(lambda: stack.runtime.pending() == 0, what="queued tasks drain as no-ops")
    assert head(tmp_path, second)["status"] == "cancelled"
    assert "finalize" not in head(tmp_path, second)["tasks"]


def test_redrive_from_the_cli_reaches_a_running_serve(
    tmp_path: Path, serving: tuple[Stack, Gate]
) -> None:
    stack, gate = serving
    gate.failures.append(ValueError("the model said nonsense"))  # a permanent failure
    gate.open()
    course = push(stack, {"videoUri": "gs://lectures/v.mp4", "title": "Rivers"}, "m-1")
    until(lambda: head(tmp_path, course)["status"] == "failed", what="the course fails")

    out = cli(tmp_path, "redrive", course, "--reason", "model fixed", "--step", "transcribe")
    assert "redriven:" in out and "transcribe" in out
    until(lambda: head(tmp_path, course)["status"] == "completed", what="redriven course ends")
    assert gate.calls == 2


# -- operator commands reach a running `coursegen run` ---------------------------------------
class Running:
    """``run_course`` (what ``coursegen run`` does) on a thread, with gated steps."""

    def __init__(self, data: Path, gate: Gate, **options: Any) -> None:
        video = data / "lecture.mp4"
        video.write_bytes(b"not really a video: the steps are synthetic")
        self.rt = embedded(data, settings=Settings.from_env(BASE), steps=gate.registry())
        self.summary: dict[str, Any] = {}
        self.thread = threading.Thread(
            target=lambda: self.summary.update(
                run_course(self.rt, video, title="Rivers", out=data / "out", workers=2, **options)
            ),
            daemon=True,
        )
        self.thread.start()

    def course(self) -> str:
        until(lambda: bool(self.rt.store.courses()), what="the run requests its course")
        return self.rt.store.courses()[0].course_id

    def result(self) -> dict[str, Any]:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the run did not end"
        return self.summary


def test_pause_redrive_and_resume_from_the_cli_reach_a_running_run(tmp_path: Path) -> None:
    gate = Gate()
    run = Running(tmp_path, gate)
    course = run.course()
    until(gate.entered.is_set, what="transcribe starts")
    cli(tmp_path, "pause", course, "--reason", "provider outage")
    gate.failures.append(ValueError("provider outage"))
    gate.open()
    until(lambda: head(tmp_path, course)["tasks"].get("transcribe") == "failed")
    until(lambda: run.rt.pending() == 0, what="nothing left in flight that could advance it")
    assert head(tmp_path, course)["status"] == "paused"  # paused: the failure waits

    cli(tmp_path, "redrive", course, "--reason", "outage over")
    cli(tmp_path, "resume", course, "--reason", "outage over")
    summary = run.result()
    assert summary["status"] == "completed" and "stopped" not in summary
    assert gate.calls == 2


def test_cancel_from_the_cli_ends_a_running_run(tmp_path: Path) -> None:
    gate = Gate()
    run = Running(tmp_path, gate)
    course = run.course()
    until(gate.entered.is_set, what="transcribe starts")
    cli(tmp_path, "cancel", course, "--reason", "wrong video")
    gate.open()
    assert run.result()["status"] == "cancelled"


def test_a_run_stops_waiting_on_a_course_paused_past_its_paused_timeout(tmp_path: Path) -> None:
    gate = Gate()
    run = Running(tmp_path, gate, paused_timeout_s=1.0)
    course = run.course()
    until(gate.entered.is_set, what="transcribe starts")
    cli(tmp_path, "pause", course, "--reason", "look at it tomorrow")
    gate.open()
    summary = run.result()
    assert summary["status"] == "paused"
    assert summary["stopped"] == "paused for more than 1 s"


def test_resume_at_a_time_from_the_cli_holds_the_work_in_a_running_serve(tmp_path: Path) -> None:
    gate = Gate("prepare_video")
    stack = local_stack(tmp_path, settings=Settings.from_env(BASE), steps=gate.registry())
    try:
        _resume_at(tmp_path, stack, gate)
    finally:
        gate.open()
        stack.close()


def _resume_at(tmp_path: Path, stack: Stack, gate: Gate) -> None:
    course = push(stack, {"videoUri": "gs://lectures/v.mp4", "title": "Night"}, "m-1")
    until(gate.entered.is_set, what="prepare_video starts")
    cli(tmp_path, "pause", course, "--reason", "run it later")
    gate.open()
    until(lambda: stack.runtime.pending() == 0, what="prepare_video finishes")
    at = time.time() + 2.0
    when = iso(at)
    out = cli(tmp_path, "resume", course, "--reason", "now is later", "--at", when)
    assert f"held until {when}" in out
    until(lambda: head(tmp_path, course)["status"] == "completed", what="the held course ends")
    events = stack.runtime.store.load(course)
    held = [e for e in events if e.type == "TaskScheduled" and e.data.get("not_before")]
    # what prepare_video unblocks: the frames and the audio chunks (one for this video)
    assert {e.data["task"] for e in held} == {"extract_frames", "transcribe_chunk#0"}
    first_start = min(
        parse_iso(e.occurred_at)
        for e in events
        if e.type == "TaskStarted" and e.data["task"] in ("extract_frames", "transcribe_chunk#0")
    )
    assert first_start >= at - 0.001
