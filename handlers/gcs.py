"""GCS artifact storage: ``gs://bucket/prefix/<course_id>/<name>`` objects behind the artifact port.

An upload becomes visible only when complete, so writes are atomic without a temporary name.
Uses ``google-cloud-storage`` (which honours STORAGE_EMULATOR_HOST for tests).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from handlers.artifacts import check_name

_CHUNK = 8 * 1024 * 1024


def parse_gs(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> (bucket, "some/prefix")."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


class GcsArtifacts:
    """Artifacts as GCS objects; ``scratch`` holds local copies and step work folders."""

    def __init__(self, uri: str, scratch: str | Path, client: Any = None) -> None:
        self.bucket_name, self.prefix = parse_gs(uri)
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        self.client = client
        self.bucket = client.bucket(self.bucket_name)
        self.scratch = Path(scratch)

    def object_name(self, course_id: str, name: str) -> str:
        check_name(course_id, name)
        return "/".join(p for p in (self.prefix, course_id, name) if p)

    def ref(self, course_id: str, name: str) -> str:
        return f"gs://{self.bucket_name}/{self.object_name(course_id, name)}"

    def put_bytes(self, course_id: str, name: str, data: bytes) -> str:
        blob = self.bucket.blob(self.object_name(course_id, name), chunk_size=_CHUNK)
        blob.upload_from_string(data, content_type=_content_type(name))
        return self.ref(course_id, name)

    def put_file(self, course_id: str, name: str, path: Path) -> str:
        blob = self.bucket.blob(self.object_name(course_id, name), chunk_size=_CHUNK)
        blob.upload_from_filename(str(path), content_type=_content_type(name))
        return self.ref(course_id, name)

    def _blob(self, ref: str) -> Any:
        bucket, name = parse_gs(ref)
        if bucket != self.bucket_name:
            raise ValueError(f"artifact reference outside this bucket: {ref!r}")
        if self.prefix and not name.startswith(self.prefix + "/"):
            raise ValueError(f"artifact reference outside the artifact prefix: {ref!r}")
        if ".." in name.split("/"):
            raise ValueError(f"unsafe artifact reference {ref!r}")
        return self.bucket.blob(name)

    def get_bytes(self, ref: str) -> bytes:
        data: bytes = self._blob(ref).download_as_bytes()
        return data

    def local_path(self, ref: str, scratch: Path) -> Path:
        blob = self._blob(ref)
        target = Path(scratch) / "gcs" / blob.name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            blob.download_to_file(tmp)
        shutil.move(tmp.name, target)
        return target

    def workdir(self, course_id: str, name: str) -> Path:
        check_name(course_id, name)
        path = self.scratch / "work" / course_id / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {
        ".json": "application/json",
        ".txt": "text/plain; charset=utf-8",
        ".vtt": "text/vtt",
        ".html": "text/html; charset=utf-8",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".mp4": "video/mp4",
        ".wav": "audio/wav",
    }.get(suffix, "application/octet-stream")
