"""The one store factory: which EventStore a process opens, from the settings table.

Every composition root (the embedded runtime, the cloud runtime, the commands) opens its
store here, so ``COURSEGEN_STORE``, ``COURSEGEN_SQLITE_SYNCHRONOUS``, the data folder and the
project are read the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from bridge.settings import Settings
from statemachine.ports import EventStore
from statemachine.store import make_store

KINDS = ("sqlite", "firestore", "memory")


class StoreUnavailable(ValueError):
    """The configured store cannot be opened as asked (unknown kind, nothing stored yet)."""


def sqlite_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "events.db"


def open_store(
    settings: Settings,
    data_dir: Path | None = None,
    *,
    must_exist: bool = False,
    project: str | None = None,
) -> EventStore:
    """The store ``COURSEGEN_STORE`` names. SQLite lives in ``data_dir`` (default
    ``COURSEGEN_DATA_DIR``) with ``COURSEGEN_SQLITE_SYNCHRONOUS``; Firestore in ``project``
    (default ``GOOGLE_CLOUD_PROJECT``, else the client's own). ``must_exist`` (the read
    commands) refuses to create an empty store or to read one that keeps nothing."""
    kind = settings.get("COURSEGEN_STORE")
    if kind == "sqlite":
        path = sqlite_path(data_dir if data_dir is not None else settings.get("COURSEGEN_DATA_DIR"))
        if must_exist and not path.exists():
            raise StoreUnavailable(f"no event store at {path} (run a course first, or --data)")
        synchronous = settings.get("COURSEGEN_SQLITE_SYNCHRONOUS")
        return make_store("sqlite", path=path, synchronous=synchronous)
    if kind == "firestore":
        return make_store(
            "firestore", project=project or settings.get("GOOGLE_CLOUD_PROJECT") or None
        )
    if kind == "memory":
        if must_exist:
            raise StoreUnavailable(
                "COURSEGEN_STORE=memory keeps nothing between commands: "
                "use sqlite (--data) or firestore"
            )
        return make_store("memory")
    raise StoreUnavailable(f"unknown store COURSEGEN_STORE={kind!r}: use one of {', '.join(KINDS)}")
