"""Build the deterministic sample lecture (slides + espeak-ng narration) and its ground truth."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 720
FPS = 10
PAUSE_S = 0.8
SPEECH_WPM = 140
SAMPLE_RATE = 22050  # espeak-ng's native rate; ffmpeg resamples to 16 kHz when muxing
CRF = 30
MAX_BYTES = 1_000_000

BACKGROUND = (245, 243, 236)
HEADER = (28, 72, 120)
TITLE_INK = (255, 255, 255)
BODY_INK = (30, 30, 30)

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)


@dataclass(frozen=True)
class Slide:
    title: str
    bullets: tuple[str, str, str]
    spoken: str


SLIDES = (
    Slide(
        title="Rivers Carry Water",
        bullets=(
            "Rain and snow feed streams",
            "Streams join into rivers",
            "A basin drains the land",
        ),
        spoken=(
            "Rivers carry water from high ground down to the sea. Rain and melting snow "
            "gather in small streams, and the streams join to form a river. The whole area "
            "of land that drains into one river is called its basin."
        ),
    ),
    Slide(
        title="Erosion Cuts Valleys",
        bullets=(
            "Moving water lifts sediment",
            "Stones scrape the river bed",
            "Steep valleys form upstream",
        ),
        spoken=(
            "Erosion cuts valleys into the land. Fast moving water lifts sand and small "
            "stones, and those stones scrape the river bed as they roll. Over thousands of "
            "years this erosion carves deep valleys near the source of the river."
        ),
    ),
    Slide(
        title="Meanders And Bends",
        bullets=("Outer banks wear away", "Inner banks collect sand", "Loops become oxbow lakes"),
        spoken=(
            "On flat ground a river forms meanders and bends. Water flows faster on the "
            "outer bank and wears it away, while sand settles on the inner bank. When a "
            "bend is cut off, it becomes a quiet oxbow lake."
        ),
    ),
    Slide(
        title="Floodplains And Deltas",
        bullets=(
            "Floods spread fertile silt",
            "Farms grow on floodplains",
            "Deltas build at the coast",
        ),
        spoken=(
            "Floodplains and deltas are built by the river itself. When a river floods, "
            "it spreads fine silt across the floodplain, which makes the soil rich for "
            "farming. At the coast the river slows down and drops its sediment to build a delta."
        ),
    ),
    Slide(
        title="Protecting River Systems",
        bullets=(
            "Keep trees along the banks",
            "Reduce pollution from farms",
            "Give rivers room to flood",
        ),
        spoken=(
            "Protecting river systems keeps landscapes healthy. Trees along the banks hold "
            "the soil in place, and less pollution from farms keeps the water clean. "
            "Giving rivers room to flood also protects the towns downstream."
        ),
    ),
)


def find_font(bold: bool) -> Path:
    """Return a DejaVu Sans TTF, or exit with a message saying how to install one."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    sys.exit(
        f"make_lecture: font {name} not found in {[str(d) for d in FONT_DIRS]}; "
        "install it with `apt-get install -y fonts-dejavu-core`"
    )


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"make_lecture: `{name}` not found; install it with `apt-get install -y {name}`")
    return path


def draw_slide(slide: Slide, number: int, path: Path) -> None:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font = ImageFont.truetype(str(find_font(bold=True)), 64)
    body_font = ImageFont.truetype(str(find_font(bold=False)), 48)
    footer_font = ImageFont.truetype(str(find_font(bold=False)), 28)
    draw.rectangle((0, 0, WIDTH, 140), fill=HEADER)
    draw.text((70, 70), slide.title, font=title_font, fill=TITLE_INK, anchor="lm")
    for row, bullet in enumerate(slide.bullets):
        y = 250 + row * 130
        draw.ellipse((80, y - 12, 104, y + 12), fill=HEADER)
        draw.text((140, y), bullet, font=body_font, fill=BODY_INK, anchor="lm")
    # The footer is part of the shared template, so slide changes stay subtle on purpose.
    draw.line((70, 650, WIDTH - 70, 650), fill=HEADER, width=3)
    draw.text((70, 685), "How Rivers Shape Landscapes", font=footer_font, fill=HEADER, anchor="lm")
    draw.text(
        (WIDTH - 70, 685), f"{number} / {len(SLIDES)}", font=footer_font, fill=HEADER, anchor="rm"
    )
    image.save(path, format="PNG")


