"""Shadow replay: the recorded histories replay with this code; a broken change is named."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.ops.replay import read_jsonl
from bridge.ops.shadow import shadow, shadow_histories
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.commands import Command, ScheduleTask
from statemachine.decide import decide
from statemachine.envelope import Envelope, NewEvent
from statemachine.errors import TransitionNotAllowed
from statemachine.events import TaskScheduled
from statemachine.lifecycle import COURSE
from statemachine.pipeline import default_pipeline, default_pipelines
from statemachine.reducer import HANDLERS, apply
from statemachine.state import CourseState

HISTORIES = Path(__file__).resolve().parents[2] / "histories"
NAMES = sorted(p.stem for p in HISTORIES.glob("*.jsonl"))


def recorded(name: str) -> tuple[list[Envelope], dict[str, Any]]:
    with (HISTORIES / f"{name}.jsonl").open(encoding="utf-8") as f:
        events = read_jsonl(f)
    return events, json.loads((HISTORIES / f"{name}.recorded.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_every_recorded_history_replays_with_this_code(name: str) -> None:
    events, rec = recorded(name)
    assert shadow(rec["course_id"], events, head=rec["head"], digests=rec["states"]) is None


def test_the_recorded_histories_cover_every_event_type_and_course_transition() -> None:
    types: set[str] = set()
    endings: set[str] = set()
    moves: set[tuple[str, str]] = set()
    for name in NAMES:
        events, rec = recorded(name)
        types |= {e.type for e in events}
        endings.add(rec["status"])
        state = CourseState.empty(rec["course_id"])
        for env in events:
            after = apply(state, env)
            if after.status != state.status:
                moves.add((state.status, after.status))
            state = after
    assert types == set(HANDLERS)
    assert endings == {"completed", "failed", "cancelled"}
    every = {(src, dst) for (src, _), dst in COURSE.table.items() if src != "requested"}
    every |= {("new", "requested"), ("requested", "running"), ("requested", "queued")}
    # Not produced by any code path, so no run can record them: "requested -> paused, failed,
    # cancelled" (the request and its first task are one append: a course runs before anyone
    # can act on it) and "paused -> failed" (decide waits for the resume to fail a course).
    assert every - moves == {("paused", "failed")}
    # a task held for its tenant's daily AI budget, and run when the day rolled over
    held = [e for name in NAMES for e in recorded(name)[0] if e.data.get("held")]
    assert held and all(e.type == "TaskScheduled" and e.data["not_before"] for e in held)


def drop_summaries(state: CourseState, env: Envelope) -> CourseState:
    """A broken reducer change: TaskSucceeded no longer keeps the step's summary."""
    after = apply(state, env)
    if env.type != "TaskSucceeded":
        return after
    snap = after.to_snapshot()
    snap["tasks"][env.data["task"]]["summary"] = {}
    return CourseState.from_snapshot(snap)


def refuse_pause_of_a_running_course(state: CourseState, env: Envelope) -> CourseState:
    """A broken change: pausing becomes illegal once the course runs."""
    if env.type == "CoursePaused" and state.status == "running":
        raise TransitionNotAllowed(state.status, env.type, "no longer allowed")
    return apply(state, env)


def version_of(events: Sequence[Envelope], event_type: str, task: str | None = None) -> int:
    return next(
        e.version
        for e in events
        if e.type == event_type and (task is None or e.data.get("task") == task)
    )


def test_a_reducer_that_drops_summaries_is_named_where_the_state_first_differs() -> None:
    events, rec = recorded("completed")
    found = shadow(
        rec["course_id"], events, head=rec["head"], digests=rec["states"], apply=drop_summaries
    )
    assert found is not None
    # the no-op prepare_video summarises its audio chunk count (the transcribe_chunk fan-out):
    # the first loss
    first = version_of(events, "TaskSucceeded", "prepare_video")
    assert (found.kind, found.version) == ("state", first)


