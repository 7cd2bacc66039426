"""Upcasting of stored event data to the current schema version, keyed by (type, schema_version).

Hashes cover the stored bytes, so an upcast changes what the reducer sees, never what is verified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Data = Mapping[str, Any]
Upcaster = Callable[[Data], Data]


def _course_requested_v1_v2(data: Data) -> Data:
    # v1 called the source "video_url" and had no variant: every v1 course ran on Cloud Tasks.
    out = {k: v for k, v in data.items() if k != "video_url"}
    out["video_uri"] = data["video_url"]
    out.setdefault("variant", "cloudtasks")
    out.setdefault("request_id", None)
    return out


UPCASTERS: Mapping[tuple[str, int], Upcaster] = {
    ("CourseRequested", 1): _course_requested_v1_v2,
}


def upcast(event_type: str, version: int, data: Data) -> Data:
    """``data`` brought to the current version; the same object when no upcaster applies."""
    step = UPCASTERS.get((event_type, version))
    while step is not None:
        data = step(data)
        version += 1
        step = UPCASTERS.get((event_type, version))
    return data
