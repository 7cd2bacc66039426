"""Where course archives are written: a local folder (fsynced) or a Cloud Storage prefix.

One object per course, ``COURSE.jsonl``, written whole or not at all: in a folder through a
temporary name that is fsynced, renamed and its folder fsynced; in a bucket by one upload
(an object becomes visible only when complete, and is durable once acknowledged), made on
the condition that the object is still the generation this run read, so two archivers never
interleave. ``crash`` is called at each named point of a write: tests make it raise there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from handlers.artifacts import fsync_dir

Crash = Callable[[str, str], None]  # (point, course id)


def no_crash(point: str, course_id: str) -> None:
    """The default hook: carry on."""


class ArchiveTarget(Protocol):
    def location(self, course_id: str) -> str:
        """The URI a course's archive has (``file://...`` or ``gs://...``)."""
        ...

    def read(self, course_id: str) -> bytes | None:
        """The archive of a course as stored, or None when there is none."""
        ...

    def write(self, course_id: str, data: bytes, crash: Crash = no_crash) -> None:
        """Store ``data`` as the course's archive, durably and atomically (replacing one)."""
        ...


def check_course_id(course_id: str) -> None:
    if not course_id or course_id.startswith(".") or "/" in course_id or "\\" in course_id:
        raise ValueError(f"unsafe course id for an archive name: {course_id!r}")


class FolderTarget:
    """``DIR/COURSE.jsonl``; a crash leaves at most a dot-prefixed temporary beside it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, course_id: str) -> Path:
        check_course_id(course_id)
        return self.folder / f"{course_id}.jsonl"

    def location(self, course_id: str) -> str:
        return self.path(course_id).resolve().as_uri()

    def read(self, course_id: str) -> bytes | None:
        try:
            return self.path(course_id).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, course_id: str, data: bytes, crash: Crash = no_crash) -> None:
        target = self.path(course_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f".{course_id}.jsonl.*.tmp"):
            stale.unlink()  # a crashed run's temporary: never renamed, so never an archive
        tmp = self.folder / f".{course_id}.jsonl.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        crash("temporary-written", course_id)
        os.replace(tmp, target)
        crash("renamed", course_id)
        fsync_dir(self.folder)


class BucketTarget:
    """``gs://BUCKET/PREFIX/COURSE.jsonl`` through google-cloud-storage (STORAGE_EMULATOR_HOST
    reaches the local stand-in)."""

    def __init__(self, uri: str, client: Any = None) -> None:
        if not uri.startswith("gs://"):
            raise ValueError(f"not a gs:// URI: {uri!r}")
        bucket, _, prefix = uri[len("gs://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {uri!r}")
        if client is None:
            import google.cloud.storage as storage

            client = storage.Client()
        self.bucket_name, self.prefix = bucket, prefix.strip("/")
        self.bucket = client.bucket(bucket)

    def name(self, course_id: str) -> str:
        check_course_id(course_id)
        return "/".join(p for p in (self.prefix, f"{course_id}.jsonl") if p)

    def location(self, course_id: str) -> str:
        return f"gs://{self.bucket_name}/{self.name(course_id)}"

    def read(self, course_id: str) -> bytes | None:
        blob = self.bucket.get_blob(self.name(course_id))
        if blob is None:
            return None
        data: bytes = blob.download_as_bytes(if_generation_match=blob.generation)
        return data

    def write(self, course_id: str, data: bytes, crash: Crash = no_crash) -> None:
        existing = self.bucket.get_blob(self.name(course_id))
        generation = existing.generation if existing is not None else 0  # 0: must not exist
        blob = self.bucket.blob(self.name(course_id))
        crash("before-upload", course_id)
        blob.upload_from_string(
            data, content_type="application/x-ndjson", if_generation_match=generation
        )
        crash("uploaded", course_id)


def target_for(where: str, client: Any = None) -> FolderTarget | BucketTarget:
    """``gs://bucket/prefix`` or a folder (a path or a ``file://`` URI)."""
    if where.startswith("gs://"):
        return BucketTarget(where, client)
    if where.startswith("file://"):
        return FolderTarget(unquote(urlparse(where).path))
    return FolderTarget(where)


def read_location(location: str, client: Any = None) -> bytes:
    """The bytes of one archive named by its URI (a tombstone's ``location``) or path."""
    if location.startswith("gs://"):
        if client is None:
            import google.cloud.storage as storage

            client = storage.Client()
        bucket, _, name = location[len("gs://") :].partition("/")
        data: bytes = client.bucket(bucket).blob(name).download_as_bytes()
        return data
    path = unquote(urlparse(location).path) if location.startswith("file://") else location
    return Path(path).read_bytes()
