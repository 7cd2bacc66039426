"""Planning cuts of audio over the upload limit in its silences, and stitching the segments back
(the cuts of a real file, made with ffmpeg, are in tests/integration/ai/test_audio_silences.py)."""

from __future__ import annotations

import itertools

import pytest

from handlers.ai.audio_chunks import (
    max_chunk_seconds,
    plan_cuts,
    stitch,
)

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
