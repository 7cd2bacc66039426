"""OCR of slide frames with the tesseract binary: a title line and body lines per frame."""

from __future__ import annotations

import csv
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

TESSERACT_ENV = "TESSERACT_CMD"
MIN_CONFIDENCE = 40.0
# Headers sit in the top part of a slide; a big line lower down is a figure label, not a title.
HEADER_ZONE = 0.4
# A title must stand out from the body; equal-sized lines mean the slide has no header.
TITLE_HEIGHT_RATIO = 1.15
TIMEOUT_S = 60.0
# A header bar: rows whose median grey differs from the page's by this much, at least this
# share of the page tall, starting in the top 5%.
BAR_CONTRAST = 40
BAR_MIN_HEIGHT = 0.06
# A bar shorter than this (in pixels) is scaled up before OCR: small titles read better.
BAND_SCALE = 2
BAND_SCALE_BELOW_PX = 200
# Lines of a bar this close to its biggest line's height are the title (a wrapped title).
BAR_TITLE_SHARE = 0.8
# Rows of a bar whose median grey jumps by this much start a new band.
BAND_STEP = 12
BAND_RUN = 4
# What tesseract makes of a bullet glyph when it reads it as letters ("•" comes out as "e",
# "e@" or "@" on rendered slides); a short token of symbols only ("¢", "»", "-") is one too.
BULLET_LETTERS = frozenset({"e", "o", "e@", "@e", "eo", "oe", "ee"})
# A token this short with one of these marks at a title's start or end is a crumb (an icon, the
# bar's edge), not a word: "fe]" before beamer's "Our formalization of haplotyping.".
CRUMB_MAX_CHARS = 4
CRUMB_MARKS = frozenset("[]{}|\\<>_~")


class TesseractMissing(RuntimeError):
    """The tesseract binary is not installed or not on PATH."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SlideText:
    title: str
    body: tuple[str, ...]
    title_confidence: float
    body_confidence: float
    words: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "body": list(self.body),
            "title_confidence": self.title_confidence,
            "body_confidence": self.body_confidence,
            "words": self.words,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class _Word:
    key: tuple[int, int, int]  # block, paragraph, line
    text: str
    top: int
    height: int
    confidence: float


@dataclass(frozen=True, kw_only=True, slots=True)
class _Line:
    key: tuple[int, int, int]
    words: tuple[_Word, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def top(self) -> int:
        return min(word.top for word in self.words)

    @property
    def height(self) -> float:
        # The median ignores one tall glyph (a "g" or "|") that would inflate the line.
        return statistics.median(word.height for word in self.words)


EMPTY = SlideText(title="", body=(), title_confidence=0.0, body_confidence=0.0, words=0)


def tesseract_binary() -> str:
    """Path of the tesseract executable ($TESSERACT_CMD or PATH)."""
    found = shutil.which(os.environ.get(TESSERACT_ENV, "tesseract"))
    if found is None:
        raise TesseractMissing(
            "tesseract not found: apt-get install -y tesseract-ocr (or set TESSERACT_CMD)"
        )
    return found


def run_tesseract(image_path: Path | str, *, psm: int = 3, lang: str = "eng") -> str:
    """Tesseract's TSV (one row per page, block, paragraph, line and word) for an image."""
    # One OpenMP thread per tesseract is 2-3x faster on few cores. It goes in the child's
    # environment only: the process may also host CTranslate2, whose libgomp it would throttle.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [tesseract_binary(), str(image_path), "stdout", "--psm", str(psm), "-l", lang, "tsv"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"tesseract failed on {image_path}: {done.stderr.strip()}")
    return done.stdout


