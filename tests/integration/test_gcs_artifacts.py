"""The GCS artifact adapter against gcp-storage-emulator served on 127.0.0.1."""

from __future__ import annotations

import pytest

from handlers.gcs import GcsArtifacts, parse_gs
from tests.emulators import storage_emulator, unique

storage = pytest.importorskip("google.cloud.storage")


@pytest.fixture(scope="module")
def client():
    mp = pytest.MonkeyPatch()
    with storage_emulator() as url:
        mp.setenv("STORAGE_EMULATOR_HOST", url)
        from google.auth.credentials import AnonymousCredentials

        yield storage.Client(project="test", credentials=AnonymousCredentials())
    mp.undo()


@pytest.fixture
def artifacts(client, tmp_path):
    bucket = unique("artifacts")
    client.create_bucket(bucket)
    return GcsArtifacts(f"gs://{bucket}/runs/v1", tmp_path, client=client)


def test_bytes_round_trip_through_a_gs_reference(artifacts):
    ref = artifacts.put_bytes("c1", "transcript.json", b'{"segments": []}')
    assert ref == f"gs://{artifacts.bucket_name}/runs/v1/c1/transcript.json"
    assert artifacts.get_bytes(ref) == b'{"segments": []}'
    blob = artifacts.client.bucket(artifacts.bucket_name).get_blob("runs/v1/c1/transcript.json")
    assert blob.content_type == "application/json"


def test_a_file_round_trips_and_downloads_to_scratch(artifacts, tmp_path):
    source = tmp_path / "frame.jpg"
    source.write_bytes(b"\xff\xd8" + bytes(range(256)) * 64)
    ref = artifacts.put_file("c1", "frames/0001.jpg", source)
    local = artifacts.local_path(ref, tmp_path / "scratch")
    assert local.read_bytes() == source.read_bytes()
    assert local.is_relative_to(tmp_path / "scratch")


def test_overwrite_replaces_the_object_whole(artifacts):
    artifacts.put_bytes("c1", "course.json", b"old")
    ref = artifacts.put_bytes("c1", "course.json", b"new and longer")
    assert artifacts.get_bytes(ref) == b"new and longer"


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", ""])
def test_unsafe_names_are_refused(artifacts, name):
    with pytest.raises(ValueError, match="unsafe"):
        artifacts.put_bytes("c1", name, b"x")


@pytest.mark.parametrize(
    "ref", ["gs://other-bucket/runs/v1/c1/x", "file:///etc/passwd", "gs://{b}/elsewhere/c1/x"]
)
def test_references_outside_the_store_are_refused(artifacts, ref):
    with pytest.raises(ValueError):
        artifacts.get_bytes(ref.format(b=artifacts.bucket_name))


def test_workdir_is_local(artifacts, tmp_path):
    work = artifacts.workdir("c1", "frames")
    assert work.is_dir() and work.is_relative_to(tmp_path)


def test_parse_gs():
    assert parse_gs("gs://b/p/q/") == ("b", "p/q")
    assert parse_gs("gs://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_gs("https://b/p")
