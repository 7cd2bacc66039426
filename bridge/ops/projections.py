"""Rebuild and check the projections (course heads, task status rows) from the event log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine.ports import EventStore
from statemachine.reducer import fold_snapshot
from statemachine.state import Snapshot, empty_snapshot
from statemachine.store.task_rows import task_rows

_TRIES = 5


@dataclass
class RebuildReport:
    courses: int = 0
    tasks: int = 0
    changed: list[str] = field(default_factory=list)  # courses whose projections differed
    moved: list[str] = field(default_factory=list)  # still changing after every retry

    def as_dict(self) -> dict[str, Any]:
        return {
            "courses": self.courses,
            "tasks": self.tasks,
            "changed": len(self.changed),
            "changed_courses": self.changed[:50],
            "moved": self.moved[:50],
        }


def folded(store: EventStore, course_id: str) -> Snapshot | None:
    """The snapshot the whole history of ``course_id`` folds to (None: no events)."""
    events = store.load(course_id)
    if not events:
        return None
    return fold_snapshot(events, empty_snapshot(course_id))


def differences(store: EventStore, course_id: str, snapshot: Mapping[str, Any]) -> list[str]:
    """How the stored projections of a course differ from ``snapshot`` (empty: they agree)."""
    found: list[str] = []
    head = store.head(course_id)
    if head is None:
        found.append("no head")
    else:
        columns = (head.status, head.version, head.last_hash, head.updated_at, head.variant)
        want = tuple(snapshot[k] for k in ("status", "version", "last_hash", "updated_at"))
        if dict(head.snapshot) != dict(snapshot) or columns != (*want, snapshot["variant"]):
            found.append(f"head differs (stored {head.status} v{head.version}, fold {want[:2]})")
    live = {r["task"]: dict(r) for r in store.tasks(course_id)}
    folded = {r["task"]: r for r in task_rows(snapshot)}
    for name in sorted(live.keys() | folded.keys()):
        if live.get(name) != folded.get(name):
            found.append(f"task {name}: stored {live.get(name)} != folded {folded.get(name)}")
    return found


def rebuild(store: EventStore, *, check_only: bool = False) -> RebuildReport:
    """Fold every history and rewrite its head and task rows (only ``check`` with check_only).

    A course appended to while it is rewritten is folded again; the rewrite itself is one
    transaction that refuses to land if the history moved past the fold.
    """
    report = RebuildReport()
    for course_id, events in store.scan():
        report.courses += 1
        snapshot = fold_snapshot(events, empty_snapshot(course_id))
        report.tasks += len(snapshot["tasks"])
        if differences(store, course_id, snapshot):
            report.changed.append(course_id)
        if check_only:
            continue
        for _ in range(_TRIES):
            if store.replace_projections(course_id, snapshot):
                break
            fresh = folded(store, course_id)
            assert fresh is not None
            snapshot = fresh
        else:
            report.moved.append(course_id)
    return report


def live_projections(store: EventStore) -> dict[str, Any]:
    """Every head snapshot and task row as stored (to compare a store before and after)."""
    heads = {h.course_id: dict(h.snapshot) for h in store.courses()}
    return {"heads": heads, "tasks": [dict(r) for r in store.all_tasks()]}
