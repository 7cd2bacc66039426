"""Course and task lifecycles, defined with ``transitions`` and compiled into lookup tables.

Each ``Machine`` is built once, at import, and checked: every state is reachable from the
initial one and every non-terminal state can reach a terminal one. The hot path never fires a
trigger on a model (~8 us); it looks ``(state, trigger)`` up in the compiled table (~0.1 us).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from transitions import Machine

from statemachine.errors import TransitionNotAllowed

TransitionSpec = tuple[str, str | Sequence[str], str]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A compiled lifecycle: ``next(state, trigger)`` or ``TransitionNotAllowed``."""

    name: str
    machine: Machine
    initial: str
    states: tuple[str, ...]
    terminal: frozenset[str]
    table: Mapping[tuple[str, str], str]

    def next(self, state: str, trigger: str) -> str:
        try:
            return self.table[(state, trigger)]
        except KeyError:
            raise TransitionNotAllowed(state, trigger, f"{self.name} lifecycle") from None

    def allows(self, state: str, trigger: str) -> bool:
        return (state, trigger) in self.table

    def edges(self) -> list[tuple[str, str, str]]:
        """(source, trigger, dest) for every transition, in definition order."""
        return [(src, trig, dst) for (src, trig), dst in self.table.items()]


def build(
    name: str,
    states: Sequence[str],
    transitions: Sequence[TransitionSpec],
    *,
    initial: str,
    terminal: Sequence[str],
) -> Lifecycle:
    machine = Machine(
        model=None,
        states=list(states),
        transitions=[
            {"trigger": t, "source": list(s) if not isinstance(s, str) else s, "dest": d}
            for t, s, d in transitions
        ],
        initial=initial,
        auto_transitions=False,
        send_event=False,
    )
    table = _compile(machine)
    lifecycle = Lifecycle(name, machine, initial, tuple(states), frozenset(terminal), table)
    check(lifecycle)
    return lifecycle


def _compile(machine: Machine) -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for trigger, event in machine.events.items():
        for source, candidates in event.transitions.items():
            dest = str(candidates[0].dest)
            # One unconditional transition per (source, trigger): the first one wins in
            # ``transitions`` too, so a second one would be dead and is refused here.
            if len(candidates) != 1:
                raise ValueError(f"{trigger} from {source}: {len(candidates)} transitions")
            table[(source, trigger)] = dest
    return table


def check(lifecycle: Lifecycle) -> None:
    """Refuse a lifecycle with an unreachable state or a non-terminal trap."""
    successors: dict[str, set[str]] = {s: set() for s in lifecycle.states}
    for (src, _), dst in lifecycle.table.items():
        successors[src].add(dst)
    reachable = _closure(lifecycle.initial, successors)
    unreachable = set(lifecycle.states) - reachable
    if unreachable:
        raise ValueError(f"{lifecycle.name}: unreachable states {sorted(unreachable)}")
    for state in lifecycle.states:
        if state not in lifecycle.terminal and not (
            _closure(state, successors) & lifecycle.terminal
        ):
            raise ValueError(f"{lifecycle.name}: {state} cannot reach a terminal state")


def _closure(start: str, successors: Mapping[str, set[str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for nxt in successors[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


class CourseStatus:
    """The course lifecycle's states, by name: spell a state through these, never a literal."""

    REQUESTED: Final = "requested"
    QUEUED: Final = "queued"  # waiting for its tenant's fair share (CourseQueued)
    RUNNING: Final = "running"
    PAUSED: Final = "paused"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    CANCELLED: Final = "cancelled"


class TaskStatus:
    """The task lifecycle's states, by name."""

    PENDING: Final = "pending"
    SCHEDULED: Final = "scheduled"
    RUNNING: Final = "running"
    RETRYING: Final = "retrying"
    SUCCEEDED: Final = "succeeded"
    FAILED: Final = "failed"
    EXHAUSTED: Final = "exhausted"
    MOOT: Final = "moot"  # its result came after the course was cancelled


C, T = CourseStatus, TaskStatus

# A course: requested until its first task is scheduled; failed is terminal until an operator
# redrives it. A course over its tenant's share waits queued until the bridge admits it
# (back to requested, where it starts as any other).
COURSE = build(
    "course",
    [C.REQUESTED, C.QUEUED, C.RUNNING, C.PAUSED, C.COMPLETED, C.FAILED, C.CANCELLED],
    [
        ("start", C.REQUESTED, C.RUNNING),
        ("queue", C.REQUESTED, C.QUEUED),
        ("admit", C.QUEUED, C.REQUESTED),
        ("pause", [C.REQUESTED, C.RUNNING], C.PAUSED),
        ("resume", C.PAUSED, C.RUNNING),
        ("complete", C.RUNNING, C.COMPLETED),
        ("fail", [C.REQUESTED, C.RUNNING, C.PAUSED], C.FAILED),
        ("cancel", [C.REQUESTED, C.QUEUED, C.RUNNING, C.PAUSED, C.FAILED], C.CANCELLED),
        ("redrive", C.FAILED, C.RUNNING),
    ],
    initial=C.REQUESTED,
    terminal=[C.COMPLETED, C.FAILED, C.CANCELLED],
)

# A task: retries belong to the queue, so a retryable failure leaves it "retrying" until the
# queue delivers it again (start) or gives up (exhaust). "running -> start" is a redelivery
# after a crash or a lost answer.
TASK = build(
    "task",
    [T.PENDING, T.SCHEDULED, T.RUNNING, T.RETRYING, T.SUCCEEDED, T.FAILED, T.EXHAUSTED, T.MOOT],
    [
        ("schedule", T.PENDING, T.SCHEDULED),
        ("start", [T.SCHEDULED, T.RUNNING, T.RETRYING], T.RUNNING),
        ("succeed", T.RUNNING, T.SUCCEEDED),
        ("fail", T.RUNNING, T.RETRYING),
        ("fail_permanently", T.RUNNING, T.FAILED),
        ("exhaust", [T.SCHEDULED, T.RUNNING, T.RETRYING], T.EXHAUSTED),
        # A result (or a first attempt's, its start unrecorded) after the course was cancelled.
        ("moot", [T.SCHEDULED, T.RUNNING, T.RETRYING], T.MOOT),
        # An operator's redrive; of a failed course it also takes the tasks left unfinished
        # (their deliveries were acknowledged as no-ops while the course was failed).
        ("redrive", [T.SCHEDULED, T.RUNNING, T.RETRYING, T.FAILED, T.EXHAUSTED], T.PENDING),
    ],
    initial=T.PENDING,
    terminal=[T.SUCCEEDED, T.FAILED, T.EXHAUSTED, T.MOOT],
)

# A course still in progress (the reconciler watches these); every other state is terminal.
ACTIVE_COURSE: frozenset[str] = frozenset(COURSE.states) - COURSE.terminal
TERMINAL_COURSE: frozenset[str] = COURSE.terminal
# A task whose result is still to come: the queue holds it or a handler runs it.
UNFINISHED_TASK: frozenset[str] = frozenset({T.SCHEDULED, T.RUNNING, T.RETRYING})
# A task whose failure an operator can redrive.
BROKEN_TASK: frozenset[str] = frozenset({T.FAILED, T.EXHAUSTED})
