"""Operator operations (cancel, pause, resume, redrive): each one event, actor ``operator:NAME``.

Shared by the CLI, the bridge's ``/operator/`` routes and the dashboard. Each function checks
the operation is legal in the course's state, appends its event at the head's version (a
concurrent change is re-read and checked again), advances the course where the operation
lets it move on, and returns a small result dict. Errors carry an HTTP status and the state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from bridge.core import Bridge
from statemachine.commands import ScheduleTask
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed, UnknownPipeline
from statemachine.events import (
    CourseCancelled,
    CoursePaused,
    CourseRedriven,
    CourseResumed,
    Event,
)
from statemachine.lifecycle import BROKEN_TASK, COURSE, UNFINISHED_TASK, CourseStatus
from statemachine.pipeline import default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.state import CourseState
from statemachine.timefmt import iso, parse_iso

OPERATIONS = ("cancel", "pause", "resume", "redrive")
MAX_REASON = 2000
_TRIES = 20
_OPERATOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+-]{0,127}$")
_REDRIVABLE = BROKEN_TASK
_UNFINISHED = UNFINISHED_TASK


class OperationError(Exception):
    """An operation that cannot be done; ``status`` is its HTTP answer (RFC 9457 title)."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, state: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.state = dict(state) if state is not None else None

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.state is not None:
            body["state"] = self.state
        return body


class UnknownCourse(OperationError):
    status = 404
    title = "Unknown course"


class NotAllowed(OperationError):
    status = 409
    title = "Not allowed in this state"


class InvalidOperation(OperationError):
    status = 422
    title = "Invalid operation"


def actor_for(operator: str) -> str:
    """``operator:NAME``; NAME is an account or user name (``InvalidOperation`` otherwise)."""
    name = (operator or "").strip()
    if name.startswith("operator:"):
        name = name[len("operator:") :]
    if not _OPERATOR.match(name):
        raise InvalidOperation(f"operator name {name!r:.80} must match {_OPERATOR.pattern}")
    return f"operator:{name}"


def course_state(head: Head) -> dict[str, Any]:
    """What an error shows of a course: status, version, and each task's status."""
    tasks = head.snapshot.get("tasks", {})
    return {
        "course_id": head.course_id,
        "status": head.status,
        "version": head.version,
        "tasks": {name: t["status"] for name, t in sorted(tasks.items())},
    }


def cancel(
    store: EventStore, bridge: Bridge | None, course_id: str, *, operator: str, reason: str
) -> dict[str, Any]:
    """Cancel: queued and running tasks become no-ops when they arrive."""
    return _operate(store, bridge, course_id, "cancel", operator, reason)


def pause(
    store: EventStore, bridge: Bridge | None, course_id: str, *, operator: str, reason: str
) -> dict[str, Any]:
    """Pause: no new task is scheduled; tasks already queued or running still finish."""
    return _operate(store, bridge, course_id, "pause", operator, reason)


def resume(
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    *,
    operator: str,
    reason: str,
    at: str | None = None,
) -> dict[str, Any]:
    """Resume a paused course, then advance it (schedule what became due while paused);
    with ``at`` (ISO time) what is due is scheduled on its queue for then, not polled."""
    return _operate(store, bridge, course_id, "resume", operator, reason, at=at)


def redrive(
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    *,
    operator: str,
    reason: str,
    step: str | None = None,
) -> dict[str, Any]:
    """Give the failed and exhausted tasks (of ``step``, if given) a new generation, then
    advance: the course continues where it stopped; succeeded tasks are not run again."""
    return _operate(store, bridge, course_id, "redrive", operator, reason, step)


