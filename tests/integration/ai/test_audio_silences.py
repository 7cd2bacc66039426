"""Finding silences in a real WAV file with ffmpeg and cutting it there."""

from __future__ import annotations

import wave

import pytest

from handlers.ai.audio_chunks import (
    scan,
    split_on_silence,
)
from tests.unit.ai.stub_server import voiced_regions

SILENCES = [(2.0, 3.0), (5.0, 6.0), (8.0, 9.0), (11.0, 12.0)]  # lecture_wav's (conftest)


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