def read_slide(image_path: Path | str) -> SlideText:
    """Title and body lines of one slide image.

    A coloured header bar is read on its own, binarised with its own threshold and polarity
    and scaled up, so its light-on-colour title is not cut by the page-wide threshold; without
    a bar the title is the top line of the header zone, if it stands out by size.
    """
    page_height, words = _parse_tsv(run_tesseract(image_path))
    bar = header_bar(image_path)
    if bar is not None:
        top, bottom = bar
        body = _group_lines([w for w in words if not top <= w.top + w.height / 2 <= bottom])
        # A stack of bands (beamer: navigation, section, frame title): the title is the band
        # with the largest letters; the others' text goes to the body.
        bands = [_read_band(image_path, a, b) for a, b in _sub_bands(image_path, top, bottom)]
        bands = [band for band in bands if band]
        bar_lines = [line for band in bands for line in _group_lines(band)]
        if bar_lines:
            biggest = max(line.height for line in bar_lines)
            title = [line for line in bar_lines if line.height >= BAR_TITLE_SHARE * biggest]
            rest = [line for line in bar_lines if line not in title]
            return _slide_text(title, [*rest, *body])
        lines = body
    else:
        lines = _group_lines(words)
    if not lines:
        return EMPTY
    title_lines = _title_lines(lines, page_height)
    return _slide_text(title_lines, [line for line in lines if line not in title_lines])


def _slide_text(title_lines: Sequence[_Line], body: Sequence[_Line]) -> SlideText:
    title_words = _without_crumbs([word for line in title_lines for word in line.words])
    body_words = [word for line in body for word in line.words]
    return SlideText(
        title=" ".join(word.text for word in title_words),
        body=tuple(line.text for line in body),
        title_confidence=_confidence(title_words),
        body_confidence=_confidence(body_words),
        words=len(title_words) + len(body_words),
    )


def header_bar(image_path: Path | str) -> tuple[int, int] | None:
    """Rows (top, bottom) of a solid band at the top whose colour is not the page's, if any."""
    with Image.open(image_path) as image:
        gray = np.asarray(image.convert("L"), dtype=np.int16)
    height = gray.shape[0]
    rows = np.median(gray, axis=1)
    background = float(np.median(gray))
    # The band must start near the top and be uniform across most of the width.
    differs = np.abs(rows - background) >= BAR_CONTRAST
    start = 0
    while start < height * 0.05 and not differs[start]:
        start += 1
    if start >= height * 0.05:
        return None
    end = start
    while end < height * HEADER_ZONE and differs[end]:
        end += 1
    if end - start < height * BAR_MIN_HEIGHT:
        return None
    return start, end


def _sub_bands(image_path: Path | str, top: int, bottom: int) -> list[tuple[int, int]]:
    """Split a header bar where its background colour changes (rows' median grey jumps)."""
    with Image.open(image_path) as image:
        gray = np.asarray(image.convert("L"), dtype=np.int16)[top:bottom]
    rows = np.median(gray, axis=1)
    edges = [0]
    for i in range(BAND_RUN, len(rows) - BAND_RUN + 1):
        before, after = rows[i - BAND_RUN : i], rows[i : i + BAND_RUN]
        # Only a step between two steady runs of rows: a wide line of text also moves the
        # median of the rows it crosses, and must not be cut through.
        steady = np.ptp(before) <= 4 and np.ptp(after) <= 4
        if steady and abs(float(after.mean() - before.mean())) >= BAND_STEP and i - edges[-1] > 1:
            edges.append(i)
    edges.append(len(rows))
    bands = [(top + a, top + b) for a, b in itertools.pairwise(edges) if b - a >= 8]
    return bands or [(top, bottom)]


def _read_band(image_path: Path | str, top: int, bottom: int) -> list[_Word]:
    """OCR one horizontal band: own Otsu threshold, dark text on white, scaled up."""
    with Image.open(image_path) as image:
        band = np.asarray(image.convert("L").crop((0, top, image.width, bottom)), dtype=np.uint8)
    threshold = _otsu(band)
    ink = band > threshold
    # Text is the minority of a band's pixels: make it black on white whatever its colour.
    if ink.mean() > 0.5:
        ink = ~ink
    binary = np.where(ink, 0, 255).astype(np.uint8)
    scale = BAND_SCALE if band.shape[0] < BAND_SCALE_BELOW_PX else 1
    picture = Image.fromarray(binary)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.LANCZOS
        )
    padded = Image.new("L", (picture.width + 40, picture.height + 40), 255)
    padded.paste(picture, (20, 20))
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        padded.save(handle.name)
        _, words = _parse_tsv(run_tesseract(handle.name, psm=6))
    # Back to page coordinates, so callers can compare with the page's words.
    return [
        _Word(
            key=w.key,
            text=w.text,
            top=top + (w.top - 20) // scale,
            height=w.height // scale,
            confidence=w.confidence,
        )
        for w in words
    ]


