"""LocalArtifacts as a laptop's Cloud Storage: gs://bucket/x read from a mapped folder, and
never from outside it (the shared behaviour is in tests/contract/test_artifact_store.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from handlers.artifacts import LocalArtifacts, SourceRefused, capped_destination


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bucket"
    folder.mkdir()
    (folder / "lecture.mp4").write_bytes(b"lecture")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    return folder


@pytest.fixture
def store(tmp_path: Path, folder: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "artifacts", buckets={"lectures": folder})


def test_an_unmapped_bucket_names_the_setting_and_the_mapped_ones(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    with pytest.raises(SourceRefused) as caught:
        store.fetch_source("gs://other/lecture.mp4", tmp_path / "o", max_bytes=100)
    message = str(caught.value)
    assert "'other' is not mapped" in message and "COURSEGEN_LOCAL_BUCKETS" in message
    assert "mapped: lectures" in message


def test_no_buckets_at_all_says_none_are_mapped(tmp_path: Path) -> None:
    store = LocalArtifacts(tmp_path / "artifacts")
    with pytest.raises(SourceRefused, match=r"mapped: none"):
        store.fetch_source("gs://lectures/lecture.mp4", tmp_path / "o", max_bytes=100)


def test_a_symlink_out_of_the_folder_is_refused(
    store: LocalArtifacts, folder: Path, tmp_path: Path
) -> None:
    (folder / "link.mp4").symlink_to(tmp_path / "secret.txt")
    (folder / "dir").symlink_to(tmp_path, target_is_directory=True)
    for name in ("link.mp4", "dir/secret.txt"):
        dest = tmp_path / "out"
        with pytest.raises(SourceRefused, match="outside its bucket folder"):
            store.fetch_source(f"gs://lectures/{name}", dest, max_bytes=100)
        assert not dest.exists()


def test_a_symlink_inside_the_folder_is_followed(
    store: LocalArtifacts, folder: Path, tmp_path: Path
) -> None:
    (folder / "alias.mp4").symlink_to(folder / "lecture.mp4")
    dest = store.fetch_source("gs://lectures/alias.mp4", tmp_path / "o", max_bytes=100)
    assert dest.read_bytes() == b"lecture"


def test_a_dangling_symlink_is_no_such_object(
    store: LocalArtifacts, folder: Path, tmp_path: Path
) -> None:
    (folder / "gone.mp4").symlink_to(tmp_path / "nowhere")
    with pytest.raises(SourceRefused, match="no such object"):
        store.fetch_source("gs://lectures/gone.mp4", tmp_path / "o", max_bytes=100)


def test_a_fifo_or_a_folder_is_not_an_object(
    store: LocalArtifacts, folder: Path, tmp_path: Path
) -> None:
    os.mkfifo(folder / "pipe.mp4")
    (folder / "sub").mkdir()
    for name in ("pipe.mp4", "sub"):
        with pytest.raises(SourceRefused, match="not a regular file"):
            store.fetch_source(f"gs://lectures/{name}", tmp_path / "o", max_bytes=100)


def test_a_mapped_folder_that_is_missing_is_named(tmp_path: Path) -> None:
    store = LocalArtifacts(tmp_path / "artifacts", buckets={"lectures": tmp_path / "nope"})
    with pytest.raises(SourceRefused, match="is not a directory"):
        store.fetch_source("gs://lectures/a.mp4", tmp_path / "o", max_bytes=100)


def test_the_copy_is_capped_while_streaming(tmp_path: Path) -> None:
    # What a source that grows after its size was checked meets: the count decides.
    dest = tmp_path / "out"
    with (
        pytest.raises(SourceRefused, match="exceeds 5 bytes"),
        capped_destination(dest, 5, "gs://b/o") as out,
    ):
        out.write(b"abc")
        out.write(b"def")
    assert not dest.exists() and not list(tmp_path.glob(".out.*"))
