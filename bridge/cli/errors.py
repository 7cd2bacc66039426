"""The command line's one error boundary: an error becomes one clear line and an exit code.

``Coursegen`` (the ``coursegen`` group) catches what a command raises, click's own errors
excepted, and turns it into a ``click.ClickException``: the message names what was wrong
(the setting and its allowed values, the store that cannot be read, the missing
credentials), on one line, exit code 2 for configuration and 1 for the rest. ``--debug``
lets the exception through with its traceback.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import click

from bridge.settings import SettingError

MAX_LINE = 400
USAGE = 2  # a setting or an argument that is not allowed
FAILED = 1


class CommandFailed(click.ClickException):
    """One line on stderr (``Error: ...``), exit code 1."""

    exit_code = FAILED


class ConfigurationFailed(CommandFailed):
    """A setting (or the credentials it needs) that is not allowed: exit code 2."""

    exit_code = USAGE


def _failure(message: str, exit_code: int = FAILED) -> CommandFailed:
    return ConfigurationFailed(message) if exit_code == USAGE else CommandFailed(message)


def one_line(text: str) -> str:
    """The first non-empty line of ``text``, cut to ``MAX_LINE`` characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def describe(err: BaseException) -> CommandFailed:
    """What the operator reads for ``err``."""
    if isinstance(err, SettingError):
        return _failure(str(err), USAGE)
    if isinstance(err, sqlite3.DatabaseError):
        return _failure(
            f"the SQLite event store cannot be read ({one_line(str(err))}): is --data the folder"
            " of a coursegen store, and is its events.db intact?"
        )
    cloud = _cloud_problem(err)
    if cloud is not None:
        return cloud
    if isinstance(err, OSError):
        where = f": {err.filename}" if err.filename else ""
        return _failure(f"{err.strerror or one_line(str(err))}{where}")
    detail = one_line(str(err)) or "(no message)"
    return _failure(f"{type(err).__name__}: {detail} (--debug shows the traceback)")


def _cloud_problem(err: BaseException) -> CommandFailed | None:
    """Google credentials missing, or a Google API refusing: what to set or check."""
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
    except ImportError:  # pragma: no cover - the Google clients are dependencies
        return None
    if isinstance(err, auth.DefaultCredentialsError):
        return _failure(
            "no Google credentials for COURSEGEN_STORE=firestore: run `gcloud auth"
            " application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or point"
            " FIRESTORE_EMULATOR_HOST at an emulator",
            USAGE,
        )
    if isinstance(err, auth.GoogleAuthError | api.GoogleAPIError):
        return _failure(f"Google Cloud refused: {one_line(str(err))}")
    return None


class Coursegen(click.Group):
    """The ``coursegen`` group: every command runs inside ``describe``'s boundary."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            if ctx.params.get("debug"):
                raise
            raise describe(err) from None
