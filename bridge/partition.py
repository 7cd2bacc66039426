"""Several processes on one embedded store: each owns a fixed share of the courses.

SQLite in WAL mode lets several processes write one database (their writers take turns on a
file lock, ``statemachine/store/sqlite.py``), and the GIL binds one interpreter to one core.
``coursegen work --processes N`` runs N processes on one ``--data``: process ``index`` of
``count`` owns the courses whose id falls in its share (a stable hash), and only those it
recovers after a restart, reconciles and advances when another process moved them. A course
a process requests itself it runs itself (its tasks are on that process's queue). Each queue's
limits are shared out so that the processes together keep to the queue's configured rate and
concurrency (Cloud Tasks semantics per queue, as in ``pipeline.json``); a queue whose cap is
below the number of processes still gets one concurrent dispatch in each.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

from statemachine.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class Partition:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count}: need 0 <= index < count")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, course_id: str) -> bool:
        """Whether this process recovers, reconciles and advances ``course_id``."""
        return self.whole or zlib.crc32(course_id.encode()) % self.count == self.index

    def share(self, pipeline: Pipeline) -> Pipeline:
        """``pipeline`` with each queue's dispatch rate and concurrency divided among the
        processes (rounded down, at least one concurrent dispatch each)."""
        if self.whole:
            return pipeline
        queues = {
            name: replace(
                q,
                max_dispatches_per_s=q.max_dispatches_per_s / self.count,
                max_concurrent=max(1, q.max_concurrent // self.count),
            )
            for name, q in pipeline.queues.items()
        }
        return replace(pipeline, queues=queues)


WHOLE = Partition()
