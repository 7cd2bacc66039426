"""Cutting audio over the upload limit in silences, and stitching the segments back."""

from __future__ import annotations

import itertools
import wave

import pytest

from handlers.ai.audio_chunks import (
    max_chunk_seconds,
    plan_cuts,
    scan,
    split_on_silence,
    stitch,
)
from tests.unit.ai.stub_server import voiced_regions

SILENCES = [(2.0, 3.0), (5.0, 6.0), (8.0, 9.0), (11.0, 12.0)]


def test_cuts_fall_in_the_last_silence_that_fits():
    assert plan_cuts(12.0, SILENCES, max_chunk_s=4.4) == [2.5, 5.5, 8.5]
    assert plan_cuts(12.0, SILENCES, max_chunk_s=7.0) == [5.5]
    assert plan_cuts(15.0, SILENCES, max_chunk_s=6.0) == [5.5, 11.5]
    assert plan_cuts(12.0, SILENCES, max_chunk_s=12.0) == []


def test_without_a_silence_the_cut_is_at_the_limit():
    assert plan_cuts(10.0, [], max_chunk_s=4.0) == [4.0, 8.0]
    # a pause right after the previous cut would make a tiny chunk: the limit wins
    assert plan_cuts(10.0, [(4.2, 4.4)], max_chunk_s=4.0) == [4.0, 8.0]


def test_no_chunk_is_ever_longer_than_the_limit():
    silences = [(t, t + 0.4) for t in (1.0, 7.5, 9.0, 17.0, 30.0, 31.0)]
    cuts = plan_cuts(40.0, silences, max_chunk_s=6.0)
    bounds = [0.0, *cuts, 40.0]
    assert all(0 < b - a <= 6.0 + 1e-9 for a, b in itertools.pairwise(bounds))


def test_max_chunk_seconds_leaves_room_for_the_header():
    assert max_chunk_seconds(25_000_000) == pytest.approx(742, abs=1)  # ~12 min of 16 kHz
    assert max_chunk_seconds(150_000) == pytest.approx(4.42, abs=0.01)


def test_scan_finds_the_duration_and_the_silences(lecture_wav):
    duration, silences = scan(lecture_wav)
    assert duration == pytest.approx(12.0, abs=0.05)
    flat = [t for pair in silences for t in pair]
    assert flat == pytest.approx([t for pair in SILENCES for t in pair], abs=0.05)


def test_a_small_file_goes_whole(lecture_wav, tmp_path):
    (chunk,) = split_on_silence(lecture_wav, tmp_path, max_bytes=10**6)
    assert chunk.path == lecture_wav and chunk.offset_s == 0.0


def test_a_large_file_is_cut_in_its_silences(lecture_wav, tmp_path):
    limit = 150_000
    chunks = split_on_silence(lecture_wav, tmp_path / "chunks", max_bytes=limit)

    assert [c.offset_s for c in chunks] == pytest.approx([0.0, 2.5, 5.5, 8.5], abs=0.05)
    assert sum(c.duration_s for c in chunks) == pytest.approx(12.0, abs=0.05)
    for chunk in chunks:
        assert chunk.path.stat().st_size <= limit
        with wave.open(str(chunk.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            assert w.getnframes() / 16000 == pytest.approx(chunk.duration_s, abs=0.01)
        # each chunk holds exactly one whole tone, 0.5 s in (the cut is mid-silence)
        _, regions = voiced_regions(chunk.path.read_bytes())
        assert len(regions) == 1
        assert regions[0][1] - regions[0][0] == pytest.approx(2.0, abs=0.1)


def test_a_limit_too_small_for_any_audio_is_refused(lecture_wav, tmp_path):
    with pytest.raises(ValueError, match="no room"):
        split_on_silence(lecture_wav, tmp_path, max_bytes=20_000)


def test_stitch_shifts_each_chunk_by_its_offset_and_drops_empty_text():
    parts = [
        (0.0, [{"start": 0.0, "end": 2.0, "text": " one "}]),
        (2.5, [{"start": 0.5, "end": 2.5, "text": "two"}, {"start": 2.6, "end": 2.9, "text": " "}]),
        (5.5, [{"start": 0.5, "end": 2.5, "text": "three"}]),
    ]
    assert stitch(parts) == [
        {"start": 0.0, "end": 2.0, "text": "one"},
        {"start": 3.0, "end": 5.0, "text": "two"},
        {"start": 6.0, "end": 8.0, "text": "three"},
    ]