def perform(
    operation: str,
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    *,
    operator: str,
    reason: str,
    step: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """The operation named ``operation`` (one of ``OPERATIONS``)."""
    if operation not in OPERATIONS:
        raise InvalidOperation(f"unknown operation {operation!r}: one of {', '.join(OPERATIONS)}")
    if step is not None and operation != "redrive":
        raise InvalidOperation("only redrive takes a step")
    if at is not None and operation != "resume":
        raise InvalidOperation("only resume takes a time (at)")
    return _operate(store, bridge, course_id, operation, operator, reason, step, at)


def _operate(
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    operation: str,
    operator: str,
    reason: str,
    step: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    actor = actor_for(operator)
    why = _reason(reason)
    hold = _time(at)
    now: Callable[[], float] = bridge.clock.now if bridge is not None else time.time
    for _ in range(_TRIES):
        head = store.head(course_id)
        if head is None:
            raise UnknownCourse(f"no course {course_id!r}")
        event = _event(head, operation, why, step, bridge, hold)
        version = append_operator_event(store, head, event, operation, actor, now)
        if version is None:
            continue  # the course moved on: check the operation against its new state
        return _result(store, bridge, course_id, operation, actor, why, version, event)
    raise NotAllowed(f"course {course_id} is changing too fast; try again")


def append_operator_event(
    store: EventStore,
    head: Head,
    event: Event,
    operation: str,
    actor: str,
    now: Callable[[], float],
) -> int | None:
    """Record an operator's ``event`` at the head it was decided on: the new version, or None
    when the course moved on meanwhile (decide again on its new state). A refusal of the
    lifecycle is ``NotAllowed``, with the course's state."""
    course_id = head.course_id
    new = NewEvent(
        event=event,
        occurred_at=iso(now()),
        actor=actor,
        causation_id=actor,
        correlation_id=course_id,
        idempotency_key=f"{operation}:{course_id}@{head.version}",
    )
    try:
        return store.append(course_id, head.version, [new])
    except ConcurrencyConflict:
        return None
    except TransitionNotAllowed as err:
        detail = f"cannot {operation} course {course_id}: {err}"
        raise NotAllowed(detail, course_state(head)) from None


def _reason(reason: str | None) -> str:
    why = (reason or "").strip()
    if not why:
        raise InvalidOperation("a reason is required (it is recorded in the course's history)")
    if len(why) > MAX_REASON:
        raise InvalidOperation(f"the reason is longer than {MAX_REASON} characters")
    return why


def _time(at: str | None) -> str | None:
    """``at`` (ISO 8601 / RFC 3339; no offset: UTC) as the store's UTC ISO text."""
    if at is None:
        return None
    try:
        return iso(parse_iso(at.strip()))
    except (ValueError, OverflowError, OSError):
        raise InvalidOperation(
            f"{at!r:.80} is not a time (ISO 8601, e.g. 2026-01-31T22:00Z)"
        ) from None


def _event(
    head: Head,
    operation: str,
    reason: str,
    step: str | None,
    bridge: Bridge | None,
    hold: str | None = None,
) -> Event:
    trigger = operation
    if operation == "redrive" and head.status in (CourseStatus.RUNNING, CourseStatus.PAUSED):
        trigger = ""  # an active course keeps its status; its broken tasks are redriven
    if trigger and not COURSE.allows(head.status, trigger):
        raise NotAllowed(
            f"cannot {operation} course {head.course_id}: it is {head.status}"
            f" (version {head.version})",
            course_state(head),
        )
    match operation:
        case "cancel":
            return CourseCancelled(reason=reason)
        case "pause":
            return CoursePaused(reason=reason)
        case "resume":
            return CourseResumed(reason=reason, not_before=hold)
    pipelines = bridge.pipelines if bridge is not None else None
    try:  # the steps of the course's own pipeline version
        pipeline = (pipelines or default_pipelines()).of(CourseState.from_snapshot(head.snapshot))
    except UnknownPipeline as err:
        detail = f"cannot redrive course {head.course_id}: {err}"
        raise NotAllowed(detail, course_state(head)) from None
    if step is not None and step not in pipeline.steps:
        raise InvalidOperation(f"no step named {step!r}")
    tasks = head.snapshot["tasks"]
    broken = {
        name
        for name, t in tasks.items()
        if t["status"] in _REDRIVABLE and (step is None or t["step"] == step)
    }
    if not broken:
        which = f" of step {step}" if step else ""
        raise NotAllowed(
            f"cannot redrive course {head.course_id}: no failed or exhausted task{which}",
            course_state(head),
        )
    if head.status == CourseStatus.FAILED:
        # Tasks a failed course left unfinished were acknowledged as no-ops when they arrived:
        # nothing would deliver them again, so they get a new generation too.
        broken |= {name for name, t in tasks.items() if t["status"] in _UNFINISHED}
    return CourseRedriven(tasks=tuple(sorted(broken)), reason=reason)


def _result(
    store: EventStore,
    bridge: Bridge | None,
    course_id: str,
    operation: str,
    actor: str,
    reason: str,
    version: int,
    event: Event,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "course_id": course_id,
        "operation": operation,
        "actor": actor,
        "reason": reason,
        "version": version,
    }
    if isinstance(event, CourseRedriven):
        result["tasks"] = list(event.tasks)
    if isinstance(event, CourseResumed) and event.not_before is not None:
        result["at"] = event.not_before
    if operation == "cancel" and bridge is not None:
        bridge.advance(course_id)  # nothing to schedule; a place it held goes to the next
    if operation in ("resume", "redrive"):
        if bridge is None:
            result["scheduled"] = None  # the reconciler advances it
        else:
            commands = bridge.advance(course_id)
            result["scheduled"] = [c.task for c in commands if isinstance(c, ScheduleTask)]
    head = store.head(course_id)
    result["status"] = head.status if head is not None else None
    return result
