"""Tests for slide OCR on slides drawn with Pillow, read by the real tesseract binary."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from PIL import Image, ImageDraw, ImageFont

from handlers.media.ocr import (
    TESSERACT_ENV,
    SlideText,
    TesseractMissing,
    read_slide,
    read_slides,
)

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SAMPLES = Path(__file__).resolve().parents[3] / "samples"
pytestmark = [
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="apt-get install tesseract-ocr"),
    pytest.mark.skipif(not FONTS.is_dir(), reason="apt-get install fonts-dejavu-core"),
]

TITLE = "Photosynthesis In Plants"
BULLETS = (
    "Leaves capture sunlight energy",
    "Roots absorb water from soil",
    "Oxygen is released into the air",
)


def draw_slide(
    path: Path,
    title: str | None,
    lines: tuple[str, ...],
    *,
    width: int = 1280,
    title_size: int = 64,
    body_size: int = 36,
) -> Path:
    """A white 16:9 slide: bold title near the top, bulleted lines below, scaled to width."""
    image = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(image)
    if title:
        bold = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), title_size)
        draw.text((80, 60), title, font=bold, fill=(20, 40, 90))
    regular = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), body_size)
    for i, line in enumerate(lines):
        draw.text((100, 240 + i * 90), f"\u2022 {line}", font=regular, fill="black")
    if width != 1280:
        image = image.resize((width, width * 720 // 1280), Image.Resampling.LANCZOS)
    image.save(path)
    return path


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _found_share(expected: tuple[str, ...], body: tuple[str, ...]) -> float:
    wanted = [word for line in expected for word in _words(line)]
    seen = set(_words(" ".join(body)))
    return sum(word in seen for word in wanted) / len(wanted)


@pytest.mark.parametrize("width", [1280, 640])
def test_title_and_bullets_are_recovered(tmp_path: Path, width: int) -> None:
    slide = read_slide(draw_slide(tmp_path / "slide.png", TITLE, BULLETS, width=width))
    assert slide.title.lower() == TITLE.lower()
    assert _found_share(BULLETS, slide.body) >= 0.9, slide.body
    assert len(slide.body) == len(BULLETS)
    assert 0.6 <= slide.title_confidence <= 1.0
    assert 0.6 <= slide.body_confidence <= 1.0
    assert slide.words == len(_words(TITLE)) + sum(len(_words(b)) for b in BULLETS)


def test_bullet_glyphs_are_not_part_of_the_lines(tmp_path: Path) -> None:
    slide = read_slide(draw_slide(tmp_path / "slide.png", TITLE, BULLETS, width=640))
    assert [line.split()[0] for line in slide.body] == [b.split()[0] for b in BULLETS]


def test_body_keeps_reading_order(tmp_path: Path) -> None:
    slide = read_slide(draw_slide(tmp_path / "slide.png", TITLE, BULLETS))
    firsts = [_words(line)[0] for line in slide.body]
    assert firsts == ["leaves", "roots", "oxygen"]


def test_wrapped_title_is_joined(tmp_path: Path) -> None:
    image = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(image)
    bold = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), 60)
    draw.multiline_text((80, 40), "How Rivers Shape\nThe Landscape", font=bold, fill="black")
    regular = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), 34)
    draw.text((100, 400), "Water moves sediment downstream", font=regular, fill="black")
    image.save(tmp_path / "wrapped.png")
    slide = read_slide(tmp_path / "wrapped.png")
    assert slide.title.lower() == "how rivers shape the landscape"
    assert slide.body == ("Water moves sediment downstream",)


def test_slide_without_a_header_has_no_title(tmp_path: Path) -> None:
    slide = read_slide(draw_slide(tmp_path / "plain.png", None, BULLETS))
    assert slide.title == ""
    assert slide.title_confidence == 0.0
    assert _found_share(BULLETS, slide.body) >= 0.9


def test_blank_image_gives_empty_text(tmp_path: Path) -> None:
    Image.new("RGB", (640, 360), "white").save(tmp_path / "blank.png")
    assert read_slide(tmp_path / "blank.png") == SlideText(
        title="", body=(), title_confidence=0.0, body_confidence=0.0, words=0
    )


def test_read_slides_keeps_the_order_of_the_paths(tmp_path: Path) -> None:
    titles = ["Alpha Particles", "Beta Decay", "Gamma Rays"]
    paths = [
        draw_slide(tmp_path / f"{i}.png", title, BULLETS[:1], width=640)
        for i, title in enumerate(titles)
    ]
    assert [slide.title for slide in read_slides(paths)] == titles


def test_missing_binary_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(TESSERACT_ENV, str(tmp_path / "no-tesseract"))
    with pytest.raises(TesseractMissing, match="apt-get install -y tesseract-ocr"):
        read_slide(draw_slide(tmp_path / "slide.png", TITLE, BULLETS))


@pytest.mark.skipif(
    not (SAMPLES / "lecture.mp4").is_file() or not (SAMPLES / "ground_truth.json").is_file(),
    reason="samples/lecture.mp4 and samples/ground_truth.json are not there",
)
def test_sample_lecture_slides_are_read(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    paths = [
        _grab_frame(
            SAMPLES / "lecture.mp4", (slide["start"] + slide["end"]) / 2, tmp_path / f"{i}.png"
        )
        for i, slide in enumerate(truth["slides"])
    ]
    for slide, read in zip(truth["slides"], read_slides(paths), strict=True):
        assert read.title.lower() == slide["title"].lower()
        assert _found_share(tuple(slide["bullets"]), read.body) >= 0.9, read.body


def _grab_frame(video: Path, at_s: float, path: Path, *, width: int = 640) -> Path:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    scale = ("-frames:v", "1", "-vf", f"scale={width}:-2")
    subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-ss", str(at_s), "-i", str(video), *scale, str(path)],
        check=True,
    )
    return path


def _corpus() -> object:
    import sys

    sys.path.insert(0, str(SAMPLES))
    import corpus

    return corpus


@pytest.mark.parametrize(
    "template,titles",
    [
        ("ORANGE_BAR", ["Graph Traversal", "Dynamic Programming", "Routing Tables"]),
        ("LIGHT", ["Routing Tables", "Domain Names"]),
        ("TEAL_BAR_BIG", ["Operating System Kernels", "Load Balancing"]),
        ("PORTRAIT", ["Hash Functions", "Public Key Encryption"]),
        ("DARK", ["Binary Search", "Sorting Algorithms"]),
    ],
)
def test_titles_in_coloured_bars_and_odd_sizes_are_read_whole(
    tmp_path: Path, template: str, titles: list[str]
) -> None:
    corpus: Any = _corpus()
    style = getattr(corpus, template)
    for n, title in enumerate(titles):
        deck = corpus.Slide(title=title, bullets=BULLETS, spoken="")
        path = tmp_path / f"{n}.png"
        corpus.draw_slide(deck, style, n + 1, 36, path)
        with Image.open(path) as image:  # what extract_frames hands OCR: 640 px wide
            small = image.resize((640, round(image.height * 640 / image.width) // 2 * 2))
        small.save(tmp_path / f"{n}.jpg", quality=85)
        assert read_slide(tmp_path / f"{n}.jpg").title == title


def test_a_slide_without_a_title_line_gets_none(tmp_path: Path) -> None:
    corpus: Any = _corpus()
    bullets = ("Adds careful redundancy", "Repairs flipped bits", "Protects disks and radio links")
    deck = corpus.Slide(title="Error Correcting Codes", bullets=bullets, spoken="")
    corpus.draw_slide(deck, corpus.NO_TITLE, 1, 4, tmp_path / "s.png")
    read = read_slide(tmp_path / "s.png")
    assert read.title == "" and _found_share(bullets, read.body) >= 0.9
