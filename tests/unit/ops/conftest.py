"""Fixtures for the operations tests: an embedded runtime on a virtual clock with no-op steps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from statemachine.store.memory import MemoryStore
from tests.unit.runtime.conftest import REQUEST, Steps, clock, settings

__all__ = ["REQUEST", "Ops", "Steps", "clock", "settings"]


class Ops:
    """A runtime plus helpers: ingest, run everything due, read statuses."""

    def __init__(self, rt: Runtime, steps: Steps) -> None:
        self.rt = rt
        self.steps = steps

    @property
    def store(self) -> Any:
        return self.rt.store

    def ingest(self, message_id: str, **fields: Any) -> str:
        return self.rt.bridge.ingest({**REQUEST, **fields}, message_id=message_id)

    def run(self) -> int:
        return self.rt.run_until_idle()

    def status(self, course_id: str) -> str:
        head = self.store.head(course_id)
        assert head is not None
        return str(head.status)

    def tasks(self, course_id: str) -> dict[str, dict[str, Any]]:
        head = self.store.head(course_id)
        assert head is not None
        return dict(head.snapshot["tasks"])


def make_ops(tmp_path: Path, **extra: str) -> Ops:
    steps = Steps()
    rt = embedded(
        tmp_path,
        settings=settings(**extra),
        steps=steps.registry(),
        clock=VirtualClock(),
        store=MemoryStore(),
    )
    return Ops(rt, steps)


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    o = make_ops(tmp_path)
    yield o
    o.rt.close()


class Lines(logging.Handler):
    """Collects the analytics JSON lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(record.getMessage()))


@pytest.fixture
def analytics_lines() -> Iterator[Lines]:
    logger = logging.getLogger("coursegen.analytics")
    handler = Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
