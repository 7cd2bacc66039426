"""Structured analytics log lines, one JSON object per line, in the shape Cloud Logging reads."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_logger = logging.getLogger("coursegen.analytics")

SEVERITY = {
    "task_failed": "WARNING",
    "task_exhausted": "ERROR",
    "course_failed": "ERROR",
    "message_rejected": "ERROR",
}


def emit(
    event: str,
    *,
    course_id: str,
    step: str | None = None,
    attempt: int | None = None,
    variant: str | None = None,
    trace: str | None = None,
    project: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Log one analytics event; returns the record (tests read it)."""
    record: dict[str, Any] = {
        "severity": SEVERITY.get(event, "INFO"),
        "message": f"{event} {course_id}" + (f" {step}" if step else ""),
        "event": event,
        "course_id": course_id,
        "logging.googleapis.com/labels": {
            k: str(v)
            for k, v in {
                "course_id": course_id,
                "step": step,
                "attempt": attempt,
                "variant": variant,
            }.items()
            if v is not None
        },
    }
    if step is not None:
        record["step"] = step
    if attempt is not None:
        record["attempt"] = attempt
    if variant is not None:
        record["variant"] = variant
    if trace:
        # Cloud Logging links a line to its trace only by the full resource name.
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        record["logging.googleapis.com/trace"] = (
            f"projects/{project}/traces/{trace}" if project else trace
        )
    record.update(fields)
    if _logger.isEnabledFor(logging.INFO):
        _logger.info(json.dumps(record, default=str, separators=(",", ":")))
    return record


def configure(stream: Any = None, level: int = logging.INFO) -> None:
    """Send analytics lines to ``stream`` (stderr by default) as bare JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.handlers[:] = [handler]
    _logger.setLevel(level)
    _logger.propagate = False
