"""``coursegen eval``: run a corpus of lectures with ground truth through the pipeline and score
each course (WER, coverage, lesson boundaries, titles, quizzes, time)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.tooling import metrics
from statemachine.lifecycle import CourseStatus

TIERS = ("ci", "full", "long")
BUILD_HINT = "python samples/corpus.py --out {corpus} --tier {tier}"

# The targets; `failures` names every figure of an item that misses its target.
TARGETS: dict[str, float] = {
    "wer_real": 0.08,  # packaged real speech, Whisper normaliser
    "wer_synthetic": 0.12,  # espeak voices
    "coverage": 0.95,
    "f1_2s": 0.9,  # slide lectures
    "titles_exact": 0.9,  # slide lectures with titles
    "grounded": 1.0,
    "longest_ratio": 3.0,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class CorpusItem:
    name: str
    tier: str
    kind: str  # slides | talk | speech
    video: Path
    truth: Mapping[str, Any]
    source: str
    licence: str


class CorpusMissing(RuntimeError):
    """The corpus (or an item asked for) has not been built."""


def load_corpus(
    corpus: Path,
    *,
    tier: str = "full",
    only: Sequence[str] = (),
    skipped: Callable[[str], None] | None = None,
) -> list[CorpusItem]:
    """The manifest's items up to ``tier`` (or exactly ``only``) whose files exist.

    An item of the tier that is not built here (its source package missing, or a manifest
    from another machine) is left out and named to ``skipped``; one asked for by ``only``
    must be built."""
    manifest_path = corpus / "manifest.json"
    if not manifest_path.is_file():
        raise CorpusMissing(f"no {manifest_path}: " + BUILD_HINT.format(corpus=corpus, tier=tier))
    manifest = json.loads(manifest_path.read_text())["items"]
    names = list(only) or [
        name for name, entry in manifest.items() if TIERS.index(entry["tier"]) <= TIERS.index(tier)
    ]
    items = []
    for name in names:
        entry = manifest.get(name)
        if entry is None or not (corpus / entry["video"]).is_file():
            hint = f"item {name!r} not built: " + BUILD_HINT.format(corpus=corpus, tier=tier)
            if only:
                raise CorpusMissing(hint)
            if skipped is not None:
                skipped(hint)
            continue
        items.append(
            CorpusItem(
                name=name,
                tier=entry["tier"],
                kind=entry["kind"],
                video=corpus / entry["video"],
                truth=json.loads((corpus / entry["truth"]).read_text()),
                source=entry["source"],
                licence=entry["licence"],
            )
        )
    return items


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What one pipeline run left behind, read back from its artifacts."""

    status: str
    wall_s: float
    lessons: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    slides: list[dict[str, Any]]
    failure: str = ""


def run_item(item: CorpusItem, work: Path) -> Outcome:
    """One item through the embedded runtime (bridge.cli.run.run_video), offline provider."""
    from bridge.cli.run import run_video

    folder = work / item.name
    if folder.exists():
        shutil.rmtree(folder)
    started = time.perf_counter()
    summary = run_video(
        item.video,
        title=item.name,
        out=folder / "out",
        data=folder / "data",
        provider="offline",
        live=False,
    )
    wall = round(time.perf_counter() - started, 2)
    if summary["status"] != CourseStatus.COMPLETED:
        reason = str((summary.get("failure") or {}).get("reason", summary["status"]))
        return Outcome(status=summary["status"], wall_s=wall, lessons=[], segments=[],
                       slides=[], failure=reason)  # fmt: skip
    artifacts = folder / "data" / "artifacts" / summary["course_id"]
    course = json.loads((artifacts / "course.json").read_text())
    transcript = json.loads((artifacts / "transcript.json").read_text())
    slides: list[dict[str, Any]] = []
    for shard in sorted((artifacts / "slides").glob("*.json")):
        slides.extend(json.loads(shard.read_text())["frames"])
    return Outcome(
        status=CourseStatus.COMPLETED,
        wall_s=wall,
        lessons=[lesson for module in course["modules"] for lesson in module["lessons"]],
        segments=list(transcript["segments"]),
        slides=sorted(slides, key=lambda f: float(f["t"])),
    )


