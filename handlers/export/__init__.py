"""Export formats of a finished course, as pure functions of course.json and its media.

webvtt (captions), gift and moodle_xml (quiz interchange), scorm (SCORM 1.2 and 2004 4th
edition packages). ``write_exports`` writes the chosen formats into a folder; finalize and
``coursegen export`` both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from handlers.export import gift, moodle_xml, scorm, webvtt

FORMATS = ("scorm12", "scorm2004", "gift", "moodle-xml", "webvtt")
DEFAULT_EXPORTS = ("scorm12", "webvtt")
FILE_NAMES = {
    "scorm12": "scorm12.zip",
    "scorm2004": "scorm2004.zip",
    "gift": "quiz.gift",
    "moodle-xml": "quiz-moodle.xml",
    "webvtt": "captions.vtt",
}


class ExportRefused(ValueError):
    """A course that cannot be exported (not completed, or no such format)."""


def chosen(formats: Iterable[str]) -> list[str]:
    """The formats in a fixed order, "all" expanded; an unknown one is refused."""
    wanted = set(formats)
    if "all" in wanted:
        wanted = set(FORMATS)
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        raise ExportRefused(f"unknown export format(s): {', '.join(unknown)}")
    return [name for name in FORMATS if name in wanted]


def file_name(course: Mapping[str, Any], fmt: str) -> str:
    return f"{course['course_id']}-{FILE_NAMES[fmt]}"


def write_exports(
    folder: Path,
    course: Mapping[str, Any],
    formats: Iterable[str],
    *,
    video: scorm.Source | None,
    frames: Mapping[str, scorm.Source],
) -> dict[str, Path]:
    """Write each chosen format into ``folder``; returns format -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for fmt in chosen(formats):
        path = folder / file_name(course, fmt)
        if fmt in ("scorm12", "scorm2004"):
            version: scorm.Version = "1.2" if fmt == "scorm12" else "2004"
            scorm.write_package(path, course, version=version, video=video, frames=frames)
        elif fmt == "gift":
            path.write_text(gift.render(course), encoding="utf-8")
        elif fmt == "moodle-xml":
            path.write_bytes(moodle_xml.render(course))
        else:
            path.write_text(webvtt.render(webvtt.course_segments(course)), encoding="utf-8")
        out[fmt] = path
    return out
