"""``apply`` and ``fold``: the pure reducer from events to course state.

The fold works on a private mutable accumulator (the snapshot dict) and hands out an
immutable ``CourseState``; each event type has one small handler found by a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from statemachine.envelope import Envelope
from statemachine.errors import IntegrityError, TransitionNotAllowed, UnknownEventType
from statemachine.lifecycle import COURSE, TASK, CourseStatus, TaskStatus
from statemachine.state import (
    DEFAULT_TENANT,
    NEW,
    CourseState,
    Snapshot,
    TaskSnapshot,
    empty_snapshot,
)
from statemachine.upcast import pinned_version

Data = Mapping[str, Any]
# A handler gets an event's type, data and time: the audit's replay calls it on the fields of
# each stored document without building an Envelope.
Handler = Callable[[Snapshot, str, Data, str], None]

# Course states in which results of tasks already running are recorded; new work (TaskStarted)
# is recorded only while the course runs or is paused.
_RESULT_STATES = frozenset({CourseStatus.RUNNING, CourseStatus.PAUSED, CourseStatus.FAILED})
_START_STATES = frozenset({CourseStatus.RUNNING, CourseStatus.PAUSED})
# A cancelled course records the results of tasks that were running as moot (TaskMooted).
_MOOT_STATES = frozenset({CourseStatus.CANCELLED})


def _course_requested(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    if acc["status"] != NEW:
        raise TransitionNotAllowed(acc["status"], etype, "the course already exists")
    acc["status"] = COURSE.initial
    acc["created_at"] = at
    acc["request"] = {
        "video_uri": d["video_uri"],
        "title": d["title"],
        "language": d.get("language", "en"),
        "options": dict(d.get("options") or {}),
        "request_id": d.get("request_id"),
    }
    acc["variant"] = d.get("variant", "cloudtasks")
    if d.get("not_before"):
        acc["hold_until"] = d["not_before"]
    if d.get("pipeline_version") is not None:  # absent before pinning: the snapshot too
        acc["pipeline"] = {"version": d["pipeline_version"], "digest": d["pipeline_digest"]}
    if d.get("tenant", DEFAULT_TENANT) != DEFAULT_TENANT:  # absent: the default tenant
        acc["tenant"] = d["tenant"]


def _course_queued(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    acc["status"] = COURSE.next(acc["status"], "queue")
    acc["queued"] = {"position": d["position"], "reason": d["reason"], "at": at}


def _course_admitted(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    acc["status"] = COURSE.next(acc["status"], "admit")
    acc.pop("queued", None)


def _task_scheduled(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    status = acc["status"]
    if status == CourseStatus.REQUESTED:
        acc["status"] = COURSE.next(status, "start")
    elif status != CourseStatus.RUNNING:
        raise TransitionNotAllowed(status, etype, "the course is not running")
    name = d["task"]
    known = acc["tasks"].get(name)
    if known is None:
        task = acc["tasks"][name] = _new_task(d)
    elif d["generation"] <= known["generation"]:
        raise TransitionNotAllowed(known["status"], etype, f"{name} generation must grow")
    else:
        task = known
    task["status"] = TASK.next(task["status"], "schedule")
    task["generation"] = d["generation"]
    task["key"] = d["idempotency_key"]
    task["queue"] = d["queue"]
    task["input"] = dict(d.get("input") or {})
    task["attempts"] = task["last_attempt"] = 0
    task["error"] = None
    task["scheduled_at"] = at
    task["started_at"] = task["finished_at"] = None
    if d.get("not_before"):
        task["not_before"] = d["not_before"]
    else:
        task.pop("not_before", None)
    if d.get("held"):
        task["held"] = d["held"]
    else:
        task.pop("held", None)
    acc.pop("hold_until", None)  # the hold is consumed by the tasks decided with it
    task.pop("progress", None)


def _new_task(d: Mapping[str, Any]) -> TaskSnapshot:
    return {
        "step": d["step"],
        "shard": d["shard"],
        "status": TASK.initial,
        "generation": 0,
        "key": "",
        "queue": d["queue"],
        "attempts": 0,
        "last_attempt": 0,
        "input": {},
        "outputs": {},
        "summary": {},
        "metering": {},
        "error": None,
        "scheduled_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
    }


def _task(acc: Snapshot, etype: str, d: Data, allowed: frozenset[str]) -> TaskSnapshot:
    if acc["status"] not in allowed:
        raise TransitionNotAllowed(acc["status"], etype, "not while the course is so")
    name = d["task"]
    task = acc["tasks"].get(name)
    if task is None:
        raise TransitionNotAllowed(TASK.initial, etype, f"{name} was never scheduled")
    if d["idempotency_key"] != task["key"]:
        raise TransitionNotAllowed(task["status"], etype, f"stale key for {name}")
    return task


def _task_started(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _START_STATES)
    task["status"] = TASK.next(task["status"], "start")
    task["attempts"] += 1
    task["last_attempt"] = d["attempt"]
    if task["started_at"] is None:
        task["started_at"] = at
    task.pop("progress", None)  # an attempt's progress starts from nothing


def _task_progress(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _START_STATES)
    if task["status"] != TaskStatus.RUNNING or task["last_attempt"] != d["attempt"]:
        raise TransitionNotAllowed(task["status"], etype, "only the running attempt")
    # Only a task that reported progress has the key: old snapshots stay as they were.
    task["progress"] = {"fraction": float(d["fraction"]), "at": at}


def _task_succeeded(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _RESULT_STATES)
    task["status"] = TASK.next(task["status"], "succeed")
    task["outputs"] = dict(d["outputs"])
    task["summary"] = dict(d["summary"])
    task["metering"] = dict(d.get("metering") or {})
    task["duration_ms"] = d["duration_ms"]
    task["finished_at"] = at
    task["error"] = None


def _spend(task: TaskSnapshot, metering: Mapping[str, Any] | None) -> None:
    """Add an attempt's metering to what the task's unsuccessful attempts cost
    (``failed_metering``: numbers summed; the key appears only once there is something)."""
    if not metering:
        return
    spent = dict(task.get("failed_metering") or {})
    for key, value in metering.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            spent[key] = round(spent.get(key, 0) + value, 6)
        else:
            spent.setdefault(key, value)
    task["failed_metering"] = spent


def _task_failed(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _RESULT_STATES)
    _spend(task, d.get("metering"))
    task["status"] = TASK.next(task["status"], "fail" if d["retryable"] else "fail_permanently")
    task["error"] = {"type": d["error_type"], "message": d["message"], "retryable": d["retryable"]}
    task["duration_ms"] = d.get("duration_ms", 0)
    task["finished_at"] = at


def _task_exhausted(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _RESULT_STATES)
    task["status"] = TASK.next(task["status"], "exhaust")
    _spend(task, d.get("metering"))
    task["error"] = {"type": "Exhausted", "message": d["error"], "retryable": False}
    task["finished_at"] = at


def _task_mooted(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    task = _task(acc, etype, d, _MOOT_STATES)
    task["status"] = TASK.next(task["status"], "moot")
    task["metering"] = dict(d.get("metering") or {})
    task["duration_ms"] = d.get("duration_ms", 0)
    task["finished_at"] = at
    task["error"] = {"type": "Moot", "message": d["detail"], "retryable": False}


def _course_trigger(trigger: str) -> Handler:
    def handler(acc: Snapshot, etype: str, d: Data, at: str) -> None:
        acc["status"] = COURSE.next(acc["status"], trigger)

    return handler


def _course_resumed(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    acc["status"] = COURSE.next(acc["status"], "resume")
    if d.get("not_before"):
        acc["hold_until"] = d["not_before"]


def _course_completed(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    acc["status"] = COURSE.next(acc["status"], "complete")
    acc["outputs"] = dict(d.get("outputs") or {})


def _course_failed(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    acc["status"] = COURSE.next(acc["status"], "fail")
    acc["failure"] = {"reason": d["reason"], "task": d.get("task")}


def _course_redriven(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    status = acc["status"]
    if status == CourseStatus.FAILED:
        acc["status"] = COURSE.next(status, "redrive")
    elif status not in _START_STATES:
        raise TransitionNotAllowed(status, etype, "only a failed or active course")
    for name in d["tasks"]:
        task = acc["tasks"].get(name)
        if task is None:
            raise TransitionNotAllowed(TASK.initial, etype, f"{name} was never scheduled")
        task["status"] = TASK.next(task["status"], "redrive")
    acc["failure"] = None


def _course_migrated(acc: Snapshot, etype: str, d: Data, at: str) -> None:
    status = acc["status"]
    if status == NEW or status in COURSE.terminal:
        raise TransitionNotAllowed(status, etype, "only an active course moves")
    if d["from_version"] != pinned_version(acc.get("pipeline")):
        raise TransitionNotAllowed(
            status, etype, f"the course is not on pipeline version {d['from_version']}"
        )
    acc["pipeline"] = {"version": d["to_version"], "digest": d["digest"]}


HANDLERS: Mapping[str, Handler] = {
    "CourseRequested": _course_requested,
    "TaskScheduled": _task_scheduled,
    "TaskStarted": _task_started,
    "TaskProgress": _task_progress,
    "TaskSucceeded": _task_succeeded,
    "TaskFailed": _task_failed,
    "TaskExhausted": _task_exhausted,
    "TaskMooted": _task_mooted,
    "CourseCompleted": _course_completed,
    "CourseFailed": _course_failed,
    "CourseCancelled": _course_trigger("cancel"),
    "CoursePaused": _course_trigger("pause"),
    "CourseResumed": _course_resumed,
    "CourseRedriven": _course_redriven,
    "CourseMigrated": _course_migrated,
    "CourseQueued": _course_queued,
    "CourseAdmitted": _course_admitted,
}


def apply_into(acc: Snapshot, env: Envelope) -> None:
    """Apply one event to the mutable accumulator (the fold's private working copy).

    On ``TransitionNotAllowed`` the accumulator may be partly changed: callers that keep
    it work on a copy.
    """
    if env.version != acc["version"] + 1:
        raise IntegrityError(
            acc["course_id"], acc["version"] + 1, f"expected it next, found version {env.version}"
        )
    etype = env.type
    handler = HANDLERS.get(etype)
    if handler is None:
        raise UnknownEventType(etype, env.schema_version)
    try:
        handler(acc, etype, env.data, env.occurred_at)
    except TransitionNotAllowed as err:
        if err.event == etype:
            raise
        # A lifecycle names its trigger; callers want the event that was refused.
        raise TransitionNotAllowed(err.state, etype, f"{err.event}: {err.detail}") from None
    except (KeyError, TypeError) as err:
        raise TransitionNotAllowed(acc["status"], etype, f"malformed data: {err!r}") from None
    acc["version"] = env.version
    acc["last_hash"] = env.hash
    acc["updated_at"] = env.occurred_at


def fold_snapshot(events: Iterable[Envelope], snapshot: Snapshot) -> Snapshot:
    """Fold ``events`` into ``snapshot`` in place and return it."""
    for env in events:
        apply_into(snapshot, env)
    return snapshot


def fold(events: Iterable[Envelope], state: CourseState | None = None) -> CourseState:
    """The state after ``events``, starting from ``state`` (or from nothing)."""
    items = list(events)
    if state is not None:
        acc = state.to_snapshot()
    elif items:
        acc = empty_snapshot(items[0].course_id)
    else:
        raise ValueError("fold of no events needs a starting state")
    return CourseState.from_snapshot(fold_snapshot(items, acc))


def apply(state: CourseState, event: Envelope) -> CourseState:
    return fold((event,), state)
