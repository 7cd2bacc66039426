"""Key frames from a lecture video: scene changes plus a fixed interval, in one decode pass."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from handlers.artifacts import replace_durably
from handlers.media.ffmpeg import MediaError, run_ffmpeg

FRAME_GLOB = "frame_*.jpg"
DEFAULT_TIMEOUT_S = 900.0
HASH_SIDE = 32
HASH_KEEP = 8
# Slides sharing one template hash alike (a 64-bit hash of a 32x32 thumbnail hardly sees a
# title), so frames whose hashes are close are compared again, pixel by pixel on a larger
# thumbnail: they are the same picture only if almost no pixel changed by much. Two slides of
# one template whose words differ change 4 to 8 % of these pixels; a re-encode of one slide,
# or a new page number alone, changes none.
DETAIL_SIDE = 128
DETAIL_LEVELS = 48  # a pixel "changed" when it moved by more than this (of 255)
DETAIL_SHARE = 0.01  # frames differ when more than this share of pixels changed

# showinfo's per-frame line; the instance name tells the two branches apart.
_SHOWINFO = re.compile(r"^\[showinfo@(scene|interval) @ [^\]]+\] n:\s*(\d+) .*?pts_time:(\S+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    name: str
    path: Path
    t: float
    kind: str  # "scene" | "interval"
    phash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class _Candidate:
    kind: str
    t: float
    tmp_path: Path
    phash: int
    detail: np.ndarray  # DETAIL_SIDE x DETAIL_SIDE grey levels (uint8)


def extract_frames(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    scene_threshold: float = 0.03,
    interval_s: float = 10.0,
    max_frames: int = 120,
    dedupe_distance: int = 6,
    width: int = 640,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Frame]:
    """Write deduplicated key frames as out_dir/frame_{ms:08d}.jpg and return them by time.

    Slides that share one template score only ~0.07 on ffmpeg's scene metric, so the
    default threshold is far below the 0.3 usually quoted for camera footage.
    """
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".frames-") as tmp_name:
        tmp = Path(tmp_name)
        candidates = _decode_candidates(
            Path(video), tmp, scene_threshold, interval_s, width, timeout_s
        )
        kept = _thin(_dedupe(candidates, dedupe_distance), max_frames)
        frames = [_publish(candidate, out_dir) for candidate in kept]
    _remove_stale(out_dir, {frame.name for frame in frames})
    return frames


def _decode_candidates(
    video: Path, tmp: Path, threshold: float, interval_s: float, width: int, timeout_s: float
) -> list[_Candidate]:
    args = ["-v", "info", "-y", "-i", str(video)]
    args += ["-filter_complex", _filter_graph(threshold, interval_s, width)]
    for kind in ("scene", "interval"):
        args += ["-map", f"[{kind}]", "-fps_mode", "passthrough", "-q:v", "3"]
        args += ["-fflags", "+bitexact", "-flags", "+bitexact", "-f", "image2"]
        args += [str(tmp / f"{kind}_%06d.jpg")]
    stderr = _run_quietly(args, timeout_s)
    candidates = [_candidate_of(kind, t, path) for kind, t, path in _selected_frames(stderr, tmp)]
    written = len(list(tmp.glob("*.jpg")))
    if written != len(candidates):
        # Timestamps come from the log; if it and the files disagree, names would lie.
        raise MediaError(
            "ffmpeg_failed",
            f"{video.name}: ffmpeg wrote {written} frames but logged {len(candidates)}",
            stderr=stderr,
        )
    return candidates


def _filter_graph(threshold: float, interval_s: float, width: int) -> str:
    # Both branches select frame 0: it keeps t=0, and an image2 output that receives no
    # frame at all fails the whole run. Buckets of floor(t / interval) never drift.
    bucket = f"floor(t/{interval_s})-floor(prev_selected_t/{interval_s})"
    # Scale only the frames a branch selects: scaling every decoded frame cost more than the
    # decode itself (2.4x a decode-only pass at 720p); the scene score on full frames is cheap.
    scale = f"scale=w='min({width},iw)':h=-2"
    return (
        # Never upscale a small video; start the clock at the first frame.
        "[0:v]setpts=PTS-STARTPTS,split=2[a][b];"
        f"[a]select='eq(n,0)+gt(scene,{threshold})',{scale},showinfo@scene[scene];"
        f"[b]select='isnan(prev_selected_t)+gte({bucket},1)',{scale},showinfo@interval[interval]"
    )


def _selected_frames(stderr: str, tmp: Path) -> list[tuple[str, float, Path]]:
    frames = []
    for line in stderr.splitlines():
        match = _SHOWINFO.match(line)
        if match is not None:
            kind, index, t = match.group(1), int(match.group(2)), float(match.group(3))
            frames.append((kind, t, tmp / f"{kind}_{index + 1:06d}.jpg"))
    return frames


def _run_quietly(args: list[str], timeout_s: float) -> str:
    """Run ffmpeg; on failure drop showinfo's chatter so the error names the real problem."""
    try:
        return run_ffmpeg(args, timeout=timeout_s).stderr
    except MediaError as err:
        lines = [line for line in err.stderr.splitlines() if not line.startswith("[showinfo@")]
        stderr = "\n".join(lines)
        raise MediaError(
            err.kind,
            f"frame extraction failed: {stderr[-2000:]}",
            permanent=err.permanent,
            stderr=stderr,
        ) from err


