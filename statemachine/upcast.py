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


# -- pipeline pins ------------------------------------------------------------------------
# A CourseRequested recorded before courses were pinned names no pipeline version. Such a
# course runs on version 3, whatever its age: until pinning, ``decide`` read the one
# schemas/pipeline.json of the code deployed at each step, so version 3 (the definition when
# pinning began) is the DAG every such course was last decided on; a course in flight across
# the upgrade goes on exactly as before it. Versions 1 and 2 (schemas/pipelines/) are kept
# as the record of what earlier deployments ran; no unpinned history resolves to them. The
# rule is applied where the pin is read (``pinned_version``), not by rewriting the event: the
# fold of an old history, its stored head and its recorded state digests stay as they were.
UNPINNED_PIPELINE_VERSION = 3


def pinned_version(pin: Mapping[str, Any] | None) -> int:
    """The pipeline version of a course whose state records ``pin`` ({version, digest}, or
    None for a course requested before pinning)."""
    if pin is None:
        return UNPINNED_PIPELINE_VERSION
    version: int = pin["version"]
    return version
