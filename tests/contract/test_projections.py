"""The task status projection, for every adapter: written with the events, rebuilt from them."""

from __future__ import annotations

from bridge.ops.projections import differences, folded, live_projections, rebuild
from statemachine.events import CourseRedriven, TaskFailed, TaskStarted, TaskSucceeded
from statemachine.store.task_rows import TASK_COLUMNS
from tests.factories import T0, new, one_step_history, requested, scheduled, started


def test_task_rows_are_written_with_the_events(store):
    one_step_history(store, "c1")
    rows = store.tasks("c1")
    assert [r["task"] for r in rows] == ["prepare_video"]
    row = rows[0]
    assert set(row) == set(TASK_COLUMNS)
    assert row["status"] == "succeeded"
    assert row["attempts"] == 1
    assert row["generation"] == 1
    assert row["variant"] == "cloudtasks"
    assert row["duration_ms"] == 12
    assert row["queued_at"] and row["started_at"] and row["finished_at"]
    assert row["last_error"] is None
    assert store.tasks("nobody") == []


def test_each_append_rewrites_the_tasks_it_touches(store):
    v = store.append("c1", 0, [requested()])
    assert store.tasks("c1") == []
    v = store.append("c1", v, [scheduled("c1"), scheduled("c1", "transcribe", "ai-analysis-queue")])
    assert {r["task"]: r["status"] for r in store.tasks("c1")} == {
        "prepare_video": "scheduled",
        "transcribe": "scheduled",
    }
    v = store.append("c1", v, [started("c1")])
    key = "c1:prepare_video:1"
    failed = TaskFailed(
        task="prepare_video",
        idempotency_key=key,
        attempt=1,
        error_type="PermanentStepError",
        message="no such video",
        retryable=False,
        duration_ms=7,
    )
    store.append("c1", v, [new(failed, T0 + 5)])
    row = {r["task"]: r for r in store.tasks("c1")}["prepare_video"]
    assert (row["status"], row["error_type"], row["last_error"]) == (
        "failed",
        "PermanentStepError",
        "no such video",
    )
    assert row["duration_ms"] == 7
    assert differences(store, "c1", folded(store, "c1")) == []


def test_a_redrive_rewrites_the_redriven_task(store):
    v = store.append("c1", 0, [requested()])
    v = store.append("c1", v, [scheduled("c1")])
    v = store.append("c1", v, [started("c1")])
    failed = TaskFailed(
        task="prepare_video",
        idempotency_key="c1:prepare_video:1",
        attempt=1,
        error_type="E",
        message="boom",
        retryable=False,
    )
    v = store.append("c1", v, [new(failed)])
    v = store.append("c1", v, [new(CourseRedriven(tasks=("prepare_video",), reason="fixed"))])
    assert store.tasks("c1")[0]["status"] == "pending"
    v = store.append("c1", v, [scheduled("c1", generation=2)])
    key = "c1:prepare_video:2"
    v = store.append(
        "c1", v, [new(TaskStarted(task="prepare_video", idempotency_key=key, attempt=1))]
    )
    done = TaskSucceeded(
        task="prepare_video",
        idempotency_key=key,
        attempt=1,
        outputs={},
        summary={},
        duration_ms=3,
        metering={"cost_usd": 0.25},
    )
    store.append("c1", v, [new(done)])
    row = store.tasks("c1")[0]
    assert (row["status"], row["generation"], row["attempts"], row["cost_usd"]) == (
        "succeeded",
        2,
        1,
        0.25,
    )
    assert row["last_error"] is None


def test_rebuild_restores_lost_or_damaged_projections(store):
    one_step_history(store, "a")
    store.append("b", 0, [requested()])
    before = live_projections(store)
    assert rebuild(store, check_only=True).changed == []
    # Damage: a wrong head for "a" and a stray task row, written as a rebuild would.
    wrong = folded(store, "a")
    wrong["tasks"]["ghost"] = dict(wrong["tasks"]["prepare_video"], status="running")
    wrong["status"] = "paused"
    assert store.replace_projections("a", wrong)
    assert rebuild(store, check_only=True).changed == ["a"]
    report = rebuild(store)
    assert (report.courses, report.tasks, report.changed) == (2, 1, ["a"])
    assert live_projections(store) == before
    assert rebuild(store, check_only=True).changed == []


def test_a_rewrite_from_a_stale_fold_is_refused(store):
    one_step_history(store, "a")
    stale = folded(store, "a")
    store.append("a", 4, [scheduled("a", "transcribe", "ai-analysis-queue")])
    assert not store.replace_projections("a", stale)
    assert store.head("a").version == 5
    assert differences(store, "a", folded(store, "a")) == []


def test_all_tasks_lists_every_row_by_course(store):
    one_step_history(store, "b")
    one_step_history(store, "a")
    assert [(r["course_id"], r["task"]) for r in store.all_tasks()] == [
        ("a", "prepare_video"),
        ("b", "prepare_video"),
    ]