def _candidate_of(kind: str, t: float, path: Path) -> _Candidate:
    """A decoded frame with its hash and detail thumbnail (the image is read once)."""
    with Image.open(path) as image:
        gray = image.convert("L")
    detail = gray.resize((DETAIL_SIDE, DETAIL_SIDE), Image.Resampling.BOX)
    return _Candidate(
        kind=kind,
        t=t,
        tmp_path=path,
        phash=_phash_of(gray),
        detail=np.asarray(detail, dtype=np.uint8),
    )


def _dedupe(candidates: Sequence[_Candidate], distance: int) -> list[_Candidate]:
    """Drop repeats of the picture on screen: in time order (a scene frame before an interval
    frame of the same instant), a frame goes when it is a near-duplicate of the frame kept
    just before it. A slide shown again after others is kept: the lecture went back to it.

    A near-duplicate has a hash within ``distance`` of that frame's and the same picture in
    detail (``same_picture``): slides of one template whose text differs are all kept."""
    kept: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.t, c.kind != "scene")):
        last = kept[-1] if kept else None
        if (
            last is not None
            and hamming(candidate.phash, last.phash) <= distance
            and same_picture(candidate, last)
        ):
            continue
        kept.append(candidate)
    return kept


def same_picture(a: _Candidate, b: _Candidate) -> bool:
    """Whether almost no pixel of the detail thumbnails changed by more than a little."""
    moved = np.abs(a.detail.astype(np.int16) - b.detail.astype(np.int16)) > DETAIL_LEVELS
    return float(moved.mean()) <= DETAIL_SHARE


def _thin(candidates: Sequence[_Candidate], max_frames: int) -> list[_Candidate]:
    """Keep max_frames evenly spread over the list, always including the first frame."""
    count = len(candidates)
    if count <= max_frames:
        return list(candidates)
    if max_frames == 1:
        return [candidates[0]]
    picks = sorted({round(i * (count - 1) / (max_frames - 1)) for i in range(max_frames)})
    return [candidates[i] for i in picks]


def _publish(candidate: _Candidate, out_dir: Path) -> Frame:
    name = f"frame_{round(candidate.t * 1000):08d}.jpg"
    path = out_dir / name
    replace_durably(candidate.tmp_path, path)
    return Frame(
        name=name, path=path, t=candidate.t, kind=candidate.kind, phash=f"{candidate.phash:016x}"
    )


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    for path in out_dir.glob(FRAME_GLOB):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def phash(image_path: str | os.PathLike[str]) -> int:
    """64-bit DCT perceptual hash: the sign of the lowest 8x8 frequencies against their median."""
    with Image.open(image_path) as image:
        return _phash_of(image.convert("L"))


def _phash_of(gray: Image.Image) -> int:
    small = gray.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    basis = _dct_matrix(HASH_SIDE)
    low = (basis @ pixels @ basis.T)[:HASH_KEEP, :HASH_KEEP].ravel()
    # The DC term measures brightness, not structure; leave it out of the median.
    bits = low > np.median(low[1:])
    return int("".join("1" if bit else "0" for bit in bits), 2)


def _dct_matrix(size: int) -> np.ndarray:
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    return np.cos(np.pi * (2 * n + 1) * k / (2 * size))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def write_manifest(frames: Iterable[Frame], path: str | os.PathLike[str]) -> None:
    """Write {"frames": [{name, t, kind, phash}]} atomically."""
    path = Path(path)
    body = {
        "frames": [
            {"name": f.name, "t": round(f.t, 3), "kind": f.kind, "phash": f.phash} for f in frames
        ]
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


def decode_only_seconds(video: str | os.PathLike[str]) -> float:
    """Wall time of a plain full decode (`ffmpeg -i X -f null -`), the floor for extraction."""
    started = time.perf_counter()
    run_ffmpeg(["-v", "error", "-i", str(video), "-f", "null", "-"], timeout=DEFAULT_TIMEOUT_S)
    return time.perf_counter() - started


__all__ = [
    "Frame",
    "decode_only_seconds",
    "extract_frames",
    "hamming",
    "phash",
    "write_manifest",
]
