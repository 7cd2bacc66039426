"""The read model for people: course rows, one course's tasks, each step's status, from the
heads. The CLI, the live board and the dashboard all read courses through it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.pipeline import Pipeline, default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.state import DEFAULT_TENANT
from statemachine.timefmt import parse_iso
from statemachine.upcast import pinned_version


class CourseRow(TypedDict):
    """One course in a list (``coursegen status``, the dashboard's table)."""

    course_id: str
    title: str
    status: str
    variant: str  # "" when the course has none
    done: int  # tasks succeeded
    total: int
    progress: str  # "done/total"
    percent: int
    created_at: str | None
    updated_at: str | None
    age_s: float | None  # since created_at, at ``now``
    cost_usd: float  # every attempt's, failed ones included
    version: int
    pipeline: int  # the pipeline version the course is pinned to


class TaskRow(TypedDict):
    """One task of a course (``course_status``)."""

    task: str
    status: str
    attempts: int
    generation: int
    duration_ms: int | None
    wall_s: float | None
    provider: str
    tokens: int  # every attempt's, failed ones included
    cost_usd: float
    error: str
    started_at: str | None
    progress: float | None  # 0..1 while running (from TaskProgress), 1 when succeeded
    stuck: bool


class CourseView(TypedDict):
    """One course: its status and its tasks in pipeline order."""

    course_id: str
    status: str
    tenant: str
    queued: dict[str, Any] | None  # a queued course's place: position, joined_at_position, ...
    held: list[dict[str, Any]]  # tasks held for the tenant's daily AI budget: task, until, why
    title: str
    variant: str | None
    version: int
    pipeline_version: int
    failure: dict[str, Any] | None
    outputs: dict[str, str]
    tasks: list[TaskRow]
    cost_usd: float


# A step's status is its tasks' worst, in this order; a step with no task yet is "waiting".
STEP_ORDER = (
    TaskStatus.EXHAUSTED,
    TaskStatus.FAILED,
    TaskStatus.RETRYING,
    TaskStatus.RUNNING,
    TaskStatus.SCHEDULED,
    TaskStatus.PENDING,
    TaskStatus.MOOT,
)
WAITING = "waiting"


def courses_table(store: EventStore, limit: int = 200, now: float | None = None) -> list[CourseRow]:
    return [course_row(h, now) for h in store.courses(limit=limit)]


def course_row(head: Head, now: float | None = None) -> CourseRow:
    """A course's row; ``age_s`` is measured at ``now`` (None without it)."""
    s = head.snapshot
    tasks = list(s["tasks"].values())
    done = sum(1 for t in tasks if t["status"] == TaskStatus.SUCCEEDED)
    created = s.get("created_at")
    age = round(max(0.0, now - parse_iso(created)), 1) if created and now is not None else None
    return {
        "course_id": head.course_id,
        "title": str((s.get("request") or {}).get("title", "")),
        "status": head.status,
        "variant": head.variant or "",
        "done": done,
        "total": len(tasks),
        "progress": f"{done}/{len(tasks)}",
        "percent": _percent(head.status, done, len(tasks)),
        "created_at": created,
        "updated_at": head.updated_at,
        "age_s": age,
        "pipeline": pinned_version(s.get("pipeline")),
        "cost_usd": round(sum(task_cost(t) for t in tasks), 6),
        "version": head.version,
    }


def _percent(status: str, done: int, total: int) -> int:
    if status == CourseStatus.COMPLETED:
        return 100
    return int(100 * done / total) if total else 0


def step_statuses(
    tasks: Iterable[Mapping[str, Any]], order: Iterable[str] | None = None
) -> dict[str, str]:
    """Each step's status (task rows in; steps of ``order``, the course's pipeline, by default
    the current one): its tasks' worst, ``waiting`` before any."""
    by_step: dict[str, set[str]] = {}
    for t in tasks:
        by_step.setdefault(t["task"].split("#")[0], set()).add(t["status"])
    steps = order if order is not None else default_pipelines().latest.order
    return {step: step_status(by_step.get(step, set())) for step in steps}


def step_status(statuses: set[str]) -> str:
    """The status of a step whose tasks have ``statuses``."""
    if not statuses:
        return WAITING
    return next((s for s in STEP_ORDER if s in statuses), TaskStatus.SUCCEEDED)


def task_cost(t: Mapping[str, Any]) -> float:
    """What every attempt of a task cost (a snapshot's task): failed attempts included."""
    return _number(t["metering"], "cost_usd") + _number(t.get("failed_metering") or {}, "cost_usd")


def _number(m: Mapping[str, Any], key: str) -> float:
    value = m.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


# A running task whose last progress report (or its start) is older than this shows as stuck.
# Long steps report at least every few seconds (handlers/progress.py), so two minutes of
# silence means a worker that is gone or hung, not a slow one.
STALL_S = 120.0


def course_status(
    store: EventStore, course_id: str, *, now: float | None = None
) -> CourseView | None:
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
        "tenant": s.get("tenant", DEFAULT_TENANT),
        "queued": _queued(store, head),
        "held": _held(tasks),
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


def _held(tasks: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The tasks their queue holds for the tenant's daily AI budget: task, until, why."""
    return [
        {"task": name, "until": t.get("not_before"), "reason": t["held"]}
        for name, t in tasks
        if t.get("held") and t["status"] == TaskStatus.SCHEDULED
    ]


def _task_row(name: str, t: Mapping[str, Any], now: float | None = None) -> TaskRow:
    progress = t.get("progress") or {}
    fraction = progress.get("fraction")
    if t["status"] == TaskStatus.SUCCEEDED:
        fraction = 1.0
    signal = progress.get("at") or t["started_at"]
    stuck = (
        now is not None
        and t["status"] == TaskStatus.RUNNING
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
        "tokens": int(tokens),
        "cost_usd": round(task_cost(t), 6),
        "error": (t["error"] or {}).get("message", "")[:80],
        "started_at": t["started_at"],
        "progress": fraction,
        "stuck": stuck,
    }
