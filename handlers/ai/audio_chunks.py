"""Split audio over an upload limit into chunks cut in silences, and stitch the transcripts.

OpenAI's transcription endpoint takes files up to 25 MB; a 16 kHz mono WAV (what
prepare_video extracts) reaches that after about 13 minutes. One ffmpeg pass with
``silencedetect`` finds the pauses; each chunk ends in the last pause before the limit (or at
the limit when there is none), so no word is cut in half. Segment times of each chunk are
shifted by the chunk's offset when stitched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.media.chunks import scan  # the one silencedetect pass (prepare_video's too)
from handlers.media.ffmpeg import run_ffmpeg

MAX_UPLOAD_BYTES = 25 * 1000 * 1000  # OpenAI's limit is 25 MB; stay under either reading
CHUNK_BYTES_PER_S = 16000 * 2  # chunks are 16 kHz mono 16-bit PCM WAV
WAV_HEADER_BYTES = 1024  # generous: RIFF header plus any list chunk
SAFETY = 0.95  # aim below the limit
FFMPEG_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class AudioChunk:
    path: Path
    offset_s: float  # where the chunk starts in the original audio
    duration_s: float  # 0.0 when the file goes whole (its length was not measured)


def plan_cuts(
    duration_s: float, silences: Sequence[tuple[float, float]], *, max_chunk_s: float
) -> list[float]:
    """Cut points (seconds) so no chunk is longer than ``max_chunk_s``: each cut is the middle
    of the last silence that fits, or the hard limit when no silence does."""
    if max_chunk_s <= 0:
        raise ValueError("max_chunk_s must be positive")
    middles = sorted((a + b) / 2 for a, b in silences if b > a)
    cuts: list[float] = []
    start = 0.0
    while duration_s - start > max_chunk_s:
        limit = start + max_chunk_s
        # Skip pauses right after the previous cut: they would make a useless tiny chunk.
        fitting = [m for m in middles if start + max_chunk_s * 0.25 < m <= limit]
        cut = math.floor((fitting[-1] if fitting else limit) * 1000) / 1000  # ms, never later
        cuts.append(cut)
        start = cut
    return cuts


def max_chunk_seconds(max_bytes: int) -> float:
    return (max_bytes * SAFETY - WAV_HEADER_BYTES) / CHUNK_BYTES_PER_S


def split_on_silence(
    audio: Path,
    out_dir: Path,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    noise_db: float = -35.0,
    min_silence_s: float = 0.3,
) -> list[AudioChunk]:
    """``audio`` itself when it fits in ``max_bytes``, else WAV chunks cut in silences."""
    audio = Path(audio)
    if audio.stat().st_size <= max_bytes:
        return [AudioChunk(audio, 0.0, 0.0)]
    duration, silences = scan(audio, noise_db=noise_db, min_silence_s=min_silence_s)
    max_chunk_s = max_chunk_seconds(max_bytes)
    if max_chunk_s < 1.0:
        raise ValueError(f"an upload limit of {max_bytes} bytes leaves no room for audio")
    bounds = [0.0, *plan_cuts(duration, silences, max_chunk_s=max_chunk_s), duration]
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        target = out_dir / f"chunk-{i:03d}.wav"
        run_ffmpeg(
            [
                "-y", "-i", str(audio), "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}",
                "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le",
                "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "wav", str(target),
            ],
            timeout=FFMPEG_TIMEOUT_S,
        )  # fmt: skip
        size = target.stat().st_size
        if size > max_bytes:  # the plan's arithmetic failed: never upload an oversize chunk
            raise ValueError(f"chunk {target.name} is {size} bytes, over {max_bytes}")
        chunks.append(AudioChunk(target, round(start, 3), round(end - start, 3)))
    return chunks


def stitch(parts: Sequence[tuple[float, Sequence[Mapping[str, Any]]]]) -> list[dict[str, Any]]:
    """One segment list from each chunk's (offset, segments), times shifted by the offset."""
    out: list[dict[str, Any]] = []
    for offset, segments in parts:
        for seg in segments:
            text = str(seg.get("text", "")).strip()
            if not text:
                continue
            start = round(max(0.0, float(seg["start"]) + offset), 3)
            end = round(max(start, float(seg["end"]) + offset), 3)
            out.append({"start": start, "end": end, "text": text})
    out.sort(key=lambda s: (s["start"], s["end"]))
    return out
