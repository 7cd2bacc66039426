"""Chunks of a long lecture's audio and the stitch: planned at silences, sample-exact,
overlapping; stitched with no word lost or doubled at a cut and every offset exact."""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.media.chunks import ChunkPlan, cut, plan, wav_seconds
from handlers.media.stitch import ChunkTranscript, stitch

RATE = 16000


# ---- planning -----------------------------------------------------------------------------


def test_audio_that_fits_is_one_chunk_with_no_overlap() -> None:
    assert plan(80.0, [(10.0, 11.0)], max_s=300, overlap_s=2) == [
        ChunkPlan(index=0, start_s=0.0, end_s=80.0, read_from_s=0.0, read_to_s=80.0)
    ]


def test_cuts_fall_in_the_longest_pause_and_files_stay_within_the_limit() -> None:
    silences = [(40.0, 40.4), (50.0, 51.0), (58.0, 58.3), (95.0, 96.0), (150.0, 150.5)]
    chunks = plan(170.0, silences, max_s=64, overlap_s=2)
    assert [c.start_s for c in chunks[1:]] == [50.5, 95.5, 150.25]  # pause middles
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == 170.0
    for a, b in itertools.pairwise(chunks):
        assert a.end_s == b.start_s  # cores tile the lecture
        assert b.read_from_s == b.start_s - 2 and a.read_to_s == a.end_s + 2
    assert all(c.read_to_s - c.read_from_s <= 64 for c in chunks)


def test_with_no_pause_the_cut_is_hard_and_on_a_whole_sample() -> None:
    chunks = plan(100.0, [], max_s=33.3333, overlap_s=1.5)
    for c in chunks:
        for t in (c.start_s, c.end_s, c.read_from_s, c.read_to_s):
            assert (t * RATE) == round(t * RATE)
        assert c.read_to_s - c.read_from_s <= 33.3333
    assert len(chunks) == 4


def test_an_overlap_that_leaves_no_room_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        plan(100.0, [], max_s=4, overlap_s=2)


def test_cut_copies_exact_sample_spans(tmp_path: Path) -> None:
    source = tmp_path / "a.wav"
    samples = bytes(range(256)) * 500  # 64000 samples of 16-bit audio: 4 s
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(samples * 2)
    chunks = plan(wav_seconds(source), [], max_s=1.5, overlap_s=0.25)
    paths = cut(source, chunks, tmp_path / "chunks")
    with wave.open(str(source), "rb") as w:
        everything = w.readframes(w.getnframes())
    for c, path in zip(chunks, paths, strict=True):
        with wave.open(str(path), "rb") as w:
            got = w.readframes(w.getnframes())
        first, last = round(c.read_from_s * RATE), round(c.read_to_s * RATE)
        assert got == everything[first * 2 : last * 2]


# ---- stitching ----------------------------------------------------------------------------


def lecture(count: int, word_s: float = 0.35, gap_s: float = 0.1) -> list[tuple[float, float]]:
    """Word spans of a lecture with no pauses long enough to cut in."""
    return [(round(i * (word_s + gap_s), 3), round(i * (word_s + gap_s) + word_s, 3))
            for i in range(count)]  # fmt: skip


def heard(
    words: list[tuple[float, float]],
    chunk: ChunkPlan,
    *,
    jitter: float = 0.0,
    per_segment: int = 7,
    garble_edges: bool = True,
) -> ChunkTranscript:
    """What a recogniser hears of one chunk: the words inside its file, on the chunk's clock,
    a bit off in time; a word the file's edge cuts is misheard as nonsense."""
    said = []
    for i, (a, b) in enumerate(words):
        inside = chunk.read_from_s <= a and b <= chunk.read_to_s
        clipped = a < chunk.read_to_s and b > chunk.read_from_s and not inside
        if inside or (clipped and garble_edges):
            wobble = jitter * (((i * 7919) % 13) / 6 - 1)  # deterministic, within +-jitter
            start = max(0.0, a - chunk.read_from_s + wobble)
            end = max(start, b - chunk.read_from_s + wobble)
            said.append((round(start, 3), round(end, 3), f" w{i}" if inside else " uh"))
    segments = [
        {
            "start": said[k][0],
            "end": said[min(k + per_segment, len(said)) - 1][1],
            "text": "".join(w for _, _, w in said[k : k + per_segment]).strip(),
            "words": [{"start": a, "end": b, "word": w} for a, b, w in said[k : k + per_segment]],
        }
        for k in range(0, len(said), per_segment)
    ]
    return ChunkTranscript(chunk.read_from_s, chunk.start_s, chunk.end_s, segments)


