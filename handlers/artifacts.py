"""Artifact storage: a local folder (embedded default) or GCS, behind one small port.

Writes go to a temporary name beside the target and are renamed into place, so a crash never
leaves a half-written artifact under its real name. The file is fsynced before the rename and
its folder after it, so an artifact is on disk before any event that names it is appended (a
power cut cannot leave a history pointing at an empty or missing file).

The same port reads a course's source video when it is named by a ``gs://bucket/object`` URI:
from Cloud Storage in the cloud, and from a folder mapped to the bucket on a laptop
(``COURSEGEN_LOCAL_BUCKETS``). Either way the copy is capped at ``max_bytes`` and appears
under its real name only complete.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Protocol

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$")
# Cloud Storage bucket names: lowercase letters, digits, '-', '_' and '.', starting and ending
# with a letter or a digit (the 3..63 length rule is Google's to enforce, not a safety rule).
BUCKET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?")
MAX_OBJECT_NAME_BYTES = 1024
LOCAL_BUCKETS_SETTING = "COURSEGEN_LOCAL_BUCKETS"
_CHUNK = 1 << 20
COPY_BLOCK_BYTES = 1 << 20


class SourceRefused(Exception):
    """Permanent: the source object cannot be read as named; retrying cannot help."""

    def __init__(self, reason: str, *, uri: str = "") -> None:
        super().__init__(f"{reason}: {uri}" if uri else reason)
        self.reason = reason
        self.uri = uri


class SourceUnavailable(Exception):
    """Transient: the source could not be read just now; a retry may succeed."""

    def __init__(self, reason: str, *, uri: str = "") -> None:
        super().__init__(f"{reason}: {uri}" if uri else reason)
        self.reason = reason
        self.uri = uri


class SourceReader(Protocol):
    def fetch_source(self, uri: str, dest: Path, *, max_bytes: int) -> Path:
        """Copy the object ``gs://bucket/object`` names into ``dest`` and return ``dest``.

        Raises SourceRefused (no such bucket or object, an unsafe name, more than
        ``max_bytes``) or SourceUnavailable (a retry may succeed). ``dest`` appears only
        complete; on any failure nothing is left under its name or beside it.
        """
        ...


class ArtifactStore(SourceReader, Protocol):
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


def split_source_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/object.mp4`` -> ("bucket", "some/object.mp4"), or SourceRefused.

    The object part is taken literally (no percent-decoding, ``?`` and ``#`` are part of the
    name, as in Cloud Storage). A bucket without an object, a name that is absolute, has
    empty, ``.`` or ``..`` segments, or contains control characters, is refused.
    """
    if not uri.startswith("gs://"):
        raise SourceRefused("not a gs:// URI", uri=uri)
    bucket, slash, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise SourceRefused("gs:// URI names no bucket", uri=uri)
    if not BUCKET_NAME.fullmatch(bucket):
        raise SourceRefused(
            f"bucket name {bucket!r} is not a Cloud Storage bucket name "
            "(lowercase letters, digits, '-', '_', '.')",
            uri=uri,
        )
    if not slash or not name:
        raise SourceRefused("gs:// URI names a bucket but no object", uri=uri)
    problem = _object_name_problem(name)
    if problem:
        raise SourceRefused(f"unsafe object name: {problem}", uri=uri)
    return bucket, name


def _object_name_problem(name: str) -> str | None:
    if len(name.encode("utf-8", "surrogatepass")) > MAX_OBJECT_NAME_BYTES:
        return f"longer than {MAX_OBJECT_NAME_BYTES} bytes"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "control characters"
    if name.startswith("/"):
        return "absolute (starts with '/')"
    if name.endswith("/"):
        return "names a folder, not an object"
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            return f"path segment {segment!r}"
    return None


class _CappedWriter:
    """Counts what is written and refuses to go past ``max_bytes``."""

    def __init__(self, out: IO[bytes], max_bytes: int, uri: str) -> None:
        self._out = out
        self._max = max_bytes
        self._uri = uri
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self._max:
            raise SourceRefused(f"source exceeds {self._max} bytes", uri=self._uri)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


