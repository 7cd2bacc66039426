"""Probe and normalise lecture videos with the bundled static ffmpeg (there is no ffprobe)."""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from handlers.artifacts import replace_durably

MEDIA_ERROR_KINDS = ("empty", "not_video", "truncated", "too_large", "too_long", "ffmpeg_failed")
PROBE_TIMEOUT_S = 30.0
TAIL_SECONDS = 3.0
STDERR_TAIL_CHARS = 2000
# A re-encode goes in time pieces of at most this many seconds (each its own ffmpeg), run
# side by side on the task's vCPUs; the short side of its output is at most REENCODE_MAX_SIDE.
REENCODE_PIECE_S = 600.0
REENCODE_MAX_SIDE = 720

# Messages ffmpeg prints when a file ends before its own index says it should.
_TRUNCATION_MARKERS = ("moov atom not found", "partial file", "corrupt input packet")
_MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_INPUT = re.compile(r"^Input #0, ([\w,]+), from", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio): (\w+)(.*)$", re.MULTILINE)
# Anchored on separators so codec tags such as "0x31637661" never parse as a frame size.
_SIZE = re.compile(r"(?:^|[ ,])(\d{1,5})x(\d{1,5})(?=[ ,\[]|$)")
_FPS = re.compile(r"([\d.]+)(k?) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")


class MediaError(Exception):
    """A video that cannot be used; `permanent` says whether a retry could possibly help."""

    def __init__(
        self, kind: str, message: str, *, permanent: bool = True, stderr: str = ""
    ) -> None:
        if kind not in MEDIA_ERROR_KINDS:
            raise ValueError(f"unknown MediaError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permanent = permanent
        self.stderr = stderr


@dataclass(frozen=True, kw_only=True, slots=True)
class VideoInfo:
    duration_s: float
    width: int
    height: int
    fps: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    size_bytes: int
    # ffmpeg's demuxer list (e.g. "mov,mp4,m4a,3gp,3g2,mj2"); "" when unknown.
    container: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedMedia:
    video: Path
    audio: Path | None
    info: VideoInfo


@functools.cache
def ffmpeg_exe() -> str:
    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def run_ffmpeg(
    args: Sequence[str], *, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with `args`; failures become MediaError("ffmpeg_failed") carrying stderr."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        stderr = _text(err.stderr)
        raise MediaError(
            "ffmpeg_failed",
            f"ffmpeg timed out after {timeout:.0f} s: {_tail(stderr)}",
            permanent=False,
            stderr=stderr,
        ) from err
    if check and result.returncode != 0:
        # A negative code is a signal (the OOM killer, a shutdown): the input may be fine.
        raise MediaError(
            "ffmpeg_failed",
            f"ffmpeg exited with {result.returncode}: {_tail(result.stderr)}",
            permanent=result.returncode > 0,
            stderr=result.stderr,
        )
    return result


def probe(
    path: str | os.PathLike[str], *, max_bytes: int | None = None, max_seconds: float | None = None
) -> VideoInfo:
    """Describe a video file, or raise MediaError saying why it cannot be used."""
    path = Path(path)
    size = _checked_size(path, max_bytes)
    stderr = run_ffmpeg(["-i", str(path)], timeout=PROBE_TIMEOUT_S, check=False).stderr
    info = _parse_probe(path, stderr, size)
    if max_seconds is not None and info.duration_s > max_seconds:
        raise MediaError(
            "too_long",
            f"{path.name} lasts {info.duration_s:.1f} s, over the limit of {max_seconds:.0f} s",
        )
    _check_tail(path, info)
    return info


def _checked_size(path: Path, max_bytes: int | None) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MediaError("empty", f"{path} does not exist") from None
    if size == 0:
        raise MediaError("empty", f"{path.name} is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise MediaError(
            "too_large", f"{path.name} is {size} bytes, over the limit of {max_bytes} bytes"
        )
    return size


def _parse_probe(path: Path, stderr: str, size: int) -> VideoInfo:
    # ffmpeg picks the MP4 demuxer from a ".mp4" name alone, so only a file that really
    # opens with MP4 boxes is "truncated" when the index is missing; the rest is not video.
    if "moov atom not found" in stderr and _starts_like_mp4(path):
        raise MediaError(
            "truncated", f"{path.name} is truncated: its MP4 index (moov) is missing", stderr=stderr
        )
    container = _INPUT.search(stderr)
    if container is None:
        raise MediaError(
            "not_video", f"{path.name} is not a media file ffmpeg can read", stderr=stderr
        )
    streams = _STREAM.findall(stderr)
    # Cover art in audio files shows up as a video stream; it is not a video.
    videos = [s for s in streams if s[0] == "Video" and "(attached pic)" not in s[2]]
    audios = [s for s in streams if s[0] == "Audio"]
    if not videos:
        found = "audio only" if audios else "no streams"
        raise MediaError("not_video", f"{path.name} has no video stream ({found})", stderr=stderr)
    _, video_codec, details = videos[0]
    width, height = _frame_size(path, details, stderr)
    return VideoInfo(
        duration_s=_duration(path, stderr),
        width=width,
        height=height,
        fps=_fps(details),
        video_codec=video_codec,
        has_audio=bool(audios),
        audio_codec=audios[0][1] if audios else None,
        size_bytes=size,
        container=container.group(1),
    )


def _starts_like_mp4(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8)
    return head[4:8] in _MP4_FIRST_BOXES


def _duration(path: Path, stderr: str) -> float:
    match = _DURATION.search(stderr)
    if match is None:
        raise MediaError(
            "not_video", f"{path.name} does not declare a duration (Duration: N/A)", stderr=stderr
        )
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _frame_size(path: Path, details: str, stderr: str) -> tuple[int, int]:
    match = _SIZE.search(details)
    if match is None:
        raise MediaError("not_video", f"{path.name}: video stream has no frame size", stderr=stderr)
    width, height = int(match.group(1)), int(match.group(2))
    rotation = _ROTATION.search(stderr)
    # Phones store portrait video as landscape plus a rotation; report what viewers see.
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    return width, height


def _fps(details: str) -> float:
    match = _FPS.search(details)
    if match is None:
        return 0.0
    return float(match.group(1)) * (1000 if match.group(2) else 1)


def _check_tail(path: Path, info: VideoInfo) -> None:
    """Decode the last seconds: a file cut short has an index pointing past its end."""
    seconds = min(TAIL_SECONDS, info.duration_s)
    args = ["-v", "warning", "-sseof", f"-{seconds:.3f}", "-i", str(path)]
    args += ["-map", "0:v:0", "-f", "framecrc", "-"]
    result = run_ffmpeg(args, timeout=PROBE_TIMEOUT_S, check=False)
    frames = sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))
    marker = next((m for m in _TRUNCATION_MARKERS if m in result.stderr), None)
    if frames == 0 or marker is not None:
        why = (
            f"ffmpeg reports {marker!r} near its end" if marker else "no frame decodes near its end"
        )
        raise MediaError(
            "truncated",
            f"{path.name} is truncated: it declares {info.duration_s:.1f} s but {why}",
            stderr=result.stderr,
        )


