"""The named states are the lifecycles' states: nothing can be spelled that the machine lacks."""

from __future__ import annotations

from statemachine.lifecycle import (
    ACTIVE_COURSE,
    BROKEN_TASK,
    COURSE,
    TASK,
    TERMINAL_COURSE,
    UNFINISHED_TASK,
    CourseStatus,
    TaskStatus,
)


def names(cls: type) -> set[str]:
    return {v for k, v in vars(cls).items() if k.isupper()}


def test_every_named_state_is_a_state_of_its_lifecycle_and_back() -> None:
    assert names(CourseStatus) == set(COURSE.states)
    assert names(TaskStatus) == set(TASK.states)


def test_the_derived_sets_partition_the_lifecycles() -> None:
    assert set(COURSE.states) == ACTIVE_COURSE | TERMINAL_COURSE
    assert not ACTIVE_COURSE & TERMINAL_COURSE
    C = CourseStatus
    assert {C.REQUESTED, C.QUEUED, C.RUNNING, C.PAUSED} == ACTIVE_COURSE
    assert TASK.terminal >= BROKEN_TASK and TaskStatus.SUCCEEDED not in BROKEN_TASK
    assert not UNFINISHED_TASK & TASK.terminal and TaskStatus.PENDING not in UNFINISHED_TASK
