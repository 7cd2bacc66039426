"""One suite for the artifact port, run against every adapter: the local folder (with
COURSEGEN_LOCAL_BUCKETS folders as source buckets) and GCS on fake-gcs-server.

The GCS adapter talks to ``STORAGE_EMULATOR_HOST`` when it is set (``.ci/emulators.sh``) and
to a fake-gcs-server of this module's own on 127.0.0.1 otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handlers.artifacts import ArtifactStore, LocalArtifacts, SourceRefused
from handlers.gcs import GcsArtifacts
from tests.emulators import storage_client, storage_emulator, unique

VIDEO = os.urandom(300 * 1024 + 7)  # several download chunks, not a round number


@dataclass
class Case:
    """An adapter, a source bucket it can read, and how to put a source object there."""

    store: ArtifactStore
    bucket: str
    put_source: Callable[[str, bytes], None]
    scratch: Path

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"


@pytest.fixture(scope="module")
def gcs_client() -> Iterator[Any]:
    with storage_emulator() as url:
        yield storage_client(url)


def _local(tmp_path: Path) -> Case:
    bucket, folder = unique("lectures"), tmp_path / "bucket"
    folder.mkdir()

    def put_source(name: str, data: bytes) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    store = LocalArtifacts(tmp_path / "artifacts", buckets={bucket: folder})
    return Case(store, bucket, put_source, tmp_path / "scratch")


def _gcs(client: Any, tmp_path: Path) -> Case:
    artifacts, sources = unique("artifacts"), unique("lectures")  # two buckets
    client.create_bucket(artifacts)
    client.create_bucket(sources)

    def put_source(name: str, data: bytes) -> None:
        client.bucket(sources).blob(name).upload_from_string(data, content_type="video/mp4")

    store = GcsArtifacts(f"gs://{artifacts}/runs", tmp_path / "gcs-scratch", client=client)
    return Case(store, sources, put_source, tmp_path / "scratch")


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.emulator)])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "local":
        return _local(tmp_path)
    return _gcs(request.getfixturevalue("gcs_client"), tmp_path)


def assert_nothing_at(dest: Path) -> None:
    """Neither the file nor a temporary one beside it."""
    assert not dest.exists()
    assert not list(dest.parent.glob(f".{dest.name}.*"))


# ---- artifacts ----------------------------------------------------------------------------


def test_bytes_round_trip(case: Case) -> None:
    ref = case.store.put_bytes("c1", "transcript.json", b'{"segments": []}')
    assert case.store.get_bytes(ref) == b'{"segments": []}'


def test_a_file_round_trips_and_is_readable_locally(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "frame.jpg"
    source.write_bytes(b"\xff\xd8" + bytes(range(256)) * 64)
    ref = case.store.put_file("c1", "frames/0001.jpg", source)
    assert case.store.get_bytes(ref) == source.read_bytes()
    assert case.store.local_path(ref, case.scratch).read_bytes() == source.read_bytes()


def test_an_overwrite_replaces_the_artifact_whole(case: Case) -> None:
    case.store.put_bytes("c1", "course.json", b"old and much longer")
    ref = case.store.put_bytes("c1", "course.json", b"new")
    assert case.store.get_bytes(ref) == b"new"


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", "", ".hidden", "a b"])
def test_unsafe_artifact_names_are_refused(case: Case, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        case.store.put_bytes("c1", name, b"x")


@pytest.mark.parametrize("course_id", ["../c", "a/b", ""])
def test_unsafe_course_ids_are_refused(case: Case, course_id: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        case.store.put_bytes(course_id, "x.json", b"x")


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "gs://elsewhere/runs/c1/x.json"])
def test_references_outside_the_store_are_refused(case: Case, ref: str) -> None:
    with pytest.raises(ValueError):
        case.store.get_bytes(ref)


def test_a_workdir_is_a_local_folder(case: Case) -> None:
    work = case.store.workdir("c1", "media")
    assert work.is_dir()
    (work / "probe").write_bytes(b"ok")


# ---- sources (gs://bucket/object) ---------------------------------------------------------


def test_a_source_within_the_cap_is_copied_whole(case: Case, tmp_path: Path) -> None:
    case.put_source("term 1/week-2/lecture.mp4", VIDEO)
    dest = tmp_path / "work" / "source.bin"
    got = case.store.fetch_source(case.uri("term 1/week-2/lecture.mp4"), dest, max_bytes=len(VIDEO))
    assert got == dest and dest.read_bytes() == VIDEO  # exactly at the cap is allowed
    assert [p.name for p in dest.parent.iterdir()] == ["source.bin"]  # no temporary left


def test_a_source_over_the_cap_is_refused_and_leaves_nothing(case: Case, tmp_path: Path) -> None:
    case.put_source("lecture.mp4", VIDEO)
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceRefused, match=f"over {len(VIDEO) - 1}"):
        case.store.fetch_source(case.uri("lecture.mp4"), dest, max_bytes=len(VIDEO) - 1)
    assert_nothing_at(dest)


def test_a_failed_fetch_keeps_what_was_at_dest(case: Case, tmp_path: Path) -> None:
    case.put_source("lecture.mp4", VIDEO)
    dest = tmp_path / "source.bin"
    dest.write_bytes(b"earlier copy")
    with pytest.raises(SourceRefused):
        case.store.fetch_source(case.uri("lecture.mp4"), dest, max_bytes=10)
    assert dest.read_bytes() == b"earlier copy"
    assert not list(tmp_path.glob(".source.bin.*"))


def test_a_missing_object_is_a_permanent_error(case: Case, tmp_path: Path) -> None:
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceRefused, match="no such object"):
        case.store.fetch_source(case.uri("not-there.mp4"), dest, max_bytes=10**6)
    assert_nothing_at(dest)


def test_an_unknown_bucket_is_a_permanent_error(case: Case, tmp_path: Path) -> None:
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceRefused, match="bucket"):
        case.store.fetch_source(f"gs://{unique('nobody')}/a.mp4", dest, max_bytes=10**6)
    assert_nothing_at(dest)


@pytest.mark.parametrize(
    "name",
    ["../lecture.mp4", "a/../../lecture.mp4", "/abs/lecture.mp4", "a/./b.mp4", "", "folder/"],
)
def test_object_names_that_could_escape_are_refused(case: Case, tmp_path: Path, name: str) -> None:
    case.put_source("lecture.mp4", VIDEO)
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceRefused, match=r"unsafe object name|no object"):
        case.store.fetch_source(case.uri(name), dest, max_bytes=10**6)
    assert_nothing_at(dest)


def test_a_uri_that_is_not_gs_is_refused(case: Case, tmp_path: Path) -> None:
    with pytest.raises(SourceRefused, match="not a gs:// URI"):
        case.store.fetch_source("file:///etc/passwd", tmp_path / "o", max_bytes=10**6)
