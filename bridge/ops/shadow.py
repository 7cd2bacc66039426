"""Shadow replay: re-fold recorded histories with the current code and name where they differ.

What a history recorded, beside its events: the commands ``decide`` made after each version
(the ``TaskScheduled``, ``CourseCompleted`` and ``CourseFailed`` events the bridge appended
with ``causation_id == f"{course_id}@{version}"``), the head snapshot it ended with and, for
the recorded test histories, a digest of the state at every version. The shadow applies each
event with ``apply``, asks ``decide`` at every version and compares: the first version where
the current code refuses an event, derives another state, or decides other commands is named.
``apply`` and ``decide`` are parameters so that a test can hand in a deliberately broken one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from statemachine.commands import Command, to_event
from statemachine.decide import decide as decide_on
from statemachine.envelope import Envelope, canonical
from statemachine.errors import IntegrityError, TransitionNotAllowed
from statemachine.events import to_data, type_name
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.pipeline import default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.reducer import apply as real_apply
from statemachine.state import CourseState
from statemachine.tenancy import hold_ai_steps

Apply = Callable[[CourseState, Envelope], CourseState]
Decide = Callable[[CourseState], Sequence[Command]]

DECIDED = frozenset({"TaskScheduled", "CourseCompleted", "CourseFailed"})
_ACTIVE = ACTIVE_COURSE


def real_decide(state: CourseState) -> Sequence[Command]:
    """``decide`` on the pipeline version the course is pinned to (``schemas/``)."""
    return decide_on(state, default_pipelines().of(state))


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place a history and the current code part: ``kind`` is ``refused`` (an
    event the code no longer accepts), ``state`` (another derived state) or ``commands``
    (``decide`` wants other commands than the history recorded next)."""

    course_id: str
    version: int
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def state_digest(state: CourseState) -> str:
    """A digest of the state after a version (the recorded histories keep one per version)."""
    return hashlib.sha256(canonical(state.to_snapshot())).hexdigest()


def state_digests(events: Sequence[Envelope], apply: Apply = real_apply) -> list[str]:
    """The digest of the state after each event, as this code folds them."""
    state = CourseState.empty(events[0].course_id) if events else None
    out = []
    for env in events:
        assert state is not None
        state = apply(state, env)
        out.append(state_digest(state))
    return out


def shadow(
    course_id: str,
    events: Sequence[Envelope],
    *,
    head: Mapping[str, Any] | None = None,
    digests: Sequence[str] | None = None,
    apply: Apply = real_apply,
    decide: Decide = real_decide,
) -> Divergence | None:
    """Re-derive ``events`` with ``apply`` and ``decide``; the first divergence, or None.

    ``head``: the recorded head snapshot (compared with the final state); ``digests``: the
    recorded state digest after each version (compared at every version, so a state change
    is named where it starts, not only at the head)."""
    state = CourseState.empty(course_id)
    inside = 0  # the events still to come of a recorded group of decided commands
    for i, env in enumerate(events):
        try:
            state = apply(state, env)
        except (TransitionNotAllowed, IntegrityError) as err:
            return Divergence(course_id, env.version, "refused", f"{env.type} is refused: {err}")
        if digests is not None and i < len(digests) and state_digest(state) != digests[i]:
            return Divergence(
                course_id, env.version, "state", f"the state after {env.type} differs"
            )
        if inside:  # the middle of a decision the history recorded: compared where it began
            inside -= 1
            continue
        found, inside = _compare_commands(course_id, events, i, state, decide)
        if found is not None:
            return found
    if head is not None:
        differing = _differing_paths(head, state.to_snapshot())
        if differing:
            return Divergence(
                course_id,
                state.version,
                "state",
                "the stored head differs from the fold at " + ", ".join(differing[:6]),
            )
    return None


def _compare_commands(
    course_id: str, events: Sequence[Envelope], i: int, state: CourseState, decide: Decide
) -> tuple[Divergence | None, int]:
    """What ``decide`` wants after ``events[i]`` against what the history did next; and how
    many of the next events are that recorded decision (the shadow skips their middle)."""
    version = events[i].version
    commands = decide(state)
    recorded = list(_decided_at(course_id, events, i))
    wanted = [_as_event(c) for c in _rehold(commands, recorded, state)]
    if recorded:
        if wanted != recorded:
            found = Divergence(
                course_id,
                version,
                "commands",
                f"after {events[i].type} the code decides {_names(wanted)}, "
                f"the history recorded {_names(recorded)}",
            )
            return found, 0
        return None, len(recorded) - 1
    return _deferred(course_id, events, i, state, commands), 0


