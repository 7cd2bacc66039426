"""``coursegen bench media``: extract_frames against a decode-only pass (the physical floor),
and the whole offline pipeline's wall time on the sample lecture."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from handlers.media.ffmpeg import run_ffmpeg
from handlers.media.frames import decode_only_seconds, extract_frames
from statemachine.lifecycle import CourseStatus

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "lecture.mp4"


def make_lecture_like(path: Path, minutes: int, slide_s: int = 20) -> Path:
    """A 720p lecture-like video: distinct slides (Pillow) every ``slide_s`` s, a tone track."""
    from PIL import Image, ImageDraw

    slides = max(1, minutes * 60 // slide_s)
    folder = path.parent / "slides"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(slides):
        img = Image.new("RGB", (1280, 720), "white")
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, 1280, 110), fill=(20, 40, 110))
        for j in range(4):  # a different layout of blocks per slide
            x = 60 + ((i * 7 + j * 5) % 11) * 100
            y = 160 + j * 130
            draw.rectangle(
                (x, y, x + 180 + (i * 37 + j * 53) % 300, y + 80),
                fill=((i * 40 + j * 60) % 200, (i * 90) % 200, (j * 70) % 200),
            )
        png = folder / f"slide_{i:03d}.png"
        img.save(png)
        lines += [f"file '{png}'", f"duration {slide_s}"]
    lines.append(f"file '{folder / f'slide_{slides - 1:03d}.png'}'")
    listing = path.parent / "slides.txt"
    listing.write_text("\n".join(lines) + "\n")
    seconds = slides * slide_s
    run_ffmpeg(
        [
            "-y",
            "-v",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=16000:duration={seconds}",
            "-r",
            "10",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "1",
            "-t",
            str(seconds),
            str(path),
        ],
        timeout=1800,
    )
    return path


def bench_media(minutes: int = 10, pipeline: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coursegen-media-") as tmp:
        video = make_lecture_like(Path(tmp) / "long.mp4", minutes)
        decode = min(decode_only_seconds(video) for _ in range(2))
        runs = []
        frames = 0
        for i in range(2):
            t0 = time.perf_counter()
            frames = len(extract_frames(video, Path(tmp) / f"frames{i}"))
            runs.append(time.perf_counter() - t0)
        result: dict[str, Any] = {
            "benchmark": "media",
            "video_minutes": minutes,
            "video_size": "1280x720",
            "decode_only_s": round(decode, 3),
            "extract_frames_s": round(min(runs), 3),
            "extract_vs_decode": round(min(runs) / decode, 3),
            "frames": frames,
        }
        if pipeline:
            result.update(_pipeline(Path(tmp)))
    return result


def _pipeline(tmp: Path) -> dict[str, Any]:
    """The offline pipeline on the sample, twice: the second run has the model loaded."""
    from bridge.cli.run import run_video

    walls = []
    summary: dict[str, Any] = {}
    for i in range(2):
        t0 = time.perf_counter()
        summary = run_video(
            SAMPLE, title="Sample", out=tmp / f"out{i}", data=tmp / f"data{i}", live=False
        )
        walls.append(time.perf_counter() - t0)
        if summary["status"] != CourseStatus.COMPLETED:
            raise RuntimeError(f"the sample did not complete: {summary.get('failure')}")
    return {
        "sample_first_run_s": round(walls[0], 2),
        "sample_run_s": round(walls[1], 2),
        "sample_step_seconds": summary["step_seconds"],
    }
