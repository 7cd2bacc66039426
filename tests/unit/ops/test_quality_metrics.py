"""The eval's coverage figure: recognised words per window of speech, a word counted at its own
time where the transcript has word times, else at its segment's midpoint."""

from __future__ import annotations

from typing import Any

from bridge.tooling.metrics import coverage

# Two windows of 15 s of speech each, five words each.
STRETCHES = [
    {"start": 0.0, "end": 16.0, "speech_end": 15.0, "spoken": "alpha bravo charlie delta echo"},
    {"start": 16.0, "end": 32.0, "speech_end": 31.0, "spoken": "foxtrot golf hotel india juliet"},
]
TEXT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"


def timed(start: float, step: float) -> list[dict[str, Any]]:
    return [
        {"start": start + k * step, "end": start + (k + 0.5) * step, "word": f" {w}"}
        for k, w in enumerate(TEXT.split())
    ]


def test_a_segment_over_two_windows_counts_each_word_where_it_was_said() -> None:
    words = timed(10.0, 2.0)  # words at 10, 12 and 14 s, then 16 to 28 s
    segment = {"start": 10.0, "end": 29.0, "text": TEXT, "words": words}
    before = sum(1 for w in words if (w["start"] + w["end"]) / 2 < 16.0)
    overall, worst = coverage(STRETCHES, [segment])
    assert before == 3
    assert worst == 3 / 5  # the first window heard three of its five words; the second all
    assert overall == (3 / 5 * 5 + 1.0 * 5) / 10


def test_without_word_times_the_segment_counts_at_its_midpoint() -> None:
    segment = {"start": 10.0, "end": 29.0, "text": TEXT}  # midpoint 19.5: the second window
    assert coverage(STRETCHES, [segment]) == (0.5, 0.0)
