"""One transcript from the transcripts of overlapping audio chunks, overlaps removed.

Each chunk's words (its segments' ``words``, or the segment text spread evenly over the
segment when a provider gives none) are moved to the lecture's clock by the chunk's offset.
At every cut the two neighbours heard the same audio for ``overlap`` seconds on each side:
their words there are aligned (``difflib``, same word, midpoints within ``MATCH_S``), and the
join is made at the aligned pair nearest the cut, so a word heard by both is kept once and a
word heard by either is never dropped. With nothing to align (silence at the cut) a word
belongs to the side its midpoint falls on. Every step is a pure function of its input: the
same chunks always stitch to the same transcript.

Segments keep their own start and end when all their words survive; a segment the join
split is bounded by its surviving words. A segment whose words the provider timed keeps them
(``words``): lessons are cut between words, not between segments (handlers.course).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.media.speech import normalise_words

MATCH_S = 1.0  # an aligned pair's two midpoints may differ by at most this much


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    text: str  # as the provider gave it (Whisper's words carry their leading space)
    segment: tuple[int, int]  # (chunk, segment): which segment it came from
    timed: bool = True  # False: spread evenly over its segment, not timed by the provider
    probability: float | None = None  # the provider's, when it gave one

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2

    @property
    def key(self) -> str:
        return " ".join(normalise_words(self.text))


@dataclass(frozen=True, slots=True)
class ChunkTranscript:
    offset_s: float  # where the chunk's audio file starts on the lecture's clock
    start_s: float  # the chunk's core (where its own cut points are)
    end_s: float
    segments: Sequence[Mapping[str, Any]]  # schemas/ai/transcript.json segments, chunk clock


def words_of(index: int, chunk: ChunkTranscript) -> list[Word]:
    """The chunk's words on the lecture's clock, in the provider's (time) order."""
    out: list[Word] = []
    for j, seg in enumerate(chunk.segments):
        start, end = float(seg["start"]), float(seg["end"])
        given = seg.get("words") or ()
        if given:
            pieces = [
                (float(w["start"]), float(w["end"]), str(w["word"]), w.get("probability"))
                for w in given
            ]
        else:
            pieces = [(a, b, t, None) for a, b, t in _spread(start, end, str(seg.get("text", "")))]
        for a, b, text, probability in pieces:
            if text.strip():
                at = (a + chunk.offset_s, b + chunk.offset_s)
                p = None if probability is None else float(probability)
                out.append(Word(*at, text, (index, j), timed=bool(given), probability=p))
    return out


def _timed(word: Word) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": round(max(0.0, word.start), 3),
        "end": round(max(0.0, word.end), 3),
        "word": word.text,
    }
    if word.probability is not None:
        out["probability"] = word.probability
    return out


def _spread(start: float, end: float, text: str) -> list[tuple[float, float, str]]:
    """Words of a segment without word times: each gets an equal share of its span."""
    tokens = text.split()
    if not tokens:
        return []
    step = max(0.0, end - start) / len(tokens)
    return [
        (start + k * step, start + (k + 1) * step, (" " if k else "") + token)
        for k, token in enumerate(tokens)
    ]


def join(left: Sequence[Word], right: Sequence[Word], cut: float, overlap: float) -> list[Word]:
    """``left`` then ``right``, the words both heard around ``cut`` kept once."""
    k = next((i for i, w in enumerate(left) if w.mid >= cut - overlap), len(left))
    m = next((i for i, w in enumerate(right) if w.mid >= cut + overlap), len(right))
    tail, head = left[k:], right[:m]
    matcher = difflib.SequenceMatcher(
        None, [w.key for w in tail], [w.key for w in head], autojunk=False
    )
    pairs = [
        (a + n, b + n)
        for a, b, size in matcher.get_matching_blocks()
        for n in range(size)
        if tail[a + n].key and abs(tail[a + n].mid - head[b + n].mid) <= MATCH_S
    ]
    if not pairs:
        return [
            *(w for w in left if w.mid < cut),
            *(w for w in right if w.mid >= cut),
        ]
    i, j = min(pairs, key=lambda p: (abs((tail[p[0]].mid + head[p[1]].mid) / 2 - cut), p))
    return [*left[: k + i + 1], *right[j + 1 :]]


def stitch(chunks: Sequence[ChunkTranscript], *, overlap: float) -> list[dict[str, Any]]:
    """The lecture's segments ({start, end, text}, and ``words`` where the provider timed
    them) from its chunks' transcripts, in order."""
    if not chunks:
        return []
    heard = [words_of(index, chunk) for index, chunk in enumerate(chunks)]
    sizes = Counter(w.segment for chunk_words in heard for w in chunk_words)
    words = heard[0]
    for index in range(1, len(chunks)):
        words = join(words, heard[index], chunks[index].start_s, overlap)
    return _segments(words, chunks, sizes)


def _segments(
    words: Sequence[Word], chunks: Sequence[ChunkTranscript], sizes: Counter[tuple[int, int]]
) -> list[dict[str, Any]]:
    groups: list[list[Word]] = []
    for word in words:
        if groups and groups[-1][-1].segment == word.segment:
            groups[-1].append(word)
        else:
            groups.append([word])
    out = []
    for group in groups:
        c, s = group[0].segment
        chunk, seg = chunks[c], chunks[c].segments[s]
        text = "".join(w.text for w in group).strip()
        if len(group) == sizes[group[0].segment]:  # the segment survived whole
            start = float(seg["start"]) + chunk.offset_s
            end = float(seg["end"]) + chunk.offset_s
        else:
            start, end = group[0].start, group[-1].end
        start = round(max(0.0, start), 3)
        segment: dict[str, Any] = {"start": start, "end": round(max(start, end), 3), "text": text}
        if all(w.timed for w in group):
            segment["words"] = [_timed(w) for w in group]
        out.append(segment)
    return out
