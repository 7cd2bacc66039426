"""What the coursegen commands share: the --data option, opening the store, printing JSON."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from bridge.runtime.stores import StoreUnavailable
from bridge.runtime.stores import open_store as runtime_store
from bridge.settings import Settings
from statemachine.ports import EventStore


def open_store(data: Path, settings: Settings | None = None) -> EventStore:
    """The store a read or operator command works on: it must exist already, and be readable."""
    try:
        return runtime_store(settings or Settings.from_env(), data, must_exist=True)
    except StoreUnavailable as err:
        raise click.ClickException(str(err)) from None
    except sqlite3.DatabaseError as err:
        path = data / "events.db"
        raise click.ClickException(
            f"{path} is not a readable coursegen event store ({err})"
        ) from None


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURSEGEN_DATA_DIR",
    default=".coursegen",
    show_default=True,
    help="Folder of the embedded event store and artifacts [env COURSEGEN_DATA_DIR].",
)


def text_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain aligned columns (wide tables stay readable in a narrow terminal or a log, and no
    cell is ever cut: a course id can always be copied)."""
    if not rows:
        return "(nothing)\n"
    cells = [[str(k) for k in rows[0]]]
    cells += [["-" if v is None else str(v) for v in row.values()] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
