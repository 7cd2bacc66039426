"""Queue management from code (plan item 1.2): every Cloud Tasks queue as pipeline.json says.

``plan`` compares each queue of ``schemas/pipeline.json`` with what the Cloud Tasks API has
(retry config, rate limits, logging) and says what would change; ``sync`` sends the create or
update requests. It is what the local topology and a deployment without Terraform use;
Terraform (``terraform/modules/queues``) stays the production path and sets the very same
fields from the same file (a test parses the module and compares). Routing: neither sets one
at the queue level; every task carries its step's URL (``COURSEGEN_STEP_URLS``).

``client`` is a ``google.cloud.tasks_v2.CloudTasksClient`` (or anything with its
``list_queues``, ``create_queue`` and ``update_queue``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import schemas

TIMEOUT_S = 30.0
LOGGING_SAMPLING_RATIO = 1.0  # terraform/modules/queues: var.logging_sampling_ratio's default
_DURATIONS = ("min_backoff", "max_backoff", "max_retry_duration")
_GROUPS = ("retry_config", "rate_limits", "stackdriver_logging_config")


@dataclass(frozen=True)
class QueueChange:
    """One queue: ``create``, ``update`` or ``unchanged``; ``fields`` maps each field that
    differs (``retry_config.max_attempts``) to (what the API has, what pipeline.json wants)."""

    queue: str
    action: str
    fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    request: Mapping[str, Any] = field(default_factory=dict)  # the Queue that is sent

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "action": self.action,
            "fields": {k: {"now": a, "wanted": b} for k, (a, b) in self.fields.items()},
        }


def queue_settings(
    pipeline: Mapping[str, Any] | None = None,
    *,
    logging_sampling_ratio: float = LOGGING_SAMPLING_RATIO,
) -> dict[str, dict[str, Any]]:
    """Each queue's settings as flat fields (``retry_config.min_backoff``: seconds), from
    pipeline.json and every earlier stored version (``schemas.deployed_pipeline``): what both
    ``sync`` and Terraform set."""
    doc = pipeline if pipeline is not None else schemas.deployed_pipeline()
    out: dict[str, dict[str, Any]] = {}
    for name, q in doc["queues"].items():
        retry, limits = q["retry"], q["rateLimits"]
        out[name] = {
            "retry_config.max_attempts": int(retry["maxAttempts"]),
            "retry_config.min_backoff": float(retry["minBackoffSeconds"]),
            "retry_config.max_backoff": float(retry["maxBackoffSeconds"]),
            "retry_config.max_doublings": int(retry["maxDoublings"]),
            "retry_config.max_retry_duration": float(retry["maxRetryDurationSeconds"]),
            "rate_limits.max_dispatches_per_second": float(limits["maxDispatchesPerSecond"]),
            "rate_limits.max_concurrent_dispatches": int(limits["maxConcurrentDispatches"]),
            "stackdriver_logging_config.sampling_ratio": float(logging_sampling_ratio),
        }
    return out


def queue_request(path: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Cloud Tasks ``Queue`` (as a dict) named ``path`` with ``settings``."""
    queue: dict[str, Any] = {"name": path}
    for key, value in settings.items():
        group, name = key.split(".", 1)
        if name in _DURATIONS:
            seconds = float(value)
            value = {"seconds": int(seconds), "nanos": round((seconds % 1) * 1e9)}
        queue.setdefault(group, {})[name] = value
    return queue


def current_settings(queue: Any) -> dict[str, Any]:
    """A ``Queue`` read from the API as the same flat fields (0 where the API has none)."""
    out: dict[str, Any] = {}
    for group in _GROUPS:
        message = getattr(queue, group, None)
        for key in _FIELDS[group]:
            value = getattr(message, key, 0) if message is not None else 0
            if isinstance(value, timedelta):
                value = value.total_seconds()
            out[f"{group}.{key}"] = value
    return out


_FIELDS = {
    "retry_config": (
        "max_attempts",
        "min_backoff",
        "max_backoff",
        "max_doublings",
        "max_retry_duration",
    ),
    "rate_limits": ("max_dispatches_per_second", "max_concurrent_dispatches"),
    "stackdriver_logging_config": ("sampling_ratio",),
}


def plan(
    client: Any,
    project: str,
    location: str,
    *,
    pipeline: Mapping[str, Any] | None = None,
    logging_sampling_ratio: float = LOGGING_SAMPLING_RATIO,
) -> list[QueueChange]:
    """What ``sync`` would do to each queue, sending nothing (one ``list_queues`` call)."""
    parent = f"projects/{project}/locations/{location}"
    existing = {q.name: q for q in client.list_queues(parent=parent, timeout=TIMEOUT_S)}
    changes = []
    wanted_all = queue_settings(pipeline, logging_sampling_ratio=logging_sampling_ratio)
    for name, wanted in wanted_all.items():
        path = f"{parent}/queues/{name}"
        request = queue_request(path, wanted)
        found = existing.get(path)
        if found is None:
            fields = {k: (None, v) for k, v in wanted.items()}
            changes.append(QueueChange(name, "create", fields, request))
            continue
        now = current_settings(found)
        differ = {k: (now.get(k), v) for k, v in wanted.items() if not _same(now.get(k), v)}
        changes.append(QueueChange(name, "update" if differ else "unchanged", differ, request))
    return changes


def sync(client: Any, project: str, location: str, changes: Sequence[QueueChange]) -> list[str]:
    """Send the creates and updates of ``changes`` (from ``plan``); the queues changed."""
    parent = f"projects/{project}/locations/{location}"
    done = []
    for change in changes:
        if change.action == "create":
            client.create_queue(parent=parent, queue=dict(change.request), timeout=TIMEOUT_S)
        elif change.action == "update":
            groups = sorted({key.split(".", 1)[0] for key in change.fields})
            client.update_queue(
                queue=dict(change.request), update_mask={"paths": groups}, timeout=TIMEOUT_S
            )
        else:
            continue
        done.append(change.queue)
    return done


def _same(now: Any, wanted: Any) -> bool:
    if now is None:
        return False
    if isinstance(wanted, float) or isinstance(now, float):
        return abs(float(now) - float(wanted)) < 1e-9
    return bool(now == wanted)