@contextmanager
def capped_destination(dest: Path, max_bytes: int, uri: str) -> Iterator[_CappedWriter]:
    """A writer into a temporary file beside ``dest``, renamed onto ``dest`` when the block
    ends normally and deleted when it raises (more than ``max_bytes`` is SourceRefused)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield _CappedWriter(out, max_bytes, uri)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_name(course_id: str, name: str) -> None:
    if not _SAFE_NAME.match(name) or ".." in name.split("/"):
        raise ValueError(f"unsafe artifact name {name!r}")
    if not _SAFE_NAME.match(course_id) or "/" in course_id:
        raise ValueError(f"unsafe course id {course_id!r}")


class LocalArtifacts:
    """Artifacts under ``root/<course_id>/<name>``; references are ``file://`` URIs.

    ``buckets`` maps a bucket name to a folder, so that a source ``gs://bucket/a/b.mp4`` is
    read from ``folder/a/b.mp4`` (the laptop's stand-in for Cloud Storage).
    """

    def __init__(
        self, root: str | Path, *, buckets: Mapping[str, str | Path] | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.buckets = {name: Path(folder).resolve() for name, folder in (buckets or {}).items()}

    def path_for(self, course_id: str, name: str) -> Path:
        check_name(course_id, name)
        return self.root / course_id / name

    def put_bytes(self, course_id: str, name: str, data: bytes) -> str:
        return self._put(course_id, name, lambda f: f.write(data))

    def _put(self, course_id: str, name: str, write: Callable[[BinaryIO], object]) -> str:
        target = self.path_for(course_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
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

        def copy(sink: BinaryIO) -> None:  # a block at a time: a long lecture's video is large
            with open(path, "rb") as source:
                shutil.copyfileobj(source, sink, COPY_BLOCK_BYTES)

        return self._put(course_id, name, copy)

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

    def fetch_source(self, uri: str, dest: Path, *, max_bytes: int) -> Path:
        bucket, name = split_source_uri(uri)
        real = self._source_path(uri, bucket, name)
        try:
            # O_NOFOLLOW: a symlink swapped in after the check is not followed;
            # O_NONBLOCK: a FIFO in the folder must not hang the worker before the type check.
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise SourceRefused("no such object", uri=uri) from None
        except OSError as err:
            raise _source_os_error(err, uri) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which refuses a folder
            os.close(fd)
            raise SourceRefused("the object is not a regular file", uri=uri)
        with os.fdopen(fd, "rb") as src:
            if info.st_size > max_bytes:
                raise SourceRefused(f"source is {info.st_size} bytes, over {max_bytes}", uri=uri)
            with capped_destination(dest, max_bytes, uri) as out:
                try:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                except OSError as err:
                    raise SourceUnavailable(f"reading the object failed ({err})", uri=uri) from err
        return dest

    def _source_path(self, uri: str, bucket: str, name: str) -> Path:
        folder = self.buckets.get(bucket)
        if folder is None:
            mapped = ", ".join(sorted(self.buckets)) or "none"
            raise SourceRefused(
                f"bucket {bucket!r} is not mapped to a folder by {LOCAL_BUCKETS_SETTING} "
                f"(mapped: {mapped}; set {LOCAL_BUCKETS_SETTING}={bucket}=/path/to/folder)",
                uri=uri,
            )
        if not folder.is_dir():
            raise SourceRefused(
                f"the folder {str(folder)!r} that {LOCAL_BUCKETS_SETTING} maps bucket "
                f"{bucket!r} to is not a directory",
                uri=uri,
            )
        try:
            # strict: a dangling symlink must not slip past the containment check.
            real = (folder / name).resolve(strict=True)
        except FileNotFoundError:
            raise SourceRefused("no such object", uri=uri) from None
        except (OSError, RuntimeError) as err:
            raise SourceRefused(f"the object cannot be resolved ({err})", uri=uri) from None
        if not real.is_relative_to(folder):
            raise SourceRefused("the object resolves outside its bucket folder", uri=uri)
        return real


def _source_os_error(err: OSError, uri: str) -> Exception:
    if err.errno in (errno.ELOOP, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR):
        return SourceRefused(f"the object cannot be opened ({err.strerror})", uri=uri)
    return SourceUnavailable(f"the object cannot be opened ({err.strerror})", uri=uri)
