"""``coursegen archive``: ended courses' histories to verified JSONL archives, then purged."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from bridge.cli.common import data_option, emit_json, open_store


@click.command()
@click.option(
    "--older-than",
    "older_than",
    default="30d",
    show_default=True,
    help="Archive courses whose last event is older than this (30d, 12h, 90m, 0s).",
)
@click.option(
    "--to",
    "to",
    required=True,
    envvar="COURSEGEN_ARCHIVE",
    help="A folder, or gs://bucket/prefix [env COURSEGEN_ARCHIVE].",
)
@data_option
@click.option("--json", "as_json", is_flag=True)
def archive(older_than: str, to: str, data: Path, as_json: bool) -> None:
    """Archive completed, failed and cancelled courses, verify each archive, then purge them
    from the live store (a tombstone names the archive; replay still finds them)."""
    from bridge.ops.archive import archive_ended, parse_duration
    from bridge.ops.archive_targets import target_for
    from statemachine.timefmt import iso

    try:
        age = parse_duration(older_than)
        target = target_for(to)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    store = open_store(data)
    try:
        report = archive_ended(store, target, before=iso(time.time() - age))
    finally:
        store.close()
    if as_json:
        emit_json(report.as_dict())
    else:
        for skipped in report.skipped:
            click.echo(f"{skipped['course_id']}: kept: {skipped['why']}", err=True)
        click.echo(
            f"{len(report.archived)} archived, {len(report.reused)} archives reused, "
            f"{len(report.purged)} purged, {len(report.skipped)} kept, to {to}"
        )
    sys.exit(1 if report.skipped else 0)