def speak(text: str, path: Path) -> bytes:
    """Synthesize `text` to PCM samples (s16le mono at SAMPLE_RATE)."""
    espeak = require_tool("espeak-ng")
    subprocess.run(
        [espeak, "-v", "en-us", "-s", str(SPEECH_WPM), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            sys.exit(f"make_lecture: unexpected espeak-ng WAV format in {path}")
        return wav.readframes(wav.getnframes())


def padded_length(pcm: bytes) -> tuple[bytes, float]:
    """Pad speech with silence so the slide lasts a whole number of video frames."""
    speech_s = len(pcm) / 2 / SAMPLE_RATE
    frames = math.ceil((speech_s + PAUSE_S) * FPS)
    duration = frames / FPS
    samples = round(duration * SAMPLE_RATE)
    return pcm + b"\x00\x00" * (samples - len(pcm) // 2), duration


def write_wav(pcm: bytes, path: Path) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)


def encode(images: list[Path], durations: list[float], narration: Path, out: Path) -> None:
    import imageio_ffmpeg

    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    for image, duration in zip(images, durations, strict=True):
        args += ["-loop", "1", "-framerate", str(FPS), "-t", f"{duration:.3f}", "-i", str(image)]
    args += ["-i", str(narration)]
    chain = "".join(f"[{i}:v]" for i in range(len(images)))
    args += [
        "-filter_complex",
        f"{chain}concat=n={len(images)}:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        f"{len(images)}:a",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-crf",
        str(CRF),
        "-tune",
        "stillimage",
        "-r",
        str(FPS),
        "-g",
        str(FPS * 10),
        # One encoder thread and bitexact flags keep the output byte-identical across runs.
        "-threads",
        "1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-c:a",
        "aac",
        "-b:a",
        "32k",
        "-ar",
        "16000",
        "-ac",
        "1",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-shortest",
        str(out),
    ]
    subprocess.run(args, check=True)


def build(out_dir: Path) -> dict[str, object]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="make_lecture_") as tmp_name:
        tmp = Path(tmp_name)
        images, durations, pcm_parts, entries = [], [], [], []
        start = 0.0
        for index, slide in enumerate(SLIDES):
            image = tmp / f"slide_{index}.png"
            draw_slide(slide, index + 1, image)
            pcm, duration = padded_length(speak(slide.spoken, tmp / f"speech_{index}.wav"))
            images.append(image)
            durations.append(duration)
            pcm_parts.append(pcm)
            end = round(start + duration, 3)
            entries.append(
                {
                    "index": index,
                    "start": start,
                    "end": end,
                    "title": slide.title,
                    "bullets": list(slide.bullets),
                    "spoken": slide.spoken,
                }
            )
            start = end
        narration = tmp / "narration.wav"
        write_wav(b"".join(pcm_parts), narration)
        video = tmp / "lecture.mp4"
        encode(images, durations, narration, video)
        size = video.stat().st_size
        if size > MAX_BYTES:
            sys.exit(f"make_lecture: {video.name} is {size} bytes, over {MAX_BYTES}; raise CRF")
        shutil.move(video, out_dir / "lecture.mp4")
    truth = {"duration": start, "fps": FPS, "width": WIDTH, "height": HEIGHT, "slides": entries}
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder for lecture.mp4 and ground_truth.json (default: samples/)",
    )
    args = parser.parse_args(argv)
    truth = build(args.out)
    size = (args.out / "lecture.mp4").stat().st_size
    print(
        f"wrote {args.out / 'lecture.mp4'} ({truth['duration']:.1f} s, {size} bytes, "
        f"{len(truth['slides'])} slides)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
