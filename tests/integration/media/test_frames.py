"""Tests for key-frame extraction on the sample lecture and on small generated videos."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from handlers.media.frames import (
    Frame,
    _candidate_of,
    _thin,
    decode_only_seconds,
    extract_frames,
    hamming,
    phash,
    same_picture,
    write_manifest,
)


@pytest.fixture(scope="module")
def sample_frames(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Frame]:
    return extract_frames(sample, tmp_path_factory.mktemp("frames"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_every_slide_change_has_a_scene_frame(sample_frames: list[Frame], ground_truth: dict):
    scene_times = [f.t for f in sample_frames if f.kind == "scene"]
    for slide in ground_truth["slides"]:
        nearest = min(abs(t - slide["start"]) for t in scene_times)
        assert nearest <= 1.0, f"slide {slide['index']} at {slide['start']} s has no scene frame"


def test_first_frame_is_kept(sample_frames: list[Frame]) -> None:
    assert sample_frames[0].t == 0.0
    assert sample_frames[0].name == "frame_00000000.jpg"


def test_frames_are_named_by_time_and_sorted(sample_frames: list[Frame]) -> None:
    assert [f.t for f in sample_frames] == sorted(f.t for f in sample_frames)
    for frame in sample_frames:
        assert frame.name == f"frame_{round(frame.t * 1000):08d}.jpg"
        assert frame.path.is_file()
        assert frame.kind in ("scene", "interval")
        assert len(frame.phash) == 16
        assert phash(frame.path) == int(frame.phash, 16)


def test_no_two_frames_are_near_duplicates(sample_frames: list[Frame]) -> None:
    """Close hashes are allowed (slides of one template) only for different pictures."""
    for a, b in itertools.combinations(sample_frames, 2):
        if hamming(int(a.phash, 16), int(b.phash, 16)) <= 6:
            pictures = (_candidate_of(f.kind, f.t, f.path) for f in (a, b))
            assert not same_picture(*pictures), (a.name, b.name)


def test_rerun_writes_identical_files_and_removes_stale_ones(sample: Path, tmp_path: Path):
    first = extract_frames(sample, tmp_path)
    before = snapshot(tmp_path)
    (tmp_path / "frame_99999999.jpg").write_bytes(b"left over from another video")
    second = extract_frames(sample, tmp_path)
    assert first == second
    assert snapshot(tmp_path) == before  # no stale frame and no temporary folder left


def test_max_frames_cap_is_respected(sample: Path, tmp_path: Path) -> None:
    # A short interval and no dedupe give far more candidates than the cap.
    frames = extract_frames(sample, tmp_path, interval_s=1.0, dedupe_distance=-1, max_frames=7)
    assert len(frames) == 7
    assert frames[0].t == 0.0
    assert len(list(tmp_path.glob("frame_*.jpg"))) == 7
    gaps = [b.t - a.t for a, b in itertools.pairwise(frames)]
    assert max(gaps) < 3 * min(gaps)  # evenly spread, not bunched at one end


def test_static_video_gives_only_the_first_frame(make_video: Callable[..., Path], tmp_path):
    video = make_video("still.mp4", source="color=c=navy", seconds=3, audio=False)
    frames = extract_frames(video, tmp_path / "frames", interval_s=1.0)
    assert [(f.t, f.name) for f in frames] == [(0.0, "frame_00000000.jpg")]


def test_interval_frames_fill_gaps_between_scenes(make_video: Callable[..., Path], tmp_path):
    video = make_video("moving.mp4", seconds=3, rate=10)
    frames = extract_frames(video, tmp_path / "frames", interval_s=1.0, dedupe_distance=-1)
    assert {1.0, 2.0} <= {f.t for f in frames if f.kind == "interval"}


def test_manifest_lists_frames(sample_frames: list[Frame], tmp_path: Path) -> None:
    manifest = tmp_path / "frames.json"
    write_manifest(sample_frames, manifest)
    rows = json.loads(manifest.read_text())["frames"]
    assert [r["name"] for r in rows] == [f.name for f in sample_frames]
    assert set(rows[0]) == {"name", "t", "kind", "phash"}
    assert [p.name for p in tmp_path.iterdir()] == ["frames.json"]


def test_phash_separates_different_pictures(tmp_path: Path) -> None:
    paths = []
    for index, text_box in enumerate([(10, 10, 60, 30), (10, 10, 60, 30), (70, 40, 120, 90)]):
        image = Image.new("RGB", (128, 96), "white")
        ImageDraw.Draw(image).rectangle(text_box, fill="black")
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    same, twin, other = (phash(p) for p in paths)
    assert same == twin
    assert hamming(same, other) > 6


def test_decode_only_seconds_measures_a_decode(make_video: Callable[..., Path]) -> None:
    assert 0.0 < decode_only_seconds(make_video()) < 30.0


@given(count=st.integers(0, 300), cap=st.integers(1, 150))
def test_thinning_keeps_the_first_and_an_even_spread(count: int, cap: int) -> None:
    items = list(range(count))
    thinned = _thin(items, cap)  # type: ignore[arg-type]
    assert len(thinned) == min(count, cap)
    assert thinned == sorted(set(thinned))
    if count:
        assert thinned[0] == 0


def test_times_start_at_zero_when_the_stream_does_not(make_video: Callable[..., Path], tmp_path):
    video = make_video("broadcast.ts", seconds=3, audio=False)  # MPEG-TS clocks start near 1.4 s
    frames = extract_frames(video, tmp_path / "frames", interval_s=1.0, dedupe_distance=-1)
    assert frames[0].t == 0.0
    assert max(f.t for f in frames) < 3.0
