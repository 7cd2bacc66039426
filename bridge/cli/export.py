"""``coursegen export COURSE_ID --format ... --out PATH``: a stored course in LMS formats.

Works from what the pipeline stored: the course head (embedded SQLite or Firestore) names the
finalize task's outputs, and course.json, the video and the key frames are read through the
ArtifactStore port (a local folder or GCS, as COURSEGEN_ARTIFACTS says).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bridge.cli.common import data_option, open_store
from bridge.settings import Settings
from handlers.artifacts import ArtifactStore, LocalArtifacts
from handlers.export import FORMATS, ExportRefused, chosen, write_exports
from statemachine.lifecycle import CourseStatus


def artifact_store(data: Path, settings: Settings, scratch: Path) -> ArtifactStore:
    """The artifact store the pipeline wrote to: COURSEGEN_ARTIFACTS (a folder or gs://),
    else the embedded default under --data."""
    uri = settings.get("COURSEGEN_ARTIFACTS")
    if uri.startswith("gs://"):
        from handlers.gcs import GcsArtifacts

        return GcsArtifacts(uri, scratch)
    return LocalArtifacts(uri or data / "artifacts")


def finalize_outputs(head: Any, course_id: str) -> Mapping[str, str]:
    """The completed course's finalize outputs; anything else is refused with the reason."""
    if head is None:
        raise ExportRefused(f"no course {course_id!r}")
    if head.status != CourseStatus.COMPLETED:
        raise ExportRefused(
            f"course {course_id!r} is {head.status}, not completed: only a completed course "
            "can be exported (see coursegen status)"
        )
    tasks = head.snapshot.get("tasks", {})
    outputs: Mapping[str, str] = tasks.get("finalize", {}).get("outputs", {})
    if "course" not in outputs:
        raise ExportRefused(f"course {course_id!r} has no course.json among its outputs")
    return outputs


def export_course(
    store: Any,
    artifacts: ArtifactStore,
    course_id: str,
    formats: list[str],
    out: Path,
    scratch: Path,
) -> dict[str, Path]:
    head = store.head(course_id)
    outputs = finalize_outputs(head, course_id)
    course = json.loads(artifacts.get_bytes(outputs["course"]))
    tasks = head.snapshot.get("tasks", {})
    video_ref = tasks.get("prepare_video", {}).get("outputs", {}).get("video")
    video = artifacts.local_path(video_ref, scratch) if video_ref else None
    frames = {
        str(frame["name"]): artifacts.local_path(str(frame["ref"]), scratch)
        for module in course["modules"]
        for lesson in module["lessons"]
        for frame in lesson["key_frames"]
    }
    return write_exports(out, course, formats, video=video, frames=frames)


@click.command("export")
@click.argument("course_id")
@click.option(
    "--format",
    "formats",
    multiple=True,
    required=True,
    type=click.Choice([*FORMATS, "all"]),
    help="What to write (repeat for several; all = every format).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder the files are written to.",
)
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print format -> file as JSON.")
def export(course_id: str, formats: tuple[str, ...], out: Path, data: Path, as_json: bool) -> None:
    """Export a completed course: SCORM 1.2 / 2004 packages, GIFT, Moodle XML, WebVTT."""
    settings = Settings.from_env()
    store = open_store(data, settings)
    try:
        with tempfile.TemporaryDirectory(prefix="coursegen-export-") as tmp:
            artifacts = artifact_store(data, settings, Path(tmp))
            written = export_course(store, artifacts, course_id, chosen(formats), out, Path(tmp))
    except ExportRefused as err:
        raise click.ClickException(str(err)) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({fmt: str(path) for fmt, path in written.items()}, indent=2))
    else:
        for fmt, path in written.items():
            click.echo(f"{fmt}: {path}")
