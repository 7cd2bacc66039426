"""Several processes on one embedded store: who owns a course, and each one's share of a queue."""

from __future__ import annotations

import pytest

from bridge.partition import WHOLE, Partition
from statemachine.pipeline import default_pipeline


def test_every_course_has_exactly_one_owner_and_the_shares_are_even() -> None:
    ids = [f"course-{i:05d}" for i in range(3000)]
    parts = [Partition(k, 3) for k in range(3)]
    owners = [[p.index for p in parts if p.owns(c)] for c in ids]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [k] for o in owners) for k in range(3)]
    assert min(sizes) > 900, sizes  # a stable hash spreads them (1000 each expected)
    assert all(WHOLE.owns(c) for c in ids)


def test_ownership_is_the_same_in_every_process() -> None:
    # crc32, not Python's per-process salted hash(): fixed values
    assert [Partition(k, 4).owns("c-1") for k in range(4)].count(True) == 1
    assert Partition(0, 2).owns("abc") == (0x352441C2 % 2 == 0)


def test_each_process_gets_its_share_of_a_queues_limits() -> None:
    pipeline = default_pipeline()
    shared = Partition(1, 2).share(pipeline)
    for name, queue in pipeline.queues.items():
        mine = shared.queues[name]
        assert mine.max_dispatches_per_s == pytest.approx(queue.max_dispatches_per_s / 2)
        assert mine.max_concurrent == max(1, queue.max_concurrent // 2)
        assert 2 * mine.max_concurrent <= max(2, queue.max_concurrent)
    assert WHOLE.share(pipeline) is pipeline


@pytest.mark.parametrize(("index", "count"), [(0, 0), (2, 2), (-1, 3)])
def test_a_partition_outside_its_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="need 0 <= index < count"):
        Partition(index, count)
