"""The task status projection: one row per course and task, derived from the folded snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from statemachine.envelope import Envelope

# The columns of a task row, in the order the SQLite table keeps them.
TASK_COLUMNS = (
    "course_id",
    "task",
    "step",
    "shard",
    "status",
    "attempts",
    "generation",
    "variant",
    "error_type",
    "last_error",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "cost_usd",
)


def task_row(snapshot: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The projection row of task ``name``: a pure function of the course snapshot."""
    t = snapshot["tasks"][name]
    error = t["error"] or {}
    cost = (t["metering"] or {}).get("cost_usd")
    return {
        "course_id": snapshot["course_id"],
        "task": name,
        "step": t["step"],
        "shard": t["shard"],
        "status": t["status"],
        "attempts": t["attempts"],
        "generation": t["generation"],
        "variant": snapshot["variant"],
        "error_type": error.get("type"),
        "last_error": error.get("message"),
        "queued_at": t["scheduled_at"],
        "started_at": t["started_at"],
        "finished_at": t["finished_at"],
        "duration_ms": t["duration_ms"],
        "cost_usd": float(cost) if cost is not None else 0.0,
    }


def task_rows(
    snapshot: Mapping[str, Any], names: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Rows of ``names`` (every task when None), sorted by task name."""
    chosen = snapshot["tasks"] if names is None else names
    return [task_row(snapshot, n) for n in sorted(chosen)]


def touched_tasks(envelopes: Iterable[Envelope]) -> set[str]:
    """The tasks whose snapshot entries these events changed (only they need rewriting)."""
    names: set[str] = set()
    for env in envelopes:
        task = env.data.get("task")
        if env.type.startswith("Task") and isinstance(task, str):
            names.add(task)
        elif env.type == "CourseRedriven":
            names.update(env.data["tasks"])
    return names
