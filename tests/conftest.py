"""Shared fixtures: an EventStore per adapter for the contract suite."""

from __future__ import annotations

import os

import pytest

from statemachine.store import make_store


def _firestore_store():
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        pytest.skip("FIRESTORE_EMULATOR_HOST is not set (.ci/run starts the emulator)")
    from tests.emulators import fresh_firestore_store

    return fresh_firestore_store()


@pytest.fixture(params=["memory", "sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(request, tmp_path):
    if request.param == "memory":
        yield make_store("memory")
    elif request.param == "sqlite":
        s = make_store("sqlite", path=tmp_path / "events.db")
        yield s
        s.close()
    else:
        yield _firestore_store()