def _otsu(gray: np.ndarray) -> int:
    histogram = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    levels = np.arange(256)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * weight / total - mean) ** 2 / (weight * (total - weight))
    return int(np.nanargmax(between))


def read_slides(paths: Iterable[Path | str], *, workers: int = 2) -> list[SlideText]:
    """read_slide for many frames, in order; each tesseract is a single-threaded child."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(read_slide, paths))


def _parse_tsv(tsv: str) -> tuple[int, list[_Word]]:
    page_height = 0
    words: list[_Word] = []
    for row in csv.DictReader(tsv.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row["level"] == "1":
            page_height = int(row["height"])
        if row["level"] != "5" or float(row["conf"]) < MIN_CONFIDENCE:
            continue
        text = (row.get("text") or "").strip()
        if text:
            words.append(
                _Word(
                    key=(int(row["block_num"]), int(row["par_num"]), int(row["line_num"])),
                    text=text,
                    top=int(row["top"]),
                    height=int(row["height"]),
                    confidence=float(row["conf"]),
                )
            )
    return page_height, words


def _group_lines(words: Sequence[_Word]) -> list[_Line]:
    """Words into lines, kept in tesseract's reading order; punctuation-only lines dropped."""
    grouped: dict[tuple[int, int, int], list[_Word]] = {}
    for word in words:
        grouped.setdefault(word.key, []).append(word)
    lines = [_Line(key=key, words=_without_bullet(found)) for key, found in grouped.items()]
    return [line for line in lines if any(ch.isalnum() for ch in line.text)]


def _without_bullet(words: Sequence[_Word]) -> tuple[_Word, ...]:
    if len(words) > 1 and _is_bullet(words[0].text):
        return tuple(words[1:])
    return tuple(words)


def _without_crumbs(words: Sequence[_Word]) -> list[_Word]:
    """A title without the crumbs at its ends: a short token holding a bracket or a bar
    ("fe]", "|") is an icon or the bar's edge read as letters, not a word of the title."""
    kept = list(words)
    while kept and _is_crumb(kept[0].text):
        kept.pop(0)
    while kept and _is_crumb(kept[-1].text):
        kept.pop()
    return kept


def _is_crumb(token: str) -> bool:
    return len(token) <= CRUMB_MAX_CHARS and any(ch in CRUMB_MARKS for ch in token)


def _is_bullet(token: str) -> bool:
    symbols_only = len(token) <= 2 and not any(ch.isalnum() for ch in token)
    return symbols_only or token in BULLET_LETTERS


def _title_lines(lines: Sequence[_Line], page_height: int) -> list[_Line]:
    """The tallest header-zone line, plus its neighbours of the same size (a wrapped title)."""
    zone = page_height * HEADER_ZONE if page_height else float("inf")
    candidates = [line for line in lines if line.top < zone]
    if not candidates:
        return []
    tallest = max(candidates, key=lambda line: line.height)
    # A title is the top line (or a wrapped run from it); a taller line lower down is a body
    # line with tall letters ("flipped") on a slide that has no title.
    if lines.index(tallest) > 0 and not _same_title(lines[0], tallest, zone):
        return []
    others = [line.height for line in lines if line is not tallest]
    if others and tallest.height < TITLE_HEIGHT_RATIO * statistics.median(others):
        return []
    start = end = lines.index(tallest)
    while start > 0 and _same_title(lines[start - 1], tallest, zone):
        start -= 1
    while end + 1 < len(lines) and _same_title(lines[end + 1], tallest, zone):
        end += 1
    return list(lines[start : end + 1])


def _same_title(line: _Line, title: _Line, zone: float) -> bool:
    return (
        line.key[:2] == title.key[:2]
        and line.top < zone
        and abs(line.height - title.height) <= 0.15 * title.height
    )


def _confidence(words: Sequence[_Word]) -> float:
    if not words:
        return 0.0
    return round(statistics.fmean(word.confidence for word in words) / 100.0, 3)
