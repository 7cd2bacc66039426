"""TextTiling over a timestamped transcript: topic shifts as lesson starts, key phrases titles."""

from __future__ import annotations

from typing import Any

from handlers.ai.topics import content_words, gaps, key_phrase, topic_starts

SECTIONS = (
    (
        "Our next topic is solar panels.",
        "A solar panel turns sunlight into electric current.",
        "Every solar panel holds many silicon cells.",
        "Silicon cells in a solar panel age slowly in sunlight.",
        "For example a solar panel on a roof faces the sun.",
    ),
    (
        "Let us turn to river erosion.",
        "River erosion carves valleys over thousands of years.",
        "Fast water and heavy stones speed up river erosion.",
        "River erosion moves sand and mud to the sea.",
        "For example river erosion shaped the great canyon.",
    ),
    (
        "Now we come to the printing press.",
        "The printing press made books cheap.",
        "Movable type let the printing press set any page.",
        "Printers spread the printing press across Europe.",
        "For example the printing press carried news to towns.",
    ),
)


def timed(sections: tuple[tuple[str, ...], ...], seconds: float = 5.0) -> list[dict[str, Any]]:
    """One segment a sentence, ``seconds`` long each, back to back."""
    lines = [line for section in sections for line in section]
    return [
        {"start": i * seconds, "end": (i + 1) * seconds, "text": text}
        for i, text in enumerate(lines)
    ]


def test_a_talk_is_cut_where_its_vocabulary_changes() -> None:
    segments = timed(SECTIONS)
    assert topic_starts(segments, duration=75.0) == [0.0, 25.0, 50.0]


def test_a_talk_on_one_topic_stays_one_lesson() -> None:
    segments = timed((SECTIONS[0] * 3,))
    assert topic_starts(segments, duration=75.0) == [0.0]


def test_no_topic_is_shorter_than_the_minimum() -> None:
    # The shift after 10 s is as clear as the one after 35 s, but a 10 s lesson is no lesson.
    segments = timed((SECTIONS[0][:2], SECTIONS[1] + SECTIONS[1][1:3], SECTIONS[2]))
    starts = topic_starts(segments, duration=segments[-1]["end"])
    assert starts[0] == 0.0 and 10.0 not in starts
    assert 45.0 in starts


def test_the_dip_is_deepest_at_the_true_shift() -> None:
    scored = gaps(timed(SECTIONS))
    deepest = sorted(scored, key=lambda g: -g.depth)[:2]
    assert sorted(g.t for g in deepest) == [25.0, 50.0]


def test_a_segment_without_content_words_is_no_gap() -> None:
    segments = timed(SECTIONS)
    segments.insert(5, {"start": 24.9, "end": 25.0, "text": "Okay."})
    assert topic_starts(segments, duration=75.0) == [0.0, 25.0, 50.0]


def test_plurals_count_as_their_singular() -> None:
    assert content_words("Keys and models, a key and a model; glass stays") == [
        "key", "model", "key", "model", "glass", "stay",
    ]  # fmt: skip


def test_the_key_phrase_is_the_repeated_distinctive_phrase() -> None:
    texts = [" ".join(section) for section in SECTIONS]
    assert [key_phrase(t, [o for o in texts if o != t]) for t in texts] == [
        "Solar Panel", "River Erosion", "Printing Press",
    ]  # fmt: skip


def test_a_key_phrase_prefers_the_longer_phrase_said_as_often() -> None:
    text = "Public key encryption uses two keys. Public key encryption signs. " * 2
    assert key_phrase(text) == "Public Key Encryption"
    assert key_phrase("") == ""
