"""The DAG changes while courses run: each course finishes on the pipeline version it started
with, new ones take the new version, and a migrated one continues on the new version.

The next version (built here from the current definition) adds a step (summarize, between
generate_structure and add_interactivity), drops one (analyze_frames) and re-queues one
(finalize, onto a new publishing-queue). The change is a deployment: the runtime on the current
version stops with courses in flight, one on it and the next opens the same SQLite data folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import schemas
from bridge.cli import main
from bridge.ops import migrate as migration
from bridge.ops import operations
from bridge.ops.shadow import shadow_histories
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from handlers.registry import StepContext, StepFn, StepResult
from statemachine.decide import decide
from statemachine.pipeline import Pipeline, Pipelines, default_pipelines, parse
from statemachine.state import CourseState

SETTINGS = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": "pinning"}


V_OLD = default_pipelines().current  # the deployed version; this test adds the next
V_NEW = V_OLD + 1
STORED = ", ".join(str(v) for v in sorted(default_pipelines().versions))


def version_next() -> Pipeline:
    doc: dict[str, Any] = json.loads(json.dumps(schemas.pipeline()))
    doc["version"] = V_NEW
    steps = doc["steps"]
    doc["queues"]["publishing-queue"] = doc["queues"]["course-building-queue"]
    steps["summarize"] = {**steps["add_interactivity"], "after": ["generate_structure"]}
    steps["add_interactivity"]["after"] = ["summarize"]
    del steps["analyze_frames"]
    steps["generate_structure"]["after"] = ["transcribe", "analyze_video"]
    steps["transcribe"]["after"] = [
        d for d in steps["transcribe"]["after"] if d != "analyze_frames"
    ]
    steps["finalize"]["queue"] = "publishing-queue"
    schemas.validate("pipeline.schema", doc)
    return parse(doc)


OLD = default_pipelines().versions[V_OLD]
NEW = version_next()
BEFORE = Pipelines({V_OLD: OLD}, V_OLD)  # the deployment before the change
AFTER = Pipelines({V_OLD: OLD, V_NEW: NEW}, V_NEW)  # the old version kept for courses on it


def runtime(data: Path, pipelines: Pipelines, clock: VirtualClock, holder: dict) -> Runtime:
    """An embedded runtime on ``data`` whose no-op steps act as an operator would while they
    run, as the course's title says ("pause at TASK", "migrate at TASK"; joined by "; ")."""
    base = noop_steps(AFTER.merged)

    def wrap(name: str, inner: StepFn) -> StepFn:
        def step(ctx: StepContext) -> StepResult:
            title = (ctx.course.request or {}).get("title", "")
            course, store = ctx.course.course_id, holder["rt"].store
            for verb, _, task in (part.partition(" at ") for part in title.split("; ")):
                if task != ctx.task.name:
                    continue
                if verb == "pause":
                    operations.pause(store, None, course, operator="t", reason="deploy")
                if verb == "migrate":
                    try:
                        migration.migrate(
                            store,
                            None,
                            course,
                            to=str(V_NEW),
                            operator="t",
                            reason="r",
                            pipelines=holder["rt"].bridge.pipelines,
                        )
                    except operations.OperationError as err:
                        holder["refused"] = err
            return inner(ctx)

        return step

    rt = embedded(
        data,
        settings=Settings.from_env(SETTINGS),
        steps={name: wrap(name, fn) for name, fn in base.items()},
        clock=clock,
        pipelines=pipelines,
        record_start_after_s=0,  # a task's start is recorded before its step runs
    )
    holder["rt"] = rt
    return rt


def tasks(rt: Runtime, course_id: str) -> Mapping[str, Any]:
    head = rt.store.head(course_id)
    assert head is not None
    return head.snapshot["tasks"]


def steps_of(rt: Runtime, course_id: str) -> set[str]:
    return {t["step"] for t in tasks(rt, course_id).values()}