def _rehold(
    commands: Sequence[Command],
    recorded: Sequence[tuple[str, Mapping[str, Any]]],
    state: CourseState,
) -> Sequence[Command]:
    """``commands`` with the budget hold the recorded decision carries, if it carries one:
    whether a tenant was over its budget is the bridge's to know (bridge/tenancy.py), what the
    hold does to the commands is the core's (``hold_ai_steps``), and that is compared."""
    for kind, data in recorded:
        if kind == "TaskScheduled" and data.get("held"):
            until, reason = data["not_before"], data["held"]
            pipeline = default_pipelines().of(state)
            return hold_ai_steps(commands, pipeline, until=until, reason=reason)
    return commands


def _deferred(
    course_id: str,
    events: Sequence[Envelope],
    i: int,
    state: CourseState,
    commands: Sequence[Command],
) -> Divergence | None:
    """Commands decided where the history recorded none right away."""
    version = events[i].version
    if not commands:
        return None
    if i + 1 < len(events) and events[i + 1].type == "CourseQueued":
        return None  # the bridge queued the course instead: decided again once admitted
    later = _next_decision(course_id, events, i)
    wanted = [_as_event(c) for c in _rehold(commands, later or [], state)]
    if later is None:
        if i == len(events) - 1 and state.status in _ACTIVE:
            return None  # still due: the history stops before the bridge got to it
        return Divergence(
            course_id,
            version,
            "commands",
            f"after {events[i].type} the code decides {_names(wanted)}, the history never did",
        )
    # A command decided here may be recorded a little later (an operator's resume and its
    # advance, with a result appended in between): it must be among the next decisions.
    missing = [w for w in wanted if w not in later]
    if missing:
        return Divergence(
            course_id,
            version,
            "commands",
            f"after {events[i].type} the code decides {_names(missing)}, "
            f"the history next recorded {_names(later)}",
        )
    return None


def _as_event(command: Command) -> tuple[str, dict[str, Any]]:
    event = to_event(command)
    return type_name(event), to_data(event)


def _decided_at(
    course_id: str, events: Sequence[Envelope], i: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The commands recorded right after ``events[i]``, decided at its version."""
    cause = f"{course_id}@{events[i].version}"
    for env in events[i + 1 :]:
        if env.causation_id != cause or env.type not in DECIDED:
            return
        yield env.type, dict(env.data)


def _next_decision(
    course_id: str, events: Sequence[Envelope], i: int
) -> list[tuple[str, dict[str, Any]]] | None:
    for j in range(i + 1, len(events)):
        found = list(_decided_at(course_id, events, j))
        if found:
            return found
    return None


def _names(commands: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    names = [f"{t}({d['task']})" if d.get("task") else t for t, d in commands]
    return "[" + ", ".join(names) + "]" if names else "nothing"


def _differing_paths(stored: Mapping[str, Any], folded: Mapping[str, Any]) -> list[str]:
    """Dotted paths (to a task's field at most) where two snapshots differ."""
    paths = []
    for key in sorted(set(stored) | set(folded)):
        a, b = stored.get(key), folded.get(key)
        if a == b:
            continue
        if key == "tasks" and isinstance(a, Mapping) and isinstance(b, Mapping):
            for name in sorted(set(a) | set(b)):
                ta, tb = a.get(name), b.get(name)
                if isinstance(ta, Mapping) and isinstance(tb, Mapping):
                    fields = sorted(f for f in set(ta) | set(tb) if ta.get(f) != tb.get(f))
                    paths += [f"tasks.{name}.{f}" for f in fields]
                elif ta != tb:
                    paths.append(f"tasks.{name}")
        else:
            paths.append(key)
    return paths


@dataclass(frozen=True, slots=True)
class ShadowReport:
    courses: int
    events: int
    divergences: tuple[Divergence, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "courses": self.courses,
            "events": self.events,
            "diverged": len(self.divergences),
            "divergences": [d.as_dict() for d in self.divergences],
        }


def shadow_histories(
    histories: Iterable[tuple[str, Sequence[Envelope], Head | None]],
    *,
    apply: Apply = real_apply,
    decide: Decide = real_decide,
) -> ShadowReport:
    """Every history (with its head, when stored) re-derived; each course that diverges."""
    courses = events = 0
    found = []
    for course_id, history, head in histories:
        courses += 1
        events += len(history)
        snapshot = head.snapshot if head is not None else None
        d = shadow(course_id, history, head=snapshot, apply=apply, decide=decide)
        if d is not None:
            found.append(d)
    return ShadowReport(courses, events, tuple(found))


def shadow_store(
    store: EventStore, *, apply: Apply = real_apply, decide: Decide = real_decide
) -> ShadowReport:
    """``audit --shadow``: every course of the live store against its recorded head."""
    return shadow_histories(store.scan_heads(), apply=apply, decide=decide)
