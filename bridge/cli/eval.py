"""``coursegen eval``: the quality table over the evaluation corpus (samples/corpus.py)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from bridge.tooling.evaluate import (
    BUILD_HINT,
    TIERS,
    CorpusMissing,
    evaluate,
    load_corpus,
    markdown,
    table_rows,
)
from handlers.media.speech import MODEL_DIR_ENV, SpeechModelMissing, model_dir, model_label
from statemachine.lifecycle import CourseStatus


@click.command("eval")
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURSEGEN_CORPUS_DIR",
    default="samples/corpus",
    show_default=True,
    help="Folder built by samples/corpus.py [env COURSEGEN_CORPUS_DIR].",
)
@click.option("--tier", type=click.Choice(TIERS), default="full", show_default=True)
@click.option("--only", multiple=True, help="Run only this item (repeatable).")
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep each run's data and course here (default: a temporary folder).",
)
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 if any item misses a target.")
@click.option(
    "--speech-model",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Transcribe with this Whisper model folder (coursegen model assemble whisper-base) "
    "instead of the bundled tiny.en; sets COURSEGEN_WHISPER_MODEL_DIR for the run.",
)
def eval_command(
    corpus: Path,
    tier: str,
    only: tuple[str, ...],
    work: Path | None,
    as_markdown: bool,
    as_json: bool,
    strict: bool,
    speech_model: Path | None,
) -> None:
    """Run every corpus item through the pipeline and print one table of quality figures."""
    if speech_model is not None:
        os.environ[MODEL_DIR_ENV] = str(speech_model.resolve())
        try:
            model_dir()
        except SpeechModelMissing as err:
            raise click.ClickException(str(err)) from err

    def progress(line: str) -> None:
        click.echo(line, err=True)

    try:
        items = load_corpus(corpus, tier=tier, only=only, skipped=progress)
    except CorpusMissing as err:
        raise click.ClickException(str(err)) from err
    if not items:
        raise click.ClickException(
            f"no item of tier {tier!r} is built in {corpus}: "
            + BUILD_HINT.format(corpus=corpus, tier=tier)
        )

    with tempfile.TemporaryDirectory(prefix="coursegen-eval-") as tmp:
        rows = evaluate(items, work or Path(tmp), progress=progress)
    if as_json:
        report = {"tier": tier, "speech_model": model_label(), "items": rows}
        click.echo(json.dumps(report, indent=2))
    elif as_markdown:
        click.echo(markdown(rows))
    else:
        _print(table_rows(rows))
    missed = (r.get("failures") or r["status"] != CourseStatus.COMPLETED for r in rows)
    if strict and any(missed):
        sys.exit(1)


def _print(lines: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for label in lines[0]:
        table.add_column(label)
    for line in lines[1:]:
        table.add_row(*line)
    Console(width=200).print(table)


def register(main: click.Group) -> None:
    main.add_command(eval_command)
