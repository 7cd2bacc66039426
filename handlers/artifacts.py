"""Artifact storage: a local folder (embedded default) or GCS, behind one small port.

Writes go to a temporary name beside the target and are renamed into place, so a crash never
leaves a half-written artifact under its real name. The file is fsynced before the rename and
its folder after it, so an artifact is on disk before any event that names it is appended (a
power cut cannot leave a history pointing at an empty or missing file).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$")


class ArtifactStore(Protocol):
    def put_bytes(self, course_id: str, name: str, data: bytes) -> str: ...

    def put_file(self, course_id: str, name: str, path: Path) -> str: ...

    def get_bytes(self, ref: str) -> bytes: ...

    def local_path(self, ref: str, scratch: Path) -> Path:
        """A local file with the artifact's bytes (downloaded into ``scratch`` if remote)."""
        ...

    def workdir(self, course_id: str, name: str) -> Path:
        """A local scratch folder for a step's work."""
        ...


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX leaves it to the caller)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str | Path, target: str | Path) -> None:
    """Rename a finished temporary file onto ``target``: its bytes first, then the name."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    fsync_dir(Path(target).parent)


def check_name(course_id: str, name: str) -> None:
    if not _SAFE_NAME.match(name) or ".." in name.split("/"):
        raise ValueError(f"unsafe artifact name {name!r}")
    if not _SAFE_NAME.match(course_id) or "/" in course_id:
        raise ValueError(f"unsafe course id {course_id!r}")


class LocalArtifacts:
    """Artifacts under ``root/<course_id>/<name>``; references are ``file://`` URIs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, course_id: str, name: str) -> Path:
        check_name(course_id, name)
        return self.root / course_id / name

    def put_bytes(self, course_id: str, name: str, data: bytes) -> str:
        target = self.path_for(course_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.as_uri()

    def put_file(self, course_id: str, name: str, path: Path) -> str:
        target = self.path_for(course_id, name)
        if Path(path).resolve() == target:
            return target.as_uri()
        return self.put_bytes(course_id, name, Path(path).read_bytes())

    def _resolve(self, ref: str) -> Path:
        if not ref.startswith("file://"):
            raise ValueError(f"not a local artifact reference: {ref!r}")
        path = Path(ref[len("file://") :]).resolve()
        if self.root not in path.parents:
            raise ValueError(f"artifact reference outside the artifact root: {ref!r}")
        return path

    def get_bytes(self, ref: str) -> bytes:
        return self._resolve(ref).read_bytes()

    def local_path(self, ref: str, scratch: Path) -> Path:
        return self._resolve(ref)

    def workdir(self, course_id: str, name: str) -> Path:
        path = self.path_for(course_id, name)
        path.mkdir(parents=True, exist_ok=True)
        return path
