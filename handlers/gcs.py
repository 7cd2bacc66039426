"""GCS artifact storage: ``gs://bucket/prefix/<course_id>/<name>`` objects behind the artifact port.

An upload becomes visible only when complete, so writes are atomic without a temporary name.
Source videos are read from any bucket the service may read (not only the artifact bucket).
Uses ``google-cloud-storage`` (which honours STORAGE_EMULATOR_HOST for tests).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from handlers.artifacts import (
    SourceRefused,
    SourceUnavailable,
    capped_destination,
    check_name,
    split_source_uri,
)

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

    def __init__(
        self, uri: str, scratch: str | Path, client: Any = None, *, source_retry: Any = None
    ) -> None:
        """``source_retry``: a ``google.api_core.retry.Retry`` for source reads (default:
        the client library's, which retries 429, 5xx and connection errors for 120 s)."""
        self.bucket_name, self.prefix = parse_gs(uri)
        self._retry = {} if source_retry is None else {"retry": source_retry}
        if client is None:
            import google.cloud.storage as storage

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
        target: Path = Path(scratch) / "gcs" / str(blob.name)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            try:
                blob.download_to_file(tmp)
            except BaseException:
                tmp.close()
                Path(tmp.name).unlink(missing_ok=True)  # no half download left behind
                raise
        shutil.move(tmp.name, target)
        return target

    def workdir(self, course_id: str, name: str) -> Path:
        check_name(course_id, name)
        path = self.scratch / "work" / course_id / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch_source(self, uri: str, dest: Path, *, max_bytes: int) -> Path:
        bucket_name, name = split_source_uri(uri)
        bucket = self.client.bucket(bucket_name)
        with _reading_source(uri):
            blob = bucket.get_blob(name, **self._retry)  # None: no such object or bucket
        if blob is None:
            raise SourceRefused("no such object (or no such bucket)", uri=uri)
        if blob.size is not None and blob.size > max_bytes:
            raise SourceRefused(f"source is {blob.size} bytes, over {max_bytes}", uri=uri)
        # Read the generation whose size was checked: an overwrite in between cannot slip a
        # different (larger) object past the check; the stream is capped all the same.
        pinned = bucket.blob(name, generation=blob.generation)
        with _reading_source(uri, changing=True), capped_destination(dest, max_bytes, uri) as out:
            pinned.download_to_file(out, **self._retry)
        return dest


@contextmanager
def _reading_source(uri: str, *, changing: bool = False) -> Iterator[None]:
    """Cloud Storage errors as SourceRefused (permanent) or SourceUnavailable (transient)."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.cloud.storage.exceptions import DataCorruption

    try:
        yield
    except (SourceRefused, SourceUnavailable):
        raise
    except api.NotFound as err:
        if changing:  # it was there a moment ago: overwritten or deleted while being read
            raise SourceUnavailable("the object changed while it was read", uri=uri) from err
        raise SourceRefused("no such object (or no such bucket)", uri=uri) from err
    except (api.Unauthorized, api.Forbidden) as err:
        raise SourceRefused(f"access to the object was denied (HTTP {err.code})", uri=uri) from err
    except api.GoogleAPICallError as err:
        code = int(err.code or 0)
        if code >= 500 or code in (0, 408, 429):
            raise SourceUnavailable(f"Cloud Storage answered {code or err}", uri=uri) from err
        raise SourceRefused(f"Cloud Storage refused the read (HTTP {code})", uri=uri) from err
    except DataCorruption as err:
        raise SourceUnavailable("the download failed its checksum", uri=uri) from err
    except (api.RetryError, auth.TransportError, auth.RefreshError, OSError) as err:
        # Network, credentials refresh, retries given up, a full scratch disk: retry later.
        raise SourceUnavailable(f"reading the object failed ({err!r:.200})", uri=uri) from err


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