def test_without_recorded_states_the_commands_it_would_decide_name_the_version() -> None:
    """What a live store offers (the events and the head): decide after prepare_video's result
    no longer fans out into audio chunks, as the chunk count was in the dropped summary (with
    no chunks, it goes straight to the fan-in)."""
    events, rec = recorded("completed")
    found = shadow(rec["course_id"], events, head=rec["head"], apply=drop_summaries)
    assert found is not None
    assert found.kind == "commands"
    assert found.version == version_of(events, "TaskSucceeded", "prepare_video")
    decided = "the code decides [TaskScheduled(extract_frames), TaskScheduled(transcribe)]"
    assert decided in found.detail and "TaskScheduled(transcribe_chunk#0)" in found.detail


def test_a_reducer_that_refuses_an_old_event_is_named_at_that_event() -> None:
    events, rec = recorded("paused")
    found = shadow(rec["course_id"], events, apply=refuse_pause_of_a_running_course)
    assert found is not None
    assert (found.kind, found.version) == ("refused", version_of(events, "CoursePaused"))


def test_a_broken_decide_is_named_at_the_first_decision_it_changes() -> None:
    def no_finalize(state: CourseState) -> list[Command]:
        wanted = decide(state, default_pipelines().of(state))
        return [c for c in wanted if not (isinstance(c, ScheduleTask) and c.step == "finalize")]

    histories = {rec["course_id"]: (events, rec) for events, rec in map(recorded, NAMES)}
    report = shadow_histories(
        ((c, events, None) for c, (events, _) in histories.items()), decide=no_finalize
    )
    completed = {c for c, (_, rec) in histories.items() if rec["status"] == "completed"}
    assert {d.course_id for d in report.divergences} == completed
    for d in report.divergences:
        events = histories[d.course_id][0]
        assert d.kind == "commands"
        assert d.version == version_of(events, "TaskSucceeded", "add_interactivity")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A SQLite store with two courses run on the embedded runtime."""
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": "t"})
    rt = embedded(
        tmp_path, settings=settings, steps=noop_steps(default_pipeline()), clock=VirtualClock()
    )
    for i in range(2):
        rt.bridge.ingest({"videoUri": f"gs://b/{i}.mp4", "title": f"T{i}"}, message_id=f"m{i}")
    rt.run_until_idle()
    rt.close()
    return tmp_path


def test_audit_shadow_passes_a_store_this_code_wrote(data: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "--shadow", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["courses"], report["diverged"]) == (2, 0)
    assert report["events"] == 94  # 47 a course


def test_audit_shadow_names_a_course_whose_recorded_commands_this_code_would_not_make(
    data: Path,
) -> None:
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": "t"})
    rt = embedded(data, settings=settings, steps={}, clock=VirtualClock())
    course_id = rt.bridge.ingest({"videoUri": "gs://b/x.mp4", "title": "X"}, message_id="odd")
    head = rt.store.head(course_id)
    assert head is not None
    # a decision the current decide would not make: finalize scheduled right after the start
    odd = TaskScheduled(
        task="finalize",
        step="finalize",
        shard=None,
        generation=1,
        idempotency_key=f"{course_id}:finalize:1",
        queue="course-building-queue",
    )
    new = NewEvent(
        event=odd,
        occurred_at="2026-01-01T00:00:00Z",
        actor="bridge",
        causation_id=f"{course_id}@{head.version}",
        correlation_id=course_id,
    )
    rt.store.append(course_id, head.version, [new])
    rt.close()
    result = CliRunner().invoke(main, ["audit", "--shadow", "--data", str(data)])
    assert result.exit_code == 2
    assert f"{course_id}: differs at version {head.version} (commands)" in result.output
    assert "3 courses shadow-replayed" in result.output and "1 differ" in result.output


def test_a_decide_that_ignores_the_courses_pipeline_version_is_named() -> None:
    """The migrated history started on pipeline version 1: deciding it on the current version
    (as before courses were pinned) wants the audio chunks at once, where version 1 ran one
    transcribe after prepare_video."""
    events, rec = recorded("migrated")
    assert events[0].data["pipeline_version"] == 1
    found = shadow(rec["course_id"], events, decide=lambda state: decide(state, default_pipeline()))
    assert found is not None and found.kind == "commands"
    assert found.version == version_of(events, "TaskSucceeded", "prepare_video")
    assert shadow(rec["course_id"], events, head=rec["head"], digests=rec["states"]) is None
