"""``coursegen migrate``: move a course to another pipeline version, as one CourseMigrated event.

A course runs on the pipeline version it was requested with (``Pipelines``); only an operator
moves it, and only while it is active. ``plan`` says what the move changes (the steps added,
dropped, moved to another queue or given other prerequisites, and what ``decide`` schedules
right after it) and refuses a move that would strand work: a course that ended, a target that
is not stored, the version it is already on, or a task still queued or running (scheduled,
running, retrying) of a step the target does not have, whose result no DAG would wait for.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core import Bridge
from bridge.ops.operations import (
    InvalidOperation,
    NotAllowed,
    UnknownCourse,
    _reason,
    actor_for,
    append_operator_event,
    course_state,
)
from statemachine.commands import ScheduleTask
from statemachine.decide import decide
from statemachine.errors import UnknownPipeline
from statemachine.events import CourseMigrated
from statemachine.lifecycle import COURSE, UNFINISHED_TASK
from statemachine.pipeline import Pipeline, Pipelines, default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.state import CourseState

_TRIES = 20


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What moving ``course_id`` from ``from_version`` to ``to_version`` changes."""

    course_id: str
    status: str
    version: int  # the history's version the plan was made at
    from_version: int
    to_version: int
    digest: str  # to_version's
    added: tuple[str, ...]  # steps of to_version only
    dropped: tuple[str, ...]  # steps of from_version only (their finished tasks stay as they are)
    requeued: Mapping[str, tuple[str, str]]  # step -> (queue before, queue after)
    rewired: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]  # step -> (after, after)
    scheduled: tuple[str, ...]  # the tasks ``decide`` schedules right after the move

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["added"], out["dropped"] = list(self.added), list(self.dropped)
        out["requeued"] = {s: {"from": a, "to": b} for s, (a, b) in self.requeued.items()}
        out["rewired"] = {s: {"from": list(a), "to": list(b)} for s, (a, b) in self.rewired.items()}
        out["scheduled"] = list(self.scheduled)
        return out


def target_version(to: str | int, pipelines: Pipelines) -> int:
    """``current`` or a version number, as a stored version (``InvalidOperation`` if not)."""
    text = str(to).strip().lower()
    if text == "current":
        return pipelines.current
    if not text.isdigit():
        raise InvalidOperation(f"--to takes 'current' or a version number, not {to!r:.40}")
    version = int(text)
    if version not in pipelines.versions:
        known = ", ".join(map(str, pipelines.versions))
        raise InvalidOperation(f"no pipeline version {version} is stored (versions here: {known})")
    return version


def plan(head: Head, pipelines: Pipelines, to: str | int) -> MigrationPlan:
    """The move of the course at ``head`` to version ``to``, or the reason it is refused
    (``NotAllowed``, ``InvalidOperation``)."""
    course_id = head.course_id
    state = CourseState.from_snapshot(head.snapshot)
    if state.status in COURSE.terminal:
        raise NotAllowed(
            f"cannot migrate course {course_id}: it is {state.status} (version {head.version});"
            " only an active course moves to another pipeline version",
            course_state(head),
        )
    target = pipelines.get(target_version(to, pipelines))
    try:
        source = pipelines.of(state)
    except UnknownPipeline as err:
        raise NotAllowed(f"cannot migrate course {course_id}: {err}", course_state(head)) from None
    if source.version == target.version:
        raise NotAllowed(
            f"course {course_id} is already on pipeline version {target.version}",
            course_state(head),
        )
    stranded = sorted(
        f"{t.name} ({t.status})"
        for t in state.tasks.values()
        if t.status in UNFINISHED_TASK and t.step not in target.steps
    )
    if stranded:
        raise NotAllowed(
            f"cannot migrate course {course_id} to pipeline version {target.version}: it would"
            f" drop {', '.join(stranded)}, still queued or running, whose step version"
            f" {target.version} does not have; wait until it finishes, then migrate",
            course_state(head),
        )
    moved = dataclasses.replace(
        state, pipeline={"version": target.version, "digest": target.digest}
    )
    return MigrationPlan(
        course_id=course_id,
        status=state.status,
        version=head.version,
        from_version=source.version,
        to_version=target.version,
        digest=target.digest,
        added=tuple(s for s in target.order if s not in source.steps),
        dropped=tuple(s for s in source.order if s not in target.steps),
        requeued=_changed(source, target, lambda p, s: p.steps[s].queue),
        rewired=_changed(source, target, lambda p, s: tuple(sorted(p.steps[s].after))),
        scheduled=tuple(c.task for c in decide(moved, target) if isinstance(c, ScheduleTask)),
    )


def _changed(
    source: Pipeline, target: Pipeline, value: Callable[[Pipeline, str], Any]
) -> dict[str, Any]:
    """Each step of both whose ``value`` differs: step -> (before, after)."""
    out = {}
    for step in target.order:
        if step in source.steps and value(source, step) != value(target, step):
            out[step] = (value(source, step), value(target, step))
    return out


def migrate(
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    *,
    to: str | int,
    operator: str,
    reason: str | None,
    dry_run: bool = False,
    pipelines: Pipelines | None = None,
) -> dict[str, Any]:
    """Record CourseMigrated (``dry_run``: only plan it), then advance the course if a
    ``bridge`` is given (otherwise the reconciler of the process running it does)."""
    registry = pipelines or (bridge.pipelines if bridge is not None else None)
    registry = registry or default_pipelines()
    actor = actor_for(operator)
    why = (reason or "").strip() if dry_run else _reason(reason)  # recorded: required
    now: Callable[[], float] = bridge.clock.now if bridge is not None else time.time
    for _ in range(_TRIES):
        head = store.head(course_id)
        if head is None:
            raise UnknownCourse(f"no course {course_id!r}")
        move = plan(head, registry, to)
        result: dict[str, Any] = {"operation": "migrate", "dry_run": dry_run, **move.as_dict()}
        if dry_run:
            return result
        event = CourseMigrated(
            from_version=move.from_version,
            to_version=move.to_version,
            digest=move.digest,
            reason=why,
        )
        version = append_operator_event(store, head, event, "migrate", actor, now)
        if version is None:
            continue  # the course moved on: plan again against its new state
        result.update(actor=actor, reason=why, version=version)
        if bridge is None:
            result["scheduled"] = None  # the reconciler advances it
        else:
            commands = bridge.advance(course_id)
            result["scheduled"] = [c.task for c in commands if isinstance(c, ScheduleTask)]
        return result
    raise NotAllowed(f"course {course_id} is changing too fast; try again")
