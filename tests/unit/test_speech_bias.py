"""Contextual biasing: slide lines become Whisper's hotwords as sentences; a prompted window
that came back as one segment is cut at its sentence ends by its word times."""

from __future__ import annotations

import dataclasses

import pytest

from handlers.media.speech import (
    BIAS_MAX_WORDS,
    DECODING,
    Segment,
    Word,
    at_sentences,
    biased,
)

SLIDE = ["Graph Traversal", "Visits every node once.", "1/4", "Graph Traversal", "  "]


def test_slide_lines_become_sentences_once_each_without_page_numbers() -> None:
    decoding = biased(DECODING, SLIDE)
    assert decoding.hotwords == "Graph Traversal. Visits every node once."
    assert decoding.initial_prompt == ""


def test_the_prompt_form_and_off_are_chosen_by_the_decoding() -> None:
    prompt = biased(dataclasses.replace(DECODING, bias="initial_prompt"), SLIDE)
    assert (prompt.initial_prompt, prompt.hotwords) == (
        "Graph Traversal. Visits every node once.",
        "",
    )
    off = dataclasses.replace(DECODING, bias="none")
    assert biased(off, SLIDE) == off
    assert biased(DECODING, ["", "2/4"]) == DECODING
    with pytest.raises(ValueError):
        biased(dataclasses.replace(DECODING, bias="loud"), SLIDE)


def test_a_long_vocabulary_is_cut_to_what_the_prompt_holds() -> None:
    decoding = biased(DECODING, [f"Point number {n} here" for n in range(100)])
    assert len(decoding.hotwords.split()) == BIAS_MAX_WORDS


def words(*timed: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(start=a, end=b, word=w) for a, b, w in timed)


def test_a_window_long_segment_is_cut_after_each_sentence() -> None:
    said = words(
        (0.5, 1.0, " Graph"), (1.0, 1.6, " traversal."), (9.0, 9.5, " It"),
        (9.5, 10.2, " visits"), (10.2, 11.0, " nodes."), (20.0, 21.0, " Then"),
    )  # fmt: skip
    segment = Segment(
        start=0.0, end=30.0, text="Graph traversal. It visits nodes. Then", words=said
    )
    pieces = at_sentences(segment)
    assert [(p.start, p.end, p.text) for p in pieces] == [
        (0.5, 1.6, "Graph traversal."), (9.0, 11.0, "It visits nodes."), (20.0, 21.0, "Then"),
    ]  # fmt: skip


def test_a_short_segment_or_one_without_words_is_kept() -> None:
    short = Segment(start=0.0, end=4.0, text="A. B.", words=words((0, 1, " A."), (2, 3, " B.")))
    bare = Segment(start=0.0, end=30.0, text="No words here.")
    assert at_sentences(short) == [short]
    assert at_sentences(bare) == [bare]