def words_of(segments: list[dict[str, object]]) -> list[str]:
    return [w for s in segments for w in str(s["text"]).split()]


def test_one_chunk_passes_through_unchanged() -> None:
    words = lecture(30)
    chunk = plan(words[-1][1], [], max_s=600, overlap_s=2)[0]
    said = heard(words, chunk)
    assert stitch([said], overlap=2) == said.segments  # word times kept as the provider gave


def test_words_spread_by_the_stitch_are_not_passed_off_as_timed() -> None:
    words = lecture(30)
    chunk = plan(words[-1][1], [], max_s=600, overlap_s=2)[0]
    said = heard(words, chunk)
    untimed = [{k: v for k, v in s.items() if k != "words"} for s in said.segments]
    bare = ChunkTranscript(said.offset_s, said.start_s, said.end_s, untimed)
    assert stitch([bare], overlap=2) == untimed


def test_hard_cuts_through_words_lose_and_double_nothing() -> None:
    words = lecture(400)  # 180 s of talk, no pause anywhere
    chunks = plan(words[-1][1], [], max_s=31, overlap_s=2)
    assert len(chunks) == 7
    segments = stitch([heard(words, c, jitter=0.08) for c in chunks], overlap=2)
    assert words_of(segments) == [f"w{i}" for i in range(400)]
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)


def test_offsets_are_exact() -> None:
    words = lecture(200)
    chunks = plan(words[-1][1], [], max_s=21, overlap_s=1.5)
    segments = stitch([heard(words, c, per_segment=1) for c in chunks], overlap=1.5)
    got = [(s["start"], s["end"]) for s in segments]
    assert got == [(pytest.approx(a, abs=1e-3), pytest.approx(b, abs=1e-3)) for a, b in words]


def test_a_cut_in_silence_needs_no_alignment() -> None:
    first = lecture(40)
    pause_at = first[-1][1]
    second = [(a + pause_at + 1.0, b + pause_at + 1.0) for a, b in lecture(40)]
    words = first + second
    chunks = plan(words[-1][1], [(pause_at, pause_at + 1.0)], max_s=24, overlap_s=0.4)
    assert chunks[1].start_s == round(pause_at + 0.5, 3)
    segments = stitch([heard(words, c) for c in chunks], overlap=0.4)
    assert words_of(segments) == [f"w{i}" for i in range(80)]


def test_the_stitch_is_deterministic() -> None:
    words = lecture(300)
    chunks = plan(words[-1][1], [], max_s=25, overlap_s=2)
    parts = [heard(words, c, jitter=0.1) for c in chunks]
    assert stitch(parts, overlap=2) == stitch(list(parts), overlap=2)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=500),
    word_s=st.floats(min_value=0.1, max_value=0.8),
    gap_s=st.floats(min_value=0.0, max_value=0.3),
    max_s=st.floats(min_value=8.0, max_value=60.0),
    overlap_s=st.floats(min_value=1.0, max_value=3.0),
    jitter=st.floats(min_value=0.0, max_value=0.15),
    per_segment=st.integers(min_value=1, max_value=12),
)
def test_every_word_once_in_order_whatever_the_cuts(
    count: int,
    word_s: float,
    gap_s: float,
    max_s: float,
    overlap_s: float,
    jitter: float,
    per_segment: int,
) -> None:
    words = lecture(count, word_s, gap_s)
    chunks = plan(words[-1][1], [], max_s=max_s, overlap_s=overlap_s)
    parts = [heard(words, c, jitter=jitter, per_segment=per_segment) for c in chunks]
    assert words_of(stitch(parts, overlap=overlap_s)) == [f"w{i}" for i in range(count)]


def test_segments_without_word_times_are_spread_and_still_joined() -> None:
    words = lecture(120)
    chunks = plan(words[-1][1], [], max_s=20, overlap_s=2)
    parts = []
    for c in chunks:
        said = heard(words, c, per_segment=1, garble_edges=False)  # one word a segment
        bare = [{k: v for k, v in s.items() if k != "words"} for s in said.segments]
        parts.append(ChunkTranscript(said.offset_s, said.start_s, said.end_s, bare))
    assert words_of(stitch(parts, overlap=2)) == [f"w{i}" for i in range(120)]
