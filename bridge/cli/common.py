"""What the coursegen commands share: the --data option, opening the store, printing JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bridge.runtime.stores import StoreUnavailable
from bridge.runtime.stores import open_store as runtime_store
from bridge.settings import Settings
from statemachine.ports import EventStore


def open_store(data: Path, settings: Settings | None = None) -> EventStore:
    """The store a read or operator command works on: it must exist already."""
    try:
        return runtime_store(settings or Settings.from_env(), data, must_exist=True)
    except StoreUnavailable as err:
        raise click.ClickException(str(err)) from None


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
