"""After a simulation with faults on SQLite, projections rebuilt from the events equal the live
ones the appends wrote; stats over the same store add up."""

from __future__ import annotations

from pathlib import Path

from bridge.ops.projections import differences, folded, live_projections, rebuild
from bridge.ops.stats import collect, percentile, since_iso, summarize
from bridge.tooling.simulate import Faults, simulate
from statemachine.store.sqlite import SqliteStore

FAULTS = Faults(
    seed=11,
    fail_rate=0.2,
    permanent_rate=0.03,
    duplicate_rate=0.1,
    drop_notify_rate=0.05,
    slow_rate=0.02,
)


def test_rebuilt_projections_equal_the_live_ones_after_a_faulty_run(tmp_path: Path) -> None:
    report = simulate(40, FAULTS, data_dir=tmp_path, store="sqlite")
    assert report["ok"], report["invariants"]
    assert report["counts"]["injected"]["transient"] > 0
    store = SqliteStore(tmp_path / "events.db")
    try:
        live = live_projections(store)
        statuses = {r["status"] for r in live["tasks"]}
        assert {"succeeded", "exhausted"} <= statuses or {"succeeded", "failed"} <= statuses
        assert any(r["attempts"] > 1 for r in live["tasks"])
        assert rebuild(store, check_only=True).changed == []
        with store._conn() as conn:  # lose every task row; rebuild brings them back
            conn.execute("DELETE FROM tasks")
        result = rebuild(store)
        assert (result.courses, len(result.changed), result.moved) == (40, 40, [])
        assert live_projections(store) == live
        for course_id, _ in store.scan():
            assert differences(store, course_id, folded(store, course_id)) == []
    finally:
        store.close()


def test_stats_over_a_faulty_run(tmp_path: Path) -> None:
    report = simulate(30, FAULTS, data_dir=tmp_path, store="sqlite")
    store = SqliteStore(tmp_path / "events.db")
    try:
        rows = summarize(collect(store.scan()))
    finally:
        store.close()
    (variant,) = rows["variants"]
    assert variant["courses"] == 30
    assert variant["completed"] == report["statuses"].get("completed", 0)
    assert variant["failed"] == report["statuses"].get("failed", 0)
    steps = {r["step"]: r for r in rows["steps"]}
    prepare = steps["prepare_video"]
    assert prepare["count"] == 30
    assert prepare["mean_attempts"] >= 1
    assert 0 < prepare["failure_rate"] < 1
    assert prepare["p50_ms"] <= prepare["p95_ms"]
    attempts = report["counts"]["attempts"]
    assert sum(round(r["mean_attempts"] * r["count"]) for r in rows["steps"]) == attempts


def test_percentile_and_since() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 95) == 5
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 95) == 95
    now = 1_790_000_000.0
    assert since_iso("2h", now) == "2026-09-21T12:13:20.000000Z"
    assert since_iso("2026-01-31", now) == "2026-01-31T00:00:00.000000Z"
    assert since_iso("2026-01-31T12:00:00+01:00", now) == "2026-01-31T11:00:00.000000Z"
