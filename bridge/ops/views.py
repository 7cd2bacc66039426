"""Read models for people: the course list and one course's tasks, from the heads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statemachine.pipeline import Pipeline, default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.timefmt import parse_iso
from statemachine.upcast import pinned_version


def courses_table(store: EventStore, limit: int = 200) -> list[dict[str, Any]]:
    return [_course_row(h) for h in store.courses(limit=limit)]


def _course_row(h: Head) -> dict[str, Any]:
    s = h.snapshot
    tasks = s["tasks"].values()
    done = sum(1 for t in tasks if t["status"] == "succeeded")
    return {
        "course_id": h.course_id,
        "status": h.status,
        "title": (s.get("request") or {}).get("title", ""),
        "variant": h.variant,
        "pipeline": pinned_version(s.get("pipeline")),
        "progress": f"{done}/{len(s['tasks'])}",
        "updated_at": h.updated_at,
        "cost_usd": round(sum(task_cost(t) for t in tasks), 6),
    }


def task_cost(t: dict[str, Any]) -> float:
    """What every attempt of a task cost (a snapshot's task): failed attempts included."""
    return _number(t["metering"], "cost_usd") + _number(t.get("failed_metering") or {}, "cost_usd")


def _number(m: dict[str, Any], key: str) -> float:
    value = m.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


# A running task whose last progress report (or its start) is older than this shows as stuck.
# Long steps report at least every few seconds (handlers/progress.py), so two minutes of
# silence means a worker that is gone or hung, not a slow one.
STALL_S = 120.0


def course_status(
    store: EventStore, course_id: str, *, now: float | None = None
) -> dict[str, Any] | None:
    """One course's tasks; with ``now`` (epoch seconds) running tasks are checked for stalls."""
    head = store.head(course_id)
    if head is None:
        return None
    s = head.snapshot
    pipeline = course_pipeline(s)
    order = {name: i for i, name in enumerate(pipeline.order)}
    tasks = sorted(
        s["tasks"].items(), key=lambda kv: (order.get(kv[1]["step"], 99), kv[1]["shard"] or 0)
    )
    rows = [_task_row(name, t, now) for name, t in tasks]
    return {
        "course_id": course_id,
        "status": head.status,
        "title": (s.get("request") or {}).get("title", ""),
        "variant": head.variant,
        "version": head.version,
        "pipeline_version": pipeline.version,
        "failure": s.get("failure"),
        "outputs": s.get("outputs", {}),
        "tasks": rows,
        "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
    }


def course_pipeline(snapshot: Mapping[str, Any]) -> Pipeline:
    """The pipeline a course's head snapshot is pinned to, for showing it: the current one
    if that version is not stored here (``advance`` refuses such a course with the reason)."""
    pipelines = default_pipelines()
    found = pipelines.versions.get(pinned_version(snapshot.get("pipeline")))
    return found if found is not None else pipelines.latest


def _task_row(name: str, t: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    progress = t.get("progress") or {}
    fraction = progress.get("fraction")
    if t["status"] == "succeeded":
        fraction = 1.0
    signal = progress.get("at") or t["started_at"]
    stuck = (
        now is not None
        and t["status"] == "running"
        and signal is not None
        and now - parse_iso(signal) > STALL_S
    )
    wall = None
    if t["started_at"] and t["finished_at"]:
        wall = round(parse_iso(t["finished_at"]) - parse_iso(t["started_at"]), 3)
    m = t["metering"]
    spent = t.get("failed_metering") or {}
    tokens = sum(_number(d, k) for d in (m, spent) for k in ("input_tokens", "output_tokens"))
    return {
        "task": name,
        "status": t["status"],
        "attempts": t["attempts"],
        "generation": t["generation"],
        "duration_ms": t["duration_ms"],
        "wall_s": wall,
        "provider": m.get("provider", ""),
        "tokens": int(tokens),  # every attempt's, failed ones included
        "cost_usd": round(task_cost(t), 6),
        "error": (t["error"] or {}).get("message", "")[:80],
        "started_at": t["started_at"],
        "progress": fraction,  # 0..1 while running (from TaskProgress), 1 when succeeded
        "stuck": stuck,
    }
