"""Course and task lifecycles, defined with ``transitions`` and compiled into lookup tables.

Each ``Machine`` is built once, at import, and checked: every state is reachable from the
initial one and every non-terminal state can reach a terminal one. The hot path never fires a
trigger on a model (~8 us); it looks ``(state, trigger)`` up in the compiled table (~0.1 us).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


# A course: requested until its first task is scheduled; failed is terminal until an operator
# redrives it.
COURSE = build(
    "course",
    ["requested", "running", "paused", "completed", "failed", "cancelled"],
    [
        ("start", "requested", "running"),
        ("pause", ["requested", "running"], "paused"),
        ("resume", "paused", "running"),
        ("complete", "running", "completed"),
        ("fail", ["requested", "running", "paused"], "failed"),
        ("cancel", ["requested", "running", "paused", "failed"], "cancelled"),
        ("redrive", "failed", "running"),
    ],
    initial="requested",
    terminal=["completed", "failed", "cancelled"],
)

# A task: retries belong to the queue, so a retryable failure leaves it "retrying" until the
# queue delivers it again (start) or gives up (exhaust). "running -> start" is a redelivery
# after a crash or a lost answer.
TASK = build(
    "task",
    ["pending", "scheduled", "running", "retrying", "succeeded", "failed", "exhausted", "moot"],
    [
        ("schedule", "pending", "scheduled"),
        ("start", ["scheduled", "running", "retrying"], "running"),
        ("succeed", "running", "succeeded"),
        ("fail", "running", "retrying"),
        ("fail_permanently", "running", "failed"),
        ("exhaust", ["scheduled", "running", "retrying"], "exhausted"),
        # A result (or a first attempt's, its start unrecorded) after the course was cancelled.
        ("moot", ["scheduled", "running", "retrying"], "moot"),
        # An operator's redrive; of a failed course it also takes the tasks left unfinished
        # (their deliveries were acknowledged as no-ops while the course was failed).
        ("redrive", ["scheduled", "running", "retrying", "failed", "exhausted"], "pending"),
    ],
    initial="pending",
    terminal=["succeeded", "failed", "exhausted", "moot"],
)

ACTIVE_COURSE = frozenset({"requested", "running", "paused"})
