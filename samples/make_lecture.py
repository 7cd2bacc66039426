"""Build the deterministic sample lecture (slides + espeak-ng narration) and its ground truth;
``--minutes N`` builds a long one instead (many distinct slides, varied text) for benchmarks."""

from __future__ import annotations

import argparse
import json
import math
import random
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


def draw_slide(
    slide: Slide,
    number: int,
    path: Path,
    *,
    total: int | None = len(SLIDES),
    footer: str = "How Rivers Shape Landscapes",
) -> None:
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
    draw.text((70, 685), footer, font=footer_font, fill=HEADER, anchor="lm")
    page = f"{number} / {total}" if total else str(number)
    draw.text((WIDTH - 70, 685), page, font=footer_font, fill=HEADER, anchor="rm")
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


# ---- long lectures (benchmarks) ---------------------------------------------------------

LONG_FOOTER = "A Long Lecture On Many Things"
LONG_SLIDE_S = 20.0  # a slide's narration lasts about 20 to 25 s, like a real lecture's
_SUBJECTS = (
    "glacier", "volcano", "enzyme", "parliament", "telescope", "algorithm", "river delta",
    "coral reef", "market price", "printing press", "steam engine", "immune cell", "comet",
    "desert dune", "trade route", "magnet", "bridge cable", "rain forest", "satellite",
    "language family", "city wall", "wind turbine", "honey bee", "ocean current", "fossil",
    "copper mine", "railway", "cathedral", "harbour", "prairie", "monsoon", "lighthouse",
)  # fmt: skip
_ADJECTIVES = (
    "ancient", "modern", "fragile", "powerful", "hidden", "northern", "tropical", "frozen",
    "busy", "quiet", "giant", "tiny", "curious", "famous", "restless", "patient",
)  # fmt: skip
_VERBS = (
    "changes", "protects", "carries", "measures", "shapes", "feeds", "warms", "connects",
    "records", "slows", "lifts", "divides", "guides", "stores", "spreads", "repairs",
)  # fmt: skip
_THINGS = (
    "the landscape", "the climate", "local farmers", "distant towns", "the soil", "old maps",
    "the economy", "young students", "the coastline", "fresh water", "the night sky",
    "busy markets", "the forest floor", "travelling merchants", "the weather", "tall ships",
)  # fmt: skip
_ASPECTS = ("History", "Structure", "Energy", "Balance", "Growth", "Limits", "Future", "Origins")


def long_slides(count: int, seed: int = 0) -> list[Slide]:
    """``count`` distinct slides with varied titles, bullets and narration (deterministic)."""
    rng = random.Random(f"coursegen-long-lecture:{seed}")
    slides = []
    for i in range(count):
        subject = _SUBJECTS[(i * 7 + i // len(_SUBJECTS)) % len(_SUBJECTS)]
        aspect = _ASPECTS[(i * 3 + i // 8) % len(_ASPECTS)]
        adjective = rng.choice(_ADJECTIVES)
        verbs = rng.sample(_VERBS, 4)
        things = rng.sample(_THINGS, 4)
        title = f"{aspect} Of The {adjective.title()} {subject.title()}"
        bullets = (
            f"The {subject} {verbs[0]} {things[0]}",
            f"A {adjective} {subject} {verbs[1]} {things[1]}",
            f"Part {i + 1} {verbs[2]} {things[2]}",
        )
        spoken = (
            f"This part is about the {aspect.lower()} of the {adjective} {subject}. "
            f"A {subject} {verbs[0]} {things[0]}, and over many years it also "
            f"{verbs[1]} {things[1]}. Scientists who study the {subject} say that it "
            f"{verbs[2]} {things[2]} more than most people expect. In part {i + 1} we "
            f"also see how the {adjective} {subject} {verbs[3]} {things[3]}."
        )
        slides.append(Slide(title=title, bullets=bullets, spoken=spoken))
    return slides


def build_long(
    out_dir: Path, minutes: float, *, seed: int = 0, fps: int = FPS
) -> dict[str, object]:
    """A lecture of about ``minutes``: a slide every ~20 s, each narrated by espeak-ng.

    Streams the narration to disk slide by slide and encodes with the concat demuxer, so even
    two hours take little memory; writes lecture.mp4 and ground_truth.json in ``out_dir``."""
    import imageio_ffmpeg

    out_dir.mkdir(parents=True, exist_ok=True)
    # Slides until the narration reaches ``minutes`` (espeak-ng's pace decides how many).
    slides = long_slides(math.ceil(minutes * 60 / LONG_SLIDE_S) * 2, seed)
    entries: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="make_long_lecture_") as tmp_name:
        tmp = Path(tmp_name)
        narration = tmp / "narration.wav"
        listing: list[str] = []
        start = 0.0
        with wave.open(str(narration), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            for index, slide in enumerate(slides):
                if entries and start + LONG_SLIDE_S / 2 >= minutes * 60:
                    break
                image = tmp / f"slide_{index:04d}.png"
                draw_slide(slide, index + 1, image, total=None, footer=LONG_FOOTER)
                pcm, duration = padded_length(speak(slide.spoken, tmp / "speech.wav"))
                wav.writeframes(pcm)
                listing += [f"file '{image}'", f"duration {duration:.3f}"]
                end = round(start + duration, 3)
                entries.append(
                    {"index": index, "start": start, "end": end, "title": slide.title,
                     "bullets": list(slide.bullets), "spoken": slide.spoken}
                )  # fmt: skip
                start = end
        listing.append(listing[-2])  # the concat demuxer needs the last image named twice
        (tmp / "slides.txt").write_text("\n".join(listing) + "\n")
        video = tmp / "lecture.mp4"
        args = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
        args += ["-f", "concat", "-safe", "0", "-i", str(tmp / "slides.txt"), "-i", str(narration)]
        args += ["-map", "0:v", "-map", "1:a", "-r", str(fps), "-t", f"{start:.3f}"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage"]
        args += ["-pix_fmt", "yuv420p", "-g", str(fps * 10), "-c:a", "aac", "-b:a", "32k"]
        args += ["-ar", "16000", "-ac", "1", "-movflags", "+faststart", str(video)]
        subprocess.run(args, check=True)
        shutil.move(video, out_dir / "lecture.mp4")
    truth = {"duration": start, "fps": fps, "width": WIDTH, "height": HEIGHT, "slides": entries}
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder for lecture.mp4 and ground_truth.json (default: samples/)",
    )
    parser.add_argument(
        "--minutes", type=float, help="build a long lecture of about this many minutes instead"
    )
    args = parser.parse_args(argv)
    truth = build_long(args.out, args.minutes) if args.minutes else build(args.out)
    size = (args.out / "lecture.mp4").stat().st_size
    print(
        f"wrote {args.out / 'lecture.mp4'} ({truth['duration']:.1f} s, {size} bytes, "
        f"{len(truth['slides'])} slides)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
