"""Per-slide biasing kept only where the unprompted model prefers it (handlers/media/refine.py):
the slide ranges from analyze_frames' frames, the choice, and the splice into the transcript.
The decoder is a fake here; tests/e2e/test_quality_slice.py runs the real one (the sample and
no-title are held to WER 0.12 there, which they meet only with it)."""

from __future__ import annotations

import math

import pytest

from handlers.media.refine import (
    MAX_WORDS_KEPT,
    MIN_WORDS_KEPT,
    SlideRange,
    mean_log_probability,
    prefer_biased,
    refine,
    slide_ranges,
)
from handlers.media.speech import Segment, Word


def frame(t: float, title: str, *body: str) -> dict:
    return {"name": f"f{t}", "t": t, "title": title, "body": list(body)}


def test_a_range_per_title_from_its_first_frame_to_the_next_title():
    frames = [
        frame(30.0, "Hash Maps", "Buckets hold keys"),
        frame(0.0, "Graphs", "Nodes and edges"),
        frame(12.0, "Graphs", "Nodes and edges", "Paths"),
        frame(50.0, "", "untitled bullet"),
    ]
    ranges = slide_ranges(frames, 70.0)
    assert [(r.start, r.end) for r in ranges] == [(0.0, 30.0), (30.0, 50.0), (50.0, 70.0)]
    assert ranges[0].lines == ("Graphs", "Nodes and edges", "Paths")
    assert ranges[2].lines == ("untitled bullet",)
    assert slide_ranges([], 10.0) == []


def test_the_biased_words_win_only_with_as_many_words_and_a_better_unprompted_score():
    heard = [0.4, 0.5, 0.6, 0.5]
    assert prefer_biased(heard, [0.9, 0.8, 0.9, 0.7])
    assert not prefer_biased(heard, [0.3, 0.4, 0.5, 0.4])  # the model likes them less
    assert not prefer_biased(heard, [0.99, 0.99])  # half the words: speech was skipped
    assert not prefer_biased(heard, [0.99] * 8)  # twice the words: a loop, or the slide read out
    assert prefer_biased(heard, [0.99] * 7)  # 1.25 times as many, and two more
    assert prefer_biased(heard * 10, [0.9] * math.ceil(MIN_WORDS_KEPT * 40))
    assert not prefer_biased(heard * 10, [0.9] * (int(MAX_WORDS_KEPT * 40) + 3))
    assert not prefer_biased([], [0.9])  # nothing heard there: a prompt over silence
    assert not prefer_biased(heard, [])
    assert not prefer_biased([None, 0.5], [0.9, 0.9])  # no score to compare by
    assert mean_log_probability([0.0, 1.0]) > -20  # a zero does not make it -inf


def w(start: float, word: str, p: float) -> dict:
    return {"start": start, "end": start + 0.4, "word": word, "probability": p}


HEARD = [
    {
        "start": 0.0,
        "end": 4.0,
        "text": "Graphs have nodes.",
        "words": [w(0.0, " Graphs", 0.9), w(1.0, " have", 0.9), w(2.0, " nodes.", 0.9)],
    },
    {
        "start": 5.0,
        "end": 9.0,
        "text": "A has map stores keys. And more.",
        "words": [
            w(5.0, " A", 0.5),
            w(6.0, " has", 0.2),
            w(6.5, " map", 0.4),
            w(7.0, " stores", 0.6),
            w(7.5, " keys.", 0.6),
            w(9.2, " And", 0.8),
            w(9.6, " more.", 0.8),
        ],
    },
]
RANGES = [SlideRange(0.0, 4.5, ("Graphs",)), SlideRange(4.5, 9.0, ("Hash Maps",))]


def biased_decode(span: SlideRange) -> list[Segment]:
    if span.start == 0.0:  # the first slide: worse when prompted
        said = [(0.0, " Grass", 0.1), (1.0, " have", 0.9), (2.0, " nodes.", 0.9)]
    else:
        said = [(5.0, " A", 0.6), (6.0, " hash", 0.7), (6.5, " map", 0.8),
                (7.0, " stores", 0.6), (7.5, " keys.", 0.6)]  # fmt: skip
    words = tuple(Word(start=a, end=a + 0.4, word=t, probability=p) for a, t, p in said)
    return [Segment(start=words[0].start, end=words[-1].end, text="", words=words)]


def test_the_preferred_ranges_are_spliced_in_and_the_rest_is_kept_as_heard():
    done = refine(HEARD, RANGES, biased_decode)
    assert (done.ranges, done.decoded, done.replaced) == (2, 2, 1)
    texts = [s["text"] for s in done.segments]
    assert texts == ["Graphs have nodes.", "A hash map stores keys.", "And more."]
    assert done.segments[0] == HEARD[0]  # untouched: kept whole, as it was
    tail = done.segments[2]
    assert (tail["start"], tail["end"]) == (9.2, 10.0)  # bounded by its surviving words
    assert [x["word"] for x in done.segments[1]["words"]][1] == " hash"


def test_a_range_without_slide_text_or_without_words_heard_is_not_decoded():
    calls: list[SlideRange] = []

    def decode(span: SlideRange) -> list[Segment]:
        calls.append(span)
        return biased_decode(span)

    quiet = [SlideRange(0.0, 4.5, ()), SlideRange(20.0, 30.0, ("Silence",))]
    done = refine(HEARD, quiet, decode)
    assert calls == [] and done.replaced == 0 and done.segments == HEARD


def test_no_more_audio_than_the_cap_is_decoded_again():
    done = refine(HEARD, RANGES, biased_decode, max_audio_s=5.0)
    assert (done.decoded, done.over_cap) == (1, 1)
    assert [s["text"] for s in done.segments] == [s["text"] for s in HEARD]


def test_segments_without_word_times_are_never_cut():
    plain = [{k: v for k, v in s.items() if k != "words"} for s in HEARD]
    done = refine(plain, RANGES, biased_decode)
    assert done.decoded == 0 and done.segments == plain


def test_two_decodes_at_once_give_the_same_transcript_and_progress_comes_in_order():
    seen: list[float] = []
    done = refine(HEARD, RANGES, biased_decode, workers=2, progress=lambda s: seen.append(s.end))
    assert done.segments == refine(HEARD, RANGES, biased_decode).segments
    assert seen == [4.5, 9.0]


def test_a_progress_that_raises_stops_the_work():
    class Cancelled(Exception):
        pass

    def stop(span: SlideRange) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        refine(HEARD, RANGES, biased_decode, workers=2, progress=stop)
