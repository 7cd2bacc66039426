"""EventStore adapters (memory, sqlite, firestore) and the append logic they share."""

from __future__ import annotations

from typing import Any

from statemachine.ports import EventStore


def make_store(kind: str, **options: Any) -> EventStore:
    """The adapter named ``kind``, configured by ``options`` (see each adapter)."""
    if kind == "memory":
        from statemachine.store.memory import MemoryStore

        return MemoryStore()
    if kind == "sqlite":
        from statemachine.store.sqlite import SqliteStore

        return SqliteStore(**options)
    if kind == "firestore":
        from statemachine.store.firestore import FirestoreStore  # type: ignore[import-not-found,unused-ignore]

        store: EventStore = FirestoreStore(**options)
        return store
    raise ValueError(f"unknown event store {kind!r}: use memory, sqlite or firestore")
