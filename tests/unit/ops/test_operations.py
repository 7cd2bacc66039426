"""Operator operations: each one event with the operator as actor and a reason; illegal ones
refused with the state; redrive continues a failed course without redoing succeeded steps."""

from __future__ import annotations

import pytest

from bridge.ops import operations as ops_
from handlers.registry import PermanentStepError, TransientStepError

from .conftest import Ops


def last_event(ops: Ops, course_id: str):
    return ops.store.load(course_id)[-1]


def test_cancel_records_the_operator_and_reason(ops: Ops) -> None:
    course = ops.ingest("m1")
    result = ops_.cancel(ops.store, ops.rt.bridge, course, operator="alice", reason="duplicate")
    assert result["status"] == "cancelled"
    assert result["actor"] == "operator:alice"
    event = last_event(ops, course)
    assert (event.type, event.actor, event.data["reason"]) == (
        "CourseCancelled",
        "operator:alice",
        "duplicate",
    )
    # The queued first task arrives and is a no-op; nothing more is scheduled.
    ops.run()
    assert ops.status(course) == "cancelled"
    assert sum(ops.steps.calls.values()) == 0


def test_an_illegal_operation_is_refused_with_the_state(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops.run()
    assert ops.status(course) == "completed"
    version = ops.store.head(course).version
    with pytest.raises(ops_.NotAllowed) as err:
        ops_.cancel(ops.store, ops.rt.bridge, course, operator="alice", reason="too late")
    assert err.value.status == 409
    assert "it is completed" in err.value.detail
    assert err.value.state["status"] == "completed"
    assert err.value.state["tasks"]["finalize"] == "succeeded"
    assert err.value.problem()["state"]["version"] == version
    assert ops.store.head(course).version == version  # nothing written
    with pytest.raises(ops_.NotAllowed):
        ops_.resume(ops.store, ops.rt.bridge, course, operator="alice", reason="why not")
    with pytest.raises(ops_.NotAllowed, match="it is completed"):
        ops_.redrive(ops.store, ops.rt.bridge, course, operator="alice", reason="again")


@pytest.mark.parametrize(
    ("kwargs", "error", "status"),
    [
        ({"course_id": "nobody", "reason": "r", "operator": "alice"}, ops_.UnknownCourse, 404),
        ({"course_id": "C", "reason": "  ", "operator": "alice"}, ops_.InvalidOperation, 422),
        ({"course_id": "C", "reason": "r", "operator": "a b"}, ops_.InvalidOperation, 422),
        ({"course_id": "C", "reason": "r", "operator": ""}, ops_.InvalidOperation, 422),
    ],
)
def test_bad_requests_are_refused(ops: Ops, kwargs, error, status) -> None:
    course = ops.ingest("m1")
    kwargs = {**kwargs, "course_id": course if kwargs["course_id"] == "C" else "nobody"}
    with pytest.raises(error) as err:
        ops_.pause(ops.store, ops.rt.bridge, **kwargs)
    assert err.value.status == status
    assert ops.store.head(course).version == 2  # requested + first task scheduled


def test_pause_stops_scheduling_and_resume_continues(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops_.pause(ops.store, ops.rt.bridge, course, operator="bob", reason="provider outage")
    ops.run()  # prepare_video was already queued: it runs; nothing new is scheduled
    assert ops.status(course) == "paused"
    assert set(ops.tasks(course)) == {"prepare_video"}
    assert ops.tasks(course)["prepare_video"]["status"] == "succeeded"
    result = ops_.resume(ops.store, ops.rt.bridge, course, operator="bob", reason="outage over")
    assert result["status"] == "running"
    chunks = [f"transcribe_chunk#{n}" for n in range(4)]
    assert sorted(result["scheduled"]) == ["extract_frames", *chunks]
    ops.run()
    assert ops.status(course) == "completed"
    actors = [e.actor for e in ops.store.load(course) if e.type.startswith("CourseP")]
    assert actors == ["operator:bob"]


def test_redrive_continues_a_failed_course_from_where_it_stopped(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops.steps.fail("extract_frames", PermanentStepError("bad video"))
    ops.run()
    assert ops.status(course) == "failed"
    before = dict(ops.steps.calls)
    left = {n for n, t in ops.tasks(course).items() if t["status"] == "scheduled"}
    assert left  # queued when the course failed; acknowledged as no-ops since
    result = ops_.redrive(ops.store, ops.rt.bridge, course, operator="carol", reason="new model")
    assert result["tasks"] == sorted({"extract_frames"} | left)
    assert sorted(result["scheduled"]) == result["tasks"]
    assert result["status"] == "running"
    ops.run()
    assert ops.status(course) == "completed"
    tasks = ops.tasks(course)
    assert tasks["extract_frames"]["generation"] == 2
    assert tasks["extract_frames"]["key"] == f"{course}:extract_frames:2"
    succeeded_before = {"prepare_video"}
    assert {n for n, t in tasks.items() if t["generation"] == 1} >= succeeded_before
    # Succeeded steps ran once; extract_frames once more; the rest of the DAG once.
    for step in succeeded_before:
        assert ops.steps.calls[step] == before[step] == 1
    assert ops.steps.calls["extract_frames"] == before["extract_frames"] + 1
    assert ops.steps.calls["generate_structure"] == 1
    redriven = [e for e in ops.store.load(course) if e.type == "CourseRedriven"]
    assert [(e.actor, e.data["reason"]) for e in redriven] == [("operator:carol", "new model")]


def test_redrive_of_one_step_only(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops.steps.fail("prepare_video", *[TransientStepError("flaky")] * 5)
    ops.run()
    assert ops.tasks(course)["prepare_video"]["status"] == "exhausted"
    with pytest.raises(ops_.NotAllowed, match="of step transcribe"):
        ops_.redrive(ops.store, ops.rt.bridge, course, operator="c", reason="r", step="transcribe")
    with pytest.raises(ops_.InvalidOperation, match="no step named"):
        ops_.redrive(ops.store, ops.rt.bridge, course, operator="c", reason="r", step="nope")
    ops_.redrive(ops.store, ops.rt.bridge, course, operator="c", reason="r", step="prepare_video")
    ops.run()
    assert ops.status(course) == "completed"


def test_a_failed_course_can_be_cancelled(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops.steps.fail("prepare_video", PermanentStepError("no such video"))
    ops.run()
    result = ops_.perform(
        "cancel", ops.store, None, course, operator="operator:dan", reason="give up"
    )
    assert (result["status"], result["actor"]) == ("cancelled", "operator:dan")
    with pytest.raises(ops_.InvalidOperation):
        ops_.perform("explode", ops.store, None, course, operator="dan", reason="r")
    with pytest.raises(ops_.InvalidOperation):
        ops_.perform("pause", ops.store, None, course, operator="dan", reason="r", step="x")


def test_resume_without_a_bridge_leaves_the_advance_to_the_reconciler(ops: Ops) -> None:
    course = ops.ingest("m1")
    ops_.pause(ops.store, None, course, operator="erin", reason="r")
    result = ops_.resume(ops.store, None, course, operator="erin", reason="r")
    assert (result["status"], result["scheduled"]) == ("running", None)
    ops.rt.bridge.reconcile(0)
    ops.run()
    assert ops.status(course) == "completed"
