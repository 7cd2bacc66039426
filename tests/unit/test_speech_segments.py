"""Segments never reach past the audio, whatever the decoder's timestamp grid says."""

from __future__ import annotations

from handlers.media.speech import _within


def test_a_last_segment_past_the_end_of_the_audio_is_clamped_to_it() -> None:
    seg = _within(76.8, 82.96, "giving rivers room to flood", 82.3)
    assert (seg.start, seg.end, seg.text) == (76.8, 82.3, "giving rivers room to flood")


def test_a_segment_wholly_past_the_end_becomes_empty_at_the_end() -> None:
    seg = _within(82.5, 83.0, "x", 82.3)
    assert seg.start == seg.end == 82.3


def test_a_segment_inside_the_audio_is_kept_as_decoded() -> None:
    seg = _within(1.23456, 3.6789, "rivers", 82.3)
    assert (seg.start, seg.end) == (1.235, 3.679)