def test_courses_finish_on_the_dag_they_started_with(tmp_path: Path) -> None:
    clock, holder = VirtualClock(), {}
    rt = runtime(tmp_path, BEFORE, clock, holder)
    paused = rt.bridge.ingest({"videoUri": "gs://b/a.mp4", "title": "pause at extract_frames"})
    moved = rt.bridge.ingest({"videoUri": "gs://b/b.mp4", "title": "pause at extract_frames"})
    rt.run_until_idle()
    queued = rt.bridge.ingest({"videoUri": "gs://b/c.mp4", "title": "in the queue"})
    # the deployment: tasks were in the old process's queue (``queued``'s prepare_video) and
    # courses were paused halfway (extract_frames done, analyze_frames not yet scheduled)
    assert rt.store.head(paused).status == rt.store.head(moved).status == "paused"  # type: ignore[union-attr]
    assert "analyze_frames" not in steps_of(rt, moved)
    rt.close()

    rt = runtime(tmp_path, AFTER, clock, holder)
    try:
        rt.bridge.recover()  # what ``coursegen serve`` does first: re-enqueue what was waiting
        fresh = rt.bridge.ingest({"videoUri": "gs://b/d.mp4", "title": "after the deploy"})
        plan = migration.migrate(
            rt.store, rt.bridge, moved, to="current", operator="t", reason="", dry_run=True
        )
        assert (plan["added"], plan["dropped"]) == (["summarize"], ["analyze_frames"])
        assert plan["requeued"] == {
            "finalize": {"from": "course-building-queue", "to": "publishing-queue"}
        }
        assert set(plan["rewired"]) == {"generate_structure", "add_interactivity", "transcribe"}
        assert rt.store.head(moved).snapshot.get("pipeline") == {  # type: ignore[union-attr]
            "version": V_OLD,
            "digest": OLD.digest,
        }  # a dry run records nothing
        done = migration.migrate(
            rt.store, rt.bridge, moved, to="current", operator="t", reason="take summarize"
        )
        assert (done["from_version"], done["to_version"]) == (V_OLD, V_NEW)
        for course in (paused, moved):
            operations.resume(rt.store, rt.bridge, course, operator="t", reason="deployed")
        rt.run_until_idle()

        for course in (paused, moved, queued, fresh):
            assert rt.store.head(course).status == "completed", course  # type: ignore[union-attr]
        for course in (paused, queued):  # started on the old version: its DAG to the end
            assert steps_of(rt, course) == set(OLD.steps)
            assert tasks(rt, course)["finalize"]["queue"] == "course-building-queue"
            head = rt.store.head(course)
            assert head is not None
            assert CourseState.from_snapshot(head.snapshot).pipeline_version == V_OLD
        for course in (fresh, moved):  # new, and migrated before analyze_frames: the new DAG
            assert steps_of(rt, course) == set(NEW.steps)
            assert tasks(rt, course)["finalize"]["queue"] == "publishing-queue"
        # each history replays against the version it names, at every version
        report = shadow_histories(rt.store.scan_heads(), decide=lambda s: decide(s, AFTER.of(s)))
        assert (report.courses, report.divergences) == (4, ())
    finally:
        rt.close()


def test_a_move_that_would_drop_a_running_task_is_refused(tmp_path: Path) -> None:
    clock, holder = VirtualClock(), {}
    rt = runtime(tmp_path, BEFORE, clock, holder)
    title = "pause at prepare_video; migrate at analyze_frames#0"
    course = rt.bridge.ingest({"videoUri": "gs://b/a.mp4", "title": title})
    rt.run_until_idle()
    rt.close()
    rt = runtime(tmp_path, AFTER, clock, holder)
    try:
        operations.resume(rt.store, rt.bridge, course, operator="t", reason="deployed")
        rt.run_until_idle()
        refused = holder["refused"]
        assert isinstance(refused, operations.NotAllowed) and refused.status == 409
        assert "would drop analyze_frames#0 (running), analyze_frames#1 (scheduled)" in str(refused)
        assert f"version {V_NEW} does not have" in refused.detail
        head = rt.store.head(course)
        assert head is not None and head.status == "completed"
        assert (
            CourseState.from_snapshot(head.snapshot).pipeline_version == V_OLD
        )  # it stayed, and finished
    finally:
        rt.close()


def test_coursegen_migrate_refuses_a_finished_course_and_moves_an_active_one(
    tmp_path: Path, monkeypatch: Any
) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    clock, holder = VirtualClock(), {}
    rt = runtime(tmp_path, default_pipelines().with_current(1), clock, holder)
    ended = rt.bridge.ingest({"videoUri": "gs://b/a.mp4", "title": "runs to the end"})
    active = rt.bridge.ingest({"videoUri": "gs://b/b.mp4", "title": "pause at extract_frames"})
    rt.run_until_idle()
    rt.close()

    runner = CliRunner()
    refused = runner.invoke(
        main, ["migrate", ended, "--to", "current", "--reason", "r", "--data", str(tmp_path)]
    )
    assert refused.exit_code == 1
    assert f"cannot migrate course {ended}: it is completed" in refused.output
    dry = runner.invoke(
        main, ["migrate", active, "--to", "current", "--dry-run", "--data", str(tmp_path)]
    )
    assert dry.exit_code == 0, dry.output
    assert (
        f"migrate {active}: pipeline version 1 -> {V_OLD} (dry run: nothing recorded)" in dry.output
    )
    assert "steps added:   transcribe_chunk" in dry.output
    assert "re-queued:     transcribe (ai-analysis-queue -> course-building-queue)" in dry.output
    no_reason = runner.invoke(
        main, ["migrate", active, "--to", str(V_OLD), "--data", str(tmp_path)]
    )
    assert no_reason.exit_code == 1 and "a reason is required" in no_reason.output
    unknown = runner.invoke(
        main, ["migrate", active, "--to", str(V_NEW + 3), "--reason", "r", "--data", str(tmp_path)]
    )
    assert f"no pipeline version {V_NEW + 3} is stored (versions here: {STORED})" in unknown.output
    moved = runner.invoke(
        main,
        [
            *("migrate", active, "--to", "current", "--reason", "r", "--operator", "ana"),
            *("--data", str(tmp_path), "--json"),
        ],
    )
    assert moved.exit_code == 0, moved.output
    result = json.loads(moved.output)
    assert (result["from_version"], result["to_version"], result["actor"]) == (
        1,
        V_OLD,
        "operator:ana",
    )
    again = runner.invoke(
        main, ["migrate", active, "--to", "current", "--reason", "r", "--data", str(tmp_path)]
    )
    assert f"course {active} is already on pipeline version {V_OLD}" in again.output