def prepare(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    info: VideoInfo | None = None,
    timeout_s: float | None = None,
    parallel: int = 1,
    piece_s: float = REENCODE_PIECE_S,
) -> PreparedMedia:
    """Write out_dir/video.mp4 (H.264/AAC) and out_dir/audio.wav (16 kHz mono).

    A source that is already H.264/AAC in MP4 is stream-copied in one pass. Any other is
    re-encoded (at most 720p, libx264 ultrafast) in time pieces of ``piece_s`` seconds,
    ``parallel`` at a time, while one more ffmpeg writes both audio tracks from the source;
    the pieces are then joined with the audio by a stream copy. So the re-encode's wall time
    is its CPU time over ``parallel``, and no single ffmpeg runs longer than one piece."""
    src, out_dir = Path(src), Path(out_dir)
    info = info or probe(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    video, audio = out_dir / "video.mp4", out_dir / "audio.wav"
    one_pass = can_stream_copy(info) or info.duration_s <= piece_s
    # Encoding runs slower than real time on a small machine; give it room, not forever.
    timeout = timeout_s if timeout_s is not None else 120.0 + 4.0 * min(info.duration_s, piece_s)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".prepare-") as tmp_name:
        tmp_video, tmp_audio = Path(tmp_name) / "video.mp4", Path(tmp_name) / "audio.wav"
        if one_pass:
            args = ["-v", "error", "-y", "-i", str(src), *_video_output(info, tmp_video)]
            if info.has_audio:
                args += _audio_output(tmp_audio)
            run_ffmpeg(args, timeout=timeout)
        else:
            _reencode_in_pieces(src, info, Path(tmp_name), parallel, piece_s, timeout)
        _publish(tmp_video, video)
        if info.has_audio:
            _publish(tmp_audio, audio)
    if not info.has_audio:
        # A stale track from an earlier, different source must not outlive this run.
        audio.unlink(missing_ok=True)
    return PreparedMedia(video=video, audio=audio if info.has_audio else None, info=info)


