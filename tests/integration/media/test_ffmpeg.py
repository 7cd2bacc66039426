"""Tests for probe, prepare and run_ffmpeg against the real bundled ffmpeg."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from handlers.media.ffmpeg import MediaError, VideoInfo, prepare, probe, run_ffmpeg

MakeVideo = Callable[..., Path]


def cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def expect_error(kind: str, path: Path, **limits: float) -> MediaError:
    with pytest.raises(MediaError) as caught:
        probe(path, **limits)  # type: ignore[arg-type]
    assert caught.value.kind == kind
    assert caught.value.permanent
    assert path.name in str(caught.value)
    return caught.value


def test_probe_describes_the_sample(sample: Path, ground_truth: dict) -> None:
    info = probe(sample)
    assert info.duration_s == pytest.approx(ground_truth["duration"], abs=0.1)
    assert (info.width, info.height, info.fps) == (1280, 720, 10.0)
    assert (info.video_codec, info.audio_codec, info.has_audio) == ("h264", "aac", True)
    assert info.size_bytes == sample.stat().st_size
    assert info.to_dict()["duration_s"] == info.duration_s


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    assert "empty" in str(expect_error("empty", path))


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    expect_error("empty", tmp_path / "absent.mp4")


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are lecture notes, not a video\n" * 20)
    expect_error("not_video", path)


def test_audio_only_file_is_not_a_video(tmp_path: Path, ffmpeg) -> None:
    path = tmp_path / "talk.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(path))
    assert "audio only" in str(expect_error("not_video", path))


def test_half_of_a_faststart_file_is_truncated(sample: Path, tmp_path: Path) -> None:
    # The sample keeps its index up front, so only a decode of the tail notices the cut.
    expect_error("truncated", cut(sample, tmp_path / "half.mp4", 0.5))


def test_file_missing_its_last_bytes_is_truncated(sample: Path, tmp_path: Path) -> None:
    expect_error("truncated", cut(sample, tmp_path / "short.mp4", 0.995))


def test_half_of_an_index_last_file_is_truncated(sample: Path, tmp_path: Path, ffmpeg) -> None:
    index_last = tmp_path / "index_last.mp4"
    ffmpeg("-i", str(sample), "-c", "copy", str(index_last))
    error = expect_error("truncated", cut(index_last, tmp_path / "half.mp4", 0.5))
    assert "moov" in str(error)


def test_limits_reject_long_and_large_files(sample: Path) -> None:
    assert "limit of 60 s" in str(expect_error("too_long", sample, max_seconds=60))
    expect_error("too_large", sample, max_bytes=100_000)
    assert probe(sample, max_seconds=90, max_bytes=1_000_000).duration_s > 60


def test_portrait_and_two_second_videos_probe(make_video: MakeVideo) -> None:
    info = probe(make_video("portrait.mp4", size="360x640", seconds=2, rate=25))
    assert (info.width, info.height, info.fps) == (360, 640, 25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)


def test_rotated_phone_video_reports_what_viewers_see(
    make_video: MakeVideo, tmp_path: Path, ffmpeg
):
    landscape = make_video("landscape.mp4", size="640x360", audio=False)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation:v", "90", "-i", str(landscape), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert (info.width, info.height) == (360, 640)


def test_prepare_copies_h264_aac_and_extracts_16k_mono(sample: Path, tmp_path: Path) -> None:
    prepared = prepare(sample, tmp_path / "out")
    assert probe(prepared.video).to_dict() | {"size_bytes": 0} == (
        prepared.info.to_dict() | {"size_bytes": 0}
    )
    assert prepared.audio is not None
    with wave.open(str(prepared.audio), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() / 16000 == pytest.approx(prepared.info.duration_s, abs=0.2)


def test_prepare_reencodes_other_codecs(make_video: MakeVideo, tmp_path: Path) -> None:
    source = make_video("old.avi", size="321x241", video_codec="mpeg4", audio_codec="mp3")
    prepared = prepare(source, tmp_path / "out")
    info = probe(prepared.video)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (320, 240)  # yuv420p needs even sides


def test_a_long_reencode_goes_in_pieces_side_by_side(make_video: MakeVideo, ffmpeg, tmp_path: Path):
    """A source that needs re-encoding is cut into time pieces (here 2 s, so three), encoded
    at most 720p two at a time, and joined with one audio pass: nothing lost at the joins."""
    source = make_video(
        "talk.avi", size="1920x1080", seconds=6.0, video_codec="mpeg4", audio_codec="mp3"
    )
    prepared = prepare(source, tmp_path / "out", parallel=2, piece_s=2.0)
    info = probe(prepared.video)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_s == pytest.approx(6.0, abs=0.15)
    frames = ffmpeg("-i", str(prepared.video), "-map", "0:v:0", "-f", "framecrc", "-").stdout
    assert sum(1 for line in frames.splitlines() if line and not line.startswith("#")) == 60
    assert prepared.audio is not None
    with wave.open(str(prepared.audio), "rb") as wav:
        assert wav.getnframes() / 16000 == pytest.approx(6.0, abs=0.1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["audio.wav", "video.mp4"]


def test_video_without_audio_gives_no_audio_track(make_video: MakeVideo, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "audio.wav").write_bytes(b"stale track from an earlier run")
    prepared = prepare(make_video("silent.mp4", audio=False), out)
    assert prepared.audio is None
    assert not (out / "audio.wav").exists()
    assert probe(prepared.video).has_audio is False


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_prepare_rerun_overwrites_identically(make_video: MakeVideo, tmp_path: Path, codec):
    source = make_video(f"in_{codec}.mkv", video_codec=codec)
    first = prepare(source, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (first.video, first.audio) if p}
    second = prepare(source, tmp_path / "out")
    after = {p.name: p.read_bytes() for p in (second.video, second.audio) if p}
    assert before == after
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["audio.wav", "video.mp4"]


def test_prepare_failure_leaves_no_artifact(tmp_path: Path) -> None:
    fake = VideoInfo(
        duration_s=1.0,
        width=2,
        height=2,
        fps=1.0,
        video_codec="h264",
        has_audio=True,
        audio_codec="aac",
        size_bytes=10,
        container="mov,mp4",
    )
    source = tmp_path / "broken.mp4"
    source.write_text("not a video")
    with pytest.raises(MediaError) as caught:
        prepare(source, tmp_path / "out", info=fake)
    assert caught.value.kind == "ffmpeg_failed"
    assert list((tmp_path / "out").iterdir()) == []


def test_run_ffmpeg_timeout_is_transient() -> None:
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc", "-f", "null", "-"], timeout=0.5)
    assert (caught.value.kind, caught.value.permanent) == ("ffmpeg_failed", False)
    assert "timed out" in str(caught.value)


def test_run_ffmpeg_failure_carries_stderr(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(["-i", str(tmp_path / "absent.mp4"), "-f", "null", "-"], timeout=10)
    assert (caught.value.kind, caught.value.permanent) == ("ffmpeg_failed", True)
    assert "No such file" in str(caught.value)


def test_media_error_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        MediaError("exploded", "no such kind")
