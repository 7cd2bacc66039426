"""``coursegen stats``: per step and variant, counts, durations, failures, attempts and cost.

Pure functions over histories (no store, no clock): ``collect`` folds the events of the courses
requested at or after ``since`` into per-(step, variant) and per-variant accumulators;
``summarize`` turns them into rows. Durations are those of successful attempts (what a step
costs when it works); the failure rate is failed attempts over finished attempts, the ratio
the Terraform alert watches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine.envelope import Envelope
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.lifecycle import CourseStatus as C
from statemachine.timefmt import iso, parse_iso

ALL = "*"


@dataclass
class StepAcc:
    tasks: int = 0  # task generations scheduled
    succeeded: int = 0
    failed: int = 0  # permanently failed or exhausted task generations
    attempts: int = 0
    failed_attempts: int = 0
    durations_ms: list[int] = field(default_factory=list)
    cost_usd: float = 0.0


@dataclass
class VariantAcc:
    courses: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    wall_s: list[float] = field(default_factory=list)  # requested -> completed
    cost_usd: float = 0.0


@dataclass
class Stats:
    steps: dict[tuple[str, str], StepAcc] = field(default_factory=dict)
    variants: dict[str, VariantAcc] = field(default_factory=dict)


def collect(histories: Iterable[tuple[str, Sequence[Envelope]]], since: str | None = None) -> Stats:
    """Accumulate every history whose course was requested at or after ``since`` (ISO)."""
    stats = Stats()
    cutoff = parse_iso(since) if since else None
    for _course_id, events in histories:
        if not events or events[0].type != "CourseRequested":
            continue
        if cutoff is not None and parse_iso(events[0].occurred_at) < cutoff:
            continue
        _add_course(stats, events)
    return stats


def _add_course(stats: Stats, events: Sequence[Envelope]) -> None:
    variant = str(events[0].data.get("variant", "cloudtasks"))
    course = stats.variants.setdefault(variant, VariantAcc())
    course.courses += 1
    steps: dict[str, str] = {}  # task -> step
    status: str = C.REQUESTED
    for env in events:
        d = env.data
        if env.type == "TaskScheduled":
            steps[d["task"]] = d["step"]
        is_task = env.type.startswith("Task")
        acc = _step(stats, steps.get(d["task"]), variant) if is_task else None
        match env.type:
            case "TaskScheduled":
                assert acc is not None
                acc.tasks += 1
                status = C.RUNNING
            case "TaskStarted":
                assert acc is not None
                acc.attempts += 1
            case "TaskSucceeded":
                assert acc is not None
                acc.succeeded += 1
                acc.durations_ms.append(int(d["duration_ms"]))
                cost = float((d.get("metering") or {}).get("cost_usd", 0) or 0)
                acc.cost_usd += cost
                course.cost_usd += cost
            case "TaskFailed":
                assert acc is not None
                acc.failed_attempts += 1
                cost = float((d.get("metering") or {}).get("cost_usd", 0) or 0)
                acc.cost_usd += cost  # a failed attempt's calls were paid for too
                course.cost_usd += cost
                if not d["retryable"]:
                    acc.failed += 1
            case "TaskExhausted":
                assert acc is not None
                acc.failed += 1
            case "CourseCompleted":
                status = C.COMPLETED
                start = parse_iso(events[0].occurred_at)
                course.wall_s.append(parse_iso(env.occurred_at) - start)
            case "CourseFailed":
                status = C.FAILED
            case "CourseCancelled":
                status = C.CANCELLED
            case "CoursePaused":
                status = C.PAUSED
            case "CourseResumed" | "CourseRedriven":
                status = C.RUNNING
    course.statuses[status] = course.statuses.get(status, 0) + 1


def _step(stats: Stats, step: str | None, variant: str) -> StepAcc:
    return stats.steps.setdefault((step or "?", variant), StepAcc())


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(stats: Stats, step_order: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """``{"steps": [...], "variants": [...]}``: one row per (step, variant), one per variant."""
    order = {name: i for i, name in enumerate(step_order)}
    keys = sorted(stats.steps, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    steps = [_step_row(step, variant, stats.steps[(step, variant)]) for step, variant in keys]
    variants = [_variant_row(v, stats.variants[v]) for v in sorted(stats.variants)]
    return {"steps": steps, "variants": variants}


def _step_row(step: str, variant: str, a: StepAcc) -> dict[str, Any]:
    finished = a.succeeded + a.failed_attempts
    return {
        "step": step,
        "variant": variant,
        "count": a.tasks,
        "succeeded": a.succeeded,
        "failed": a.failed,
        "p50_ms": percentile(a.durations_ms, 50),
        "p95_ms": percentile(a.durations_ms, 95),
        "failure_rate": round(a.failed_attempts / finished, 4) if finished else None,
        "mean_attempts": round(a.attempts / a.tasks, 3) if a.tasks else None,
        "cost_usd": round(a.cost_usd, 6),
    }


def _variant_row(variant: str, a: VariantAcc) -> dict[str, Any]:
    p50 = percentile(a.wall_s, 50)
    p95 = percentile(a.wall_s, 95)
    return {
        "variant": variant,
        "courses": a.courses,
        "completed": a.statuses.get(C.COMPLETED, 0),
        "failed": a.statuses.get(C.FAILED, 0),
        "active": sum(a.statuses.get(s, 0) for s in ACTIVE_COURSE),
        "cancelled": a.statuses.get(C.CANCELLED, 0),
        "p50_course_s": round(p50, 3) if p50 is not None else None,
        "p95_course_s": round(p95, 3) if p95 is not None else None,
        "cost_usd": round(a.cost_usd, 6),
    }


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_iso(text: str, now: float) -> str:
    """``--since``: an ISO time (``2026-01-31``, ``2026-01-31T12:00:00Z``) or an age (``90m``,
    ``24h``, ``7d``) before ``now``; the ISO time it names, in UTC."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        try:
            delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            at = datetime.fromtimestamp(now, UTC) - delta
        except (OverflowError, ValueError):
            raise ValueError(f"--since {text!r} reaches back before the year 1") from None
    else:
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--since {text!r}: an ISO time or an age like 90m, 24h, 7d") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return iso(at.timestamp())
