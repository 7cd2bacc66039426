"""The dispatch port: how the bridge hands a scheduled task to a queue."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class AlreadyExists(Exception):
    """A task with this name was created recently: the queue de-duplicated it (a success)."""


@dataclass(frozen=True, slots=True)
class TaskRequest:
    queue: str
    name: str  # derived from the idempotency key: re-dispatch is de-duplicated by the queue
    step: str
    payload: Mapping[str, Any]
    deadline_s: float
    schedule_time: float | None = None


class Dispatcher(Protocol):
    def dispatch(self, request: TaskRequest) -> None:
        """Enqueue; raise ``AlreadyExists`` if the name was seen within the de-dup window."""
        ...


def task_name(idempotency_key: str) -> str:
    """The queue's task name for a key: a hash, so names spread evenly and never leak ids."""
    return "t" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
