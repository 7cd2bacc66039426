"""A course through cloud-local: submit a video as a client would, wait for the outcome.

``submit`` uploads the video to the stack's bucket and publishes a course request naming its
gs:// URI on course-requests; ``wait`` watches the course's head in Firestore until it is
terminal and summarises it (status, the failed step, per-step wall time, the stack's processes).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.tooling import cloud_provision as provision
from bridge.tooling.cloud_local import State, process_count
from statemachine.lifecycle import TERMINAL_COURSE, CourseStatus
from statemachine.timefmt import parse_iso

TERMINAL = TERMINAL_COURSE
REQUESTS_TOPIC = "course-requests"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def request_message(course_id: str, video_uri: str, title: str) -> bytes:
    """The course request, as the course_request schema has it."""
    return json.dumps({"courseId": course_id, "videoUri": video_uri, "title": title}).encode()


def submit(
    state: State, video: Path, *, title: str | None = None, course_id: str | None = None
) -> str:
    """Upload ``video`` and publish a request for it; the course id (a new one, unless given:
    the same id and video publish the same request again)."""
    course_id = course_id or "c" + secrets.token_hex(12)
    name = f"lectures/{course_id}/{_UNSAFE.sub('-', video.name)}"
    with provision.stack_env(state.emulators):
        uri = provision.upload(state.project, state.bucket, name, video)
        message = request_message(course_id, uri, title or video.stem.replace("_", " "))
        provision.publish(state.project, REQUESTS_TOPIC, message)
    return course_id


@dataclass(kw_only=True)
class Outcome:
    course_id: str
    status: str  # a TERMINAL status, "running" (timed out) or "unknown" (never ingested)
    failure: Mapping[str, Any] | None = None
    wall_s: float | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    process_groups: int = 0
    processes: int = 0

    @property
    def failed_step(self) -> str | None:
        if self.failure is None:
            return None
        task = str(self.failure.get("task") or "")
        return task.split("#", 1)[0] or None

    def as_dict(self) -> dict[str, Any]:
        return {
            "course_id": self.course_id,
            "status": self.status,
            "failed_step": self.failed_step,
            "failure": self.failure,
            "wall_s": self.wall_s,
            "steps": self.steps,
            "process_groups": self.process_groups,
            "processes": self.processes,
        }


def open_store(state: State) -> Any:
    from statemachine.store import make_store

    with provision.stack_env(state.emulators):
        return make_store("firestore", project=state.project)


def wait(state: State, course_id: str, *, timeout_s: float, poll_s: float = 0.5) -> Outcome:
    """Poll the course's head until it is terminal or ``timeout_s`` has passed."""
    store = open_store(state)
    deadline = time.monotonic() + timeout_s
    head = store.head(course_id)
    while (head is None or head.status not in TERMINAL) and time.monotonic() < deadline:
        time.sleep(poll_s)
        head = store.head(course_id)
    groups, count = process_count(state)
    if head is None:
        return Outcome(
            course_id=course_id, status="unknown", process_groups=groups, processes=count
        )
    events = store.load(course_id)
    wall = None
    if events and head.status in TERMINAL:
        wall = round(parse_iso(events[-1].occurred_at) - parse_iso(events[0].occurred_at), 3)
    return Outcome(
        course_id=course_id,
        status=head.status if head.status in TERMINAL else CourseStatus.RUNNING,
        failure=head.snapshot.get("failure"),
        wall_s=wall,
        steps=step_times(head.snapshot),
        process_groups=groups,
        processes=count,
    )


def step_times(snapshot: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per step: wall time (first start to last finish over its tasks), the work its tasks
    reported (sum of durations), tasks and attempts."""
    by_step: dict[str, list[Mapping[str, Any]]] = {}
    for task in snapshot.get("tasks", {}).values():
        by_step.setdefault(task["step"], []).append(task)
    out = {}
    for step, tasks in by_step.items():
        starts = [parse_iso(t["started_at"]) for t in tasks if t.get("started_at")]
        ends = [parse_iso(t["finished_at"]) for t in tasks if t.get("finished_at")]
        out[step] = {
            "wall_s": round(max(ends) - min(starts), 3) if starts and ends else None,
            "work_s": round(sum((t.get("duration_ms") or 0) for t in tasks) / 1000, 3),
            "tasks": len(tasks),
            "attempts": sum(int(t.get("attempts") or 0) for t in tasks),
            "status": ",".join(sorted({t["status"] for t in tasks})),
        }
    return out
