"""Read models for people: the course list and one course's tasks, from the heads."""

from __future__ import annotations

from typing import Any

from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.pipeline import default_pipeline
from statemachine.ports import EventStore, Head
from statemachine.state import DEFAULT_TENANT
from statemachine.timefmt import parse_iso


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
    order = {name: i for i, name in enumerate(default_pipeline().order)}
    tasks = sorted(
        s["tasks"].items(), key=lambda kv: (order.get(kv[1]["step"], 99), kv[1]["shard"] or 0)
    )
    rows = [_task_row(name, t, now) for name, t in tasks]
    return {
        "course_id": course_id,
        "status": head.status,
        "tenant": s.get("tenant", DEFAULT_TENANT),
        "queued": _queued(store, head),
        "held": _held(tasks),
        "title": (s.get("request") or {}).get("title", ""),
        "variant": head.variant,
        "version": head.version,
        "failure": s.get("failure"),
        "outputs": s.get("outputs", {}),
        "tasks": rows,
        "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
    }


def _queued(store: EventStore, head: Head) -> dict[str, Any] | None:
    """A queued course's place: ``position`` now (1: its tenant's next), the position it
    joined at, why it waits and since when; None when it is not queued."""
    q = head.snapshot.get("queued")
    if head.status != CourseStatus.QUEUED or not q:
        return None
    tenant = head.snapshot.get("tenant", DEFAULT_TENANT)

    def key(h: Head) -> tuple[str, int, str]:
        other = h.snapshot.get("queued") or {}
        return (str(other.get("at", "")), int(other.get("position", 0)), h.course_id)

    line = sorted(
        (
            h
            for h in store.courses(status=CourseStatus.QUEUED)
            if h.snapshot.get("tenant", DEFAULT_TENANT) == tenant
        ),
        key=key,
    )
    now = next((i + 1 for i, h in enumerate(line) if h.course_id == head.course_id), None)
    return {
        "position": now or q["position"],
        "joined_at_position": q["position"],
        "reason": q["reason"],
        "since": q["at"],
    }


def _held(tasks: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The tasks their queue holds for the tenant's daily AI budget: task, until, why."""
    return [
        {"task": name, "until": t.get("not_before"), "reason": t["held"]}
        for name, t in tasks
        if t.get("held") and t["status"] == TaskStatus.SCHEDULED
    ]


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
