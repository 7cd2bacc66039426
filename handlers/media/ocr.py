"""OCR of slide frames with the tesseract binary: a title line and body lines per frame."""

from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESSERACT_ENV = "TESSERACT_CMD"
MIN_CONFIDENCE = 40.0
# Headers sit in the top part of a slide; a big line lower down is a figure label, not a title.
HEADER_ZONE = 0.4
# A title must stand out from the body; equal-sized lines mean the slide has no header.
TITLE_HEIGHT_RATIO = 1.15
TIMEOUT_S = 60.0
# What tesseract makes of a bullet glyph when it reads it as letters ("•" comes out as "e",
# "e@" or "@" on rendered slides); a short token of symbols only ("¢", "»", "-") is one too.
BULLET_LETTERS = frozenset({"e", "o", "e@", "@e", "eo", "oe", "ee"})


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
    """Title (largest line in the header zone) and body lines of one slide image."""
    page_height, words = _parse_tsv(run_tesseract(image_path))
    lines = _group_lines(words)
    if not lines:
        return EMPTY
    title_lines = _title_lines(lines, page_height)
    body = [line for line in lines if line not in title_lines]
    title_words = [word for line in title_lines for word in line.words]
    body_words = [word for line in body for word in line.words]
    return SlideText(
        title=" ".join(line.text for line in title_lines),
        body=tuple(line.text for line in body),
        title_confidence=_confidence(title_words),
        body_confidence=_confidence(body_words),
        words=len(title_words) + len(body_words),
    )


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