def score(item: CorpusItem, outcome: Outcome) -> dict[str, Any]:
    """Every figure for one item; None where a figure does not apply to its kind."""
    truth = item.truth
    stretches: list[Mapping[str, Any]] = truth["stretches"]
    row: dict[str, Any] = {
        "item": item.name,
        "kind": item.kind,
        "duration_s": truth["duration"],
        "status": outcome.status,
        "wall_s": outcome.wall_s,
    }
    if outcome.status != CourseStatus.COMPLETED:
        return {**row, "failure": outcome.failure}
    lessons = outcome.lessons
    reference = " ".join(str(s["spoken"]) for s in stretches)
    hypothesis = " ".join(str(s["text"]) for s in outcome.segments)
    overall, worst = metrics.coverage(stretches, outcome.segments)
    row |= {
        "wer_whisper": metrics.wer_whisper(reference, hypothesis),
        "wer_project": metrics.wer_project(reference, hypothesis),
        "coverage": overall,
        "coverage_min": worst,
        "lessons": len(lessons),
        "true_lessons": len(stretches) if truth["boundaries"] else None,
    }
    if truth["boundaries"]:
        true_starts = [float(s["start"]) for s in stretches]
        found = [float(lesson["start"]) for lesson in lessons]
        for tolerance in (2.0, 5.0):
            p, r, f1 = metrics.boundary_scores(true_starts, found, tolerance)
            key = f"{tolerance:.0f}s"
            row |= {f"precision_{key}": p, f"recall_{key}": r, f"f1_{key}": f1}
        row["lesson_count_error"] = len(lessons) - len(stretches)
        row["longest_ratio"] = metrics.longest_ratio(stretches, lessons)
    titles = metrics.title_scores(stretches, lessons)
    if titles is not None:
        row["titles_exact"], row["titles_fuzzy"] = titles
    shown = [_slide_text(outcome.slides, lesson) for lesson in lessons]
    row["grounded"], row["questions"] = metrics.grounded_share(lessons, shown)
    row["failures"] = failures(item, row)
    return row


def _slide_text(slides: Sequence[Mapping[str, Any]], lesson: Mapping[str, Any]) -> str:
    start, end = float(lesson["start"]), float(lesson["end"])
    return " ".join(
        " ".join([str(f.get("title", "")), *map(str, f.get("body", ()))])
        for f in slides
        if start <= float(f["t"]) < end
    )


def failures(item: CorpusItem, row: Mapping[str, Any]) -> list[str]:
    """The figures of this item that miss the issue's targets."""
    missed = []
    real = item.kind == "speech"
    wer_target = TARGETS["wer_real"] if real else TARGETS["wer_synthetic"]
    if row["wer_whisper"] > wer_target:
        missed.append("wer")
    if row["coverage_min"] < TARGETS["coverage"]:
        missed.append("coverage")
    if item.kind == "slides" and row.get("f1_2s", 1.0) < TARGETS["f1_2s"]:
        missed.append("f1_2s")
    if item.kind == "slides" and row.get("titles_exact", 1.0) < TARGETS["titles_exact"]:
        missed.append("titles")
    if row["grounded"] < TARGETS["grounded"]:
        missed.append("grounded")
    if row.get("longest_ratio", 0.0) > TARGETS["longest_ratio"]:
        missed.append("longest")
    return missed


def evaluate(
    items: Sequence[CorpusItem],
    work: Path,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        progress(f"{item.name}: running ({item.truth['duration']:.0f} s of video)")
        rows.append(score(item, run_item(item, work)))
    return rows


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("item", "item", "s"),
    ("kind", "kind", "s"),
    ("duration_s", "dur s", ".0f"),
    ("wer_whisper", "WER-w", ".3f"),
    ("wer_project", "WER-p", ".3f"),
    ("coverage", "cov", ".3f"),
    ("coverage_min", "cov-min", ".2f"),
    ("f1_2s", "F1@2s", ".2f"),
    ("f1_5s", "F1@5s", ".2f"),
    ("precision_2s", "P@2s", ".2f"),
    ("recall_2s", "R@2s", ".2f"),
    ("lessons", "lessons", "d"),
    ("true_lessons", "true", "d"),
    ("titles_exact", "title=", ".2f"),
    ("titles_fuzzy", "title~", ".2f"),
    ("grounded", "grounded", ".2f"),
    ("longest_ratio", "max-len x", ".1f"),
    ("wall_s", "wall s", ".0f"),
)


def table_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Header and one line per item, formatted; '-' where a figure does not apply."""
    out = [[label for _, label, _ in COLUMNS] + ["misses"]]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else format(value, fmt))
        cells.append(",".join(row.get("failures", ())) or row.get("failure", "") or "")
        out.append(cells)
    return out


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = table_rows(rows)
    text = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    text += ["| " + " | ".join(line) + " |" for line in lines[1:]]
    return "\n".join(text)
