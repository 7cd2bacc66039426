"""``coursegen dead-letters list|show|republish``: the messages the bridge or Pub/Sub parked.

On the embedded store (``COURSEGEN_STORE=sqlite``) they are the lines of
``DATA/dead-letters.jsonl``; with ``COURSEGEN_STORE=firestore`` the messages on the
``{source}-dead-letter-hold`` subscription of ``GOOGLE_CLOUD_PROJECT``
(``bridge.ops.dead_letters``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from bridge.cli.common import data_option, text_table
from bridge.ops import dead_letters as dl
from bridge.settings import Settings

source_option = click.option(
    "--source",
    type=click.Choice(dl.SOURCES),
    default="course-requests",
    show_default=True,
    help="Cloud only: the topic whose dead letters to read.",
)


def register(main: click.Group) -> None:
    """Add the ``dead-letters`` group to ``coursegen``."""
    main.add_command(dead_letters)


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages that could not be processed: list, show and republish them."""


@dead_letters.command("list")
@data_option
@source_option
@click.option("--json", "as_json", is_flag=True)
def list_command(data: Path, source: str, as_json: bool) -> None:
    """The dead letters, oldest first: id, time, source, reason, data, times republished."""
    letters, close = _letters(data, source)
    try:
        rows = [letter.summary() for letter in letters.entries()]
    finally:
        close()
    click.echo(json.dumps(rows, indent=2) if as_json else text_table(rows).rstrip("\n"))


@dead_letters.command("show")
@click.argument("letter_id")
@data_option
@source_option
def show_command(letter_id: str, data: Path, source: str) -> None:
    """One dead letter in full (JSON): reason, attributes, data, its republishes."""
    letters, close = _letters(data, source)
    try:
        letter = _get(letters, letter_id)
    finally:
        close()
    click.echo(json.dumps(letter.as_dict(), indent=2))


@dead_letters.command("republish")
@click.argument("letter_id")
@click.option("--reason", required=True, help="Why (required; recorded with the republish).")
@click.option("--operator", envvar="USER", default=None, help="Who acts [env USER].")
@data_option
@source_option
@click.option("--json", "as_json", is_flag=True)
def republish_command(
    letter_id: str, reason: str, operator: str | None, data: Path, source: str, as_json: bool
) -> None:
    """Send a dead letter again the way it first came (every check applies again), and record
    it: a line in DATA/republished.jsonl locally, attributes on the message in the cloud."""
    from bridge.cli.operator import _operator

    who = _operator(operator)
    letters, close = _letters(data, source)
    try:
        if isinstance(letters, dl.CloudDeadLetters):
            result = _call(lambda: letters.republish(letter_id, operator=who, reason=reason))
        else:
            deliver, stop = _local_bridge(data)
            try:
                result = _call(
                    lambda: dl.republish_local(
                        letters, letter_id, deliver, operator=who, reason=reason
                    )
                )
            finally:
                stop()
    finally:
        close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        course = f" (course {result['course_id']})" if result.get("course_id") else ""
        detail = f": {result['detail']}" if result.get("detail") else ""
        click.echo(f"dead letter {letter_id} republished: {result['status']}{course}{detail}")
    if result["status"] == "rejected":
        raise SystemExit(1)


def _letters(data: Path, source: str) -> tuple[Any, Callable[[], None]]:
    cfg = Settings.from_env()
    if cfg.get("COURSEGEN_STORE") == "firestore":
        from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

        project = cfg.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise click.ClickException("set GOOGLE_CLOUD_PROJECT to read the cloud's dead letters")
        subscriber = pubsub_v1.SubscriberClient()
        publisher = pubsub_v1.PublisherClient()
        return dl.CloudDeadLetters(subscriber, publisher, project, source), subscriber.close
    if not data.is_dir():
        raise click.ClickException(f"no data folder {data} (--data)")
    return dl.LocalDeadLetters(data), lambda: None


def _get(letters: Any, letter_id: str) -> dl.DeadLetter:
    letter: dl.DeadLetter = _call(lambda: letters.get(letter_id))
    return letter


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except dl.DeadLetterError as err:
        raise click.ClickException(str(err)) from None


def _local_bridge(
    data: Path,
) -> tuple[Callable[[str, Mapping[str, Any]], Any], Callable[[], None]]:
    """The bridge's push route logic over the embedded runtime on ``data``: what a republished
    message meets. Its tasks are picked up by the process running the courses (its reconciler
    loop), or by the next ``coursegen work``."""
    from bridge.cli.common import open_store
    from bridge.runtime.embedded import embedded
    from bridge.web.bridge_app import advance_envelope, ingest_envelope
    from bridge.web.dashboard.stack import LocalBridgeRuntime, operator_token

    cfg = Settings.from_env()
    open_store(data, cfg).close()  # a clear error when --data holds no store
    rt = embedded(data, settings=cfg)
    bridge_rt = LocalBridgeRuntime(rt, operator_token(cfg), data / dl.DEAD_LETTERS)

    def deliver(source: str, envelope: Mapping[str, Any]) -> Any:
        if source == "course-events":
            return advance_envelope(bridge_rt, envelope)
        return ingest_envelope(bridge_rt, envelope)

    return deliver, rt.close