def _reencode_in_pieces(
    src: Path, info: VideoInfo, tmp: Path, parallel: int, piece_s: float, timeout: float
) -> None:
    """tmp/video.mp4 and tmp/audio.wav from pieces encoded side by side (see ``prepare``)."""
    count = max(1, math.ceil(info.duration_s / piece_s))
    # Cuts half a frame before a frame's time, so each frame falls clearly in one piece.
    half_frame = 0.5 / (info.fps if info.fps > 0 else 25.0)
    cuts = [round(i * info.duration_s / count - half_frame, 3) for i in range(1, count)]
    jobs: list[list[str]] = []
    if info.has_audio:  # one pass over the audio only: cheap next to the picture
        aac = ["-c:a", "aac", "-b:a", "128k", "-f", "mp4", str(tmp / "audio.m4a")]
        head = ["-v", "error", "-y", "-i", str(src), "-map", "0:a:0", "-vn"]
        jobs.append([*head, *aac, *_audio_output(tmp / "audio.wav")])
    pieces = [tmp / f"piece-{i:03d}.mp4" for i in range(count)]
    for i, piece in enumerate(pieces):
        # -ss before -i seeks to the keyframe before the cut and decodes from there (exact);
        # the first piece starts at the start, the last runs to the end.
        head = ["-v", "error", "-y"] + (["-ss", f"{cuts[i - 1]:.3f}"] if i else [])
        span = [] if i == count - 1 else ["-t", f"{cuts[i] - (cuts[i - 1] if i else 0.0):.3f}"]
        video = [*span, "-map", "0:v:0", "-an", *_reencoded_video(info, threads=1)]
        jobs.append([*head, "-i", str(src), *video, "-f", "mp4", str(piece)])
    run_ffmpeg_jobs(jobs, parallel=parallel, timeout=timeout)
    listing = tmp / "pieces.txt"
    listing.write_text("".join(f"file '{p.name}'\n" for p in pieces))
    args = ["-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if info.has_audio:
        args += ["-i", str(tmp / "audio.m4a"), "-map", "0:v:0", "-map", "1:a:0"]
    args += ["-c", "copy", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags", "+bitexact"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(tmp / "video.mp4")]
    run_ffmpeg(args, timeout=timeout)


def run_ffmpeg_jobs(jobs: Sequence[Sequence[str]], *, parallel: int, timeout: float) -> None:
    """Run several ffmpeg commands, ``parallel`` at a time; the first failure is raised."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running = [pool.submit(run_ffmpeg, job, timeout=timeout) for job in jobs]
        for done in running:
            done.result()


def can_stream_copy(info: VideoInfo) -> bool:
    in_mp4 = "mp4" in info.container.split(",")
    return in_mp4 and info.video_codec == "h264" and info.audio_codec in (None, "aac")


def _video_output(info: VideoInfo, target: Path) -> list[str]:
    args = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.has_audio else [])
    if can_stream_copy(info):
        args += ["-c", "copy"]
    else:
        args += _reencoded_video(info)
        args += ["-c:a", "aac", "-b:a", "128k"] if info.has_audio else []
    # Bitexact and no copied metadata: a re-run writes the same bytes.
    args += ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags", "+bitexact"]
    return [*args, "-movflags", "+faststart", "-f", "mp4", str(target)]


def _reencoded_video(info: VideoInfo, *, threads: int = 0) -> list[str]:
    """H.264 of at most 720p (slides stay legible; never upscaled) with the fastest preset:
    measured, ultrafast at 720p costs 0.16 CPU seconds a second of 1080p30 source, veryfast at
    full size 0.40 (README, "Long lectures")."""
    # The short side down to REENCODE_MAX_SIDE if longer (never up), both sides even:
    # yuv420p cannot hold an odd width or height.
    side = "min(iw,ih)"
    w, h = (f"trunc(if(gt({side},{REENCODE_MAX_SIDE}),{d}*{REENCODE_MAX_SIDE}/{side},{d})/2)*2"
            for d in ("iw", "ih"))  # fmt: skip
    args = ["-vf", f"scale=w='{w}':h='{h}'", "-pix_fmt", "yuv420p"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-threads", str(threads)]
    return [*args, "-fflags", "+bitexact", "-flags", "+bitexact"]


def _audio_output(target: Path) -> list[str]:
    args = ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"]
    return [*args, "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "wav", str(target)]


def _publish(tmp: Path, final: Path) -> None:
    """Make the finished file durable, then swap it in with one atomic rename (and sync that)."""
    replace_durably(tmp, final)


def _tail(stderr: str) -> str:
    text = stderr.strip()
    return text[-STDERR_TAIL_CHARS:] if text else "(no stderr)"


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""
