"""Time slices of a lecture's audio: cut at silences, overlapping a little, sample-exact.

prepare_video plans the chunks (``plan``) from the pauses one ffmpeg ``silencedetect`` pass
finds (``scan``) and writes them (``cut``) by copying PCM frames from the 16 kHz WAV it
extracted, a block at a time: memory does not grow with the lecture, and every offset is a
whole number of samples, so a chunk's times plus its offset are the lecture's times exactly.

A chunk owns its *core* ``[start_s, end_s)``; the file it is transcribed from reaches
``overlap_s`` further on each side (``read_from_s .. read_to_s``), so a word cut by a hard cut
(no pause in reach) is heard whole by both neighbours and the stitch keeps it once.
"""

from __future__ import annotations

import itertools
import re
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.media.ffmpeg import run_ffmpeg

FFMPEG_TIMEOUT_S = 600.0
NOISE_DB = -35.0
MIN_SILENCE_S = 0.3
COPY_FRAMES = 16000 * 32  # 32 s of 16 kHz audio per read: 1 MB of 16-bit PCM

_SILENCE_START = re.compile(r"silence_start: (-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end: (-?[\d.]+)")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_TIME = re.compile(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChunkPlan:
    index: int
    start_s: float  # the core this chunk's words belong to
    end_s: float
    read_from_s: float  # what its audio file holds: the core plus the overlap on each side
    read_to_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "read_from_s": self.read_from_s,
            "read_to_s": self.read_to_s,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ChunkPlan:
        return cls(
            index=int(data["index"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            read_from_s=float(data["read_from_s"]),
            read_to_s=float(data["read_to_s"]),
        )


def scan(
    audio: Path, *, noise_db: float = NOISE_DB, min_silence_s: float = MIN_SILENCE_S
) -> tuple[float, list[tuple[float, float]]]:
    """(duration, silences) of ``audio``: one streaming ffmpeg pass with ``silencedetect``."""
    result = run_ffmpeg(
        [
            "-i", str(audio), "-vn",
            "-af", f"silencedetect=noise={noise_db}dB:d={min_silence_s}",
            "-f", "null", "-",
        ],
        timeout=FFMPEG_TIMEOUT_S,
    )  # fmt: skip
    stderr = result.stderr
    duration = _clock(_DURATION.search(stderr))
    times = [_clock(m) for m in _TIME.finditer(stderr)]
    if times:  # the decoded length is more exact than the container's header
        duration = max(duration, times[-1])
    starts = [max(0.0, float(m.group(1))) for m in _SILENCE_START.finditer(stderr)]
    ends = [float(m.group(1)) for m in _SILENCE_END.finditer(stderr)]
    # A silence running to the end of the file has a start and no end.
    ends += [duration] * (len(starts) - len(ends))
    return duration, list(zip(starts, ends, strict=True))


def _clock(match: re.Match[str] | None) -> float:
    if match is None:
        return 0.0
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def plan(
    duration_s: float,
    silences: Sequence[tuple[float, float]],
    *,
    max_s: float,
    overlap_s: float,
    rate: int = 16000,
) -> list[ChunkPlan]:
    """Chunks whose files last at most ``max_s`` (core plus overlap on both sides).

    Audio that fits in ``max_s`` is one chunk with no overlap. Otherwise each cut is the middle
    of the longest pause in the second half of the room left (the latest of equals), or the
    hard limit when there is none; cuts fall on whole samples of ``rate``."""
    core = max_s - 2 * overlap_s
    if core <= 0:
        raise ValueError(f"chunks of {max_s} s cannot hold an overlap of {overlap_s} s each side")
    if duration_s <= max_s:
        return [ChunkPlan(index=0, start_s=0.0, end_s=duration_s, read_from_s=0.0,
                          read_to_s=duration_s)]  # fmt: skip
    pauses = sorted(((a + b) / 2, b - a) for a, b in silences if b > a)
    cuts: list[float] = []
    start = 0.0
    while duration_s - start > core:
        limit = start + core
        fitting = [(length, mid) for mid, length in pauses if start + core / 2 < mid <= limit]
        cut = max(fitting)[1] if fitting else limit
        cut = _on_sample(cut, rate, ceiling=limit)
        cuts.append(cut)
        start = cut
    bounds = [0.0, *cuts, duration_s]
    return [
        ChunkPlan(
            index=i,
            start_s=a,
            end_s=b,
            read_from_s=_on_sample(max(0.0, a - overlap_s), rate),
            read_to_s=min(duration_s, _on_sample(b + overlap_s, rate)),
        )
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def _on_sample(t: float, rate: int, *, ceiling: float | None = None) -> float:
    """``t`` on a whole sample (never past ``ceiling``): the times a WAV can start at."""
    samples = round(t * rate)
    if ceiling is not None and samples / rate > ceiling:
        samples -= 1
    return samples / rate


def cut(audio: Path, plans: Sequence[ChunkPlan], out_dir: Path) -> list[Path]:
    """Write each chunk's span of the WAV ``audio`` as its own WAV, a block at a time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with wave.open(str(audio), "rb") as source:
        rate, total = source.getframerate(), source.getnframes()
        for chunk in plans:
            first = min(total, round(chunk.read_from_s * rate))
            last = min(total, round(chunk.read_to_s * rate))
            target = out_dir / f"chunk_{chunk.index:04d}.wav"
            source.setpos(first)
            with wave.open(str(target), "wb") as sink:
                sink.setnchannels(source.getnchannels())
                sink.setsampwidth(source.getsampwidth())
                sink.setframerate(rate)
                left = last - first
                while left > 0:
                    block = source.readframes(min(COPY_FRAMES, left))
                    if not block:
                        break
                    sink.writeframes(block)
                    left -= len(block) // (source.getsampwidth() * source.getnchannels())
            paths.append(target)
    return paths


def wav_seconds(audio: Path) -> float:
    """The exact length of a WAV file, from its frame count."""
    with wave.open(str(audio), "rb") as source:
        return source.getnframes() / source.getframerate()
