"""COURSEGEN_LOCAL_BUCKETS: parsed and checked when read, and wired into the embedded runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.runtime import embedded
from bridge.settings import Settings, parse_local_buckets


def test_pairs_are_parsed_with_spaces_and_empty_items_ignored(tmp_path: Path) -> None:
    raw = f" lectures = {tmp_path}/a , b2={tmp_path}/x=y ,"
    assert parse_local_buckets(raw) == {"lectures": tmp_path / "a", "b2": tmp_path / "x=y"}
    assert parse_local_buckets("") == {}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("lectures", "'lectures' has no folder"),
        ("lectures=", "'lectures=' has no folder"),
        ("=/data", "'' is not a bucket name"),
        ("Lectures=/data", "'Lectures' is not a bucket name"),
        ("a/b=/data", "'a/b' is not a bucket name"),
        ("a=/x,a=/y", "bucket 'a' is named twice"),
    ],
)
def test_a_malformed_value_names_the_variable_the_value_and_what_is_allowed(
    raw: str, problem: str
) -> None:
    with pytest.raises(ValueError) as caught:
        _ = Settings.from_env({"COURSEGEN_LOCAL_BUCKETS": raw}).local_buckets
    message = str(caught.value)
    assert message.startswith(f"COURSEGEN_LOCAL_BUCKETS={raw!r}: ")
    assert problem in message and "bucket=folder" in message


def test_the_embedded_runtime_reads_gs_sources_from_the_mapped_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lectures"
    folder.mkdir()
    (folder / "week1.mp4").write_bytes(b"video bytes")
    settings = Settings.from_env({"COURSEGEN_LOCAL_BUCKETS": f"lectures={folder}"})
    rt = embedded(tmp_path / "data", settings=settings, steps={})
    try:
        dest = tmp_path / "copy.mp4"
        rt.artifacts.fetch_source("gs://lectures/week1.mp4", dest, max_bytes=100)
        assert dest.read_bytes() == b"video bytes"
    finally:
        rt.close()


def test_the_embedded_runtime_refuses_to_start_on_a_malformed_value(tmp_path: Path) -> None:
    settings = Settings.from_env({"COURSEGEN_LOCAL_BUCKETS": "no-folder-here"})
    with pytest.raises(ValueError, match="COURSEGEN_LOCAL_BUCKETS"):
        embedded(tmp_path / "data", settings=settings, steps={})
