"""``StateCache`` with an encoder: states equal to a fresh build at every version, with the
unchanged tasks of the version before reused and the changed ones built anew."""

from __future__ import annotations

import orjson

from bridge.tooling.bench import course_commands
from statemachine.state import CourseState, StateCache
from statemachine.store.appending import prepare_append


def _snapshots(course_id: str) -> list[dict]:
    out, snap = [], None
    for batch in course_commands(course_id, shards=2):
        snap = prepare_append(course_id, snap, snap["version"] if snap else 0, batch).snapshot
        out.append(orjson.loads(orjson.dumps(snap)))  # a copy: as a head is read
    return out


def test_every_version_equals_a_fresh_build_and_unchanged_tasks_are_shared() -> None:
    cache = StateCache(encode=orjson.dumps)
    previous: CourseState | None = None
    reused = rebuilt = 0
    for snap in _snapshots("c1"):
        state = cache.of(snap)
        assert state == CourseState.from_snapshot(snap)
        if previous is not None:
            for name, task in state.tasks.items():
                before = previous.tasks.get(name)
                if before is not None and before == task:
                    assert before is task  # the same object, not a copy
                    reused += 1
                elif before is not None:
                    rebuilt += 1
        previous = state
    assert reused > 5 * rebuilt > 0


def test_a_task_changed_in_place_is_not_taken_for_the_old_one() -> None:
    cache = StateCache(encode=orjson.dumps)
    snap = _snapshots("c2")[-1]
    first = cache.of(snap)
    name = next(iter(snap["tasks"]))
    snap["tasks"][name]["summary"] = {"changed": True}
    snap["version"] += 1  # another version with that one task's content changed
    second = cache.of(snap)
    assert second.tasks[name].summary == {"changed": True}
    assert first.tasks[name].summary != second.tasks[name].summary
    others = [n for n in snap["tasks"] if n != name]
    assert all(first.tasks[n] is second.tasks[n] for n in others)


def test_a_value_the_encoder_refuses_falls_back_to_a_full_build() -> None:
    cache = StateCache(encode=orjson.dumps)
    snap = _snapshots("c3")[-1]
    name = next(iter(snap["tasks"]))
    snap["tasks"][name]["summary"] = {"big": 2**70}  # over orjson's 64 bits
    assert cache.of(snap).tasks[name].summary == {"big": 2**70}
