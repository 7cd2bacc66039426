"""The lifecycles: built once, checked when built, compiled tables agree with ``transitions``."""

from __future__ import annotations

import pytest
from transitions import Machine

from statemachine import lifecycle
from statemachine.errors import TransitionNotAllowed
from statemachine.lifecycle import COURSE, TASK, build


def test_machines_are_built_once_per_process():
    import importlib

    import statemachine.lifecycle as again

    assert importlib.import_module("statemachine.lifecycle").COURSE is again.COURSE
    assert lifecycle.COURSE.machine is COURSE.machine


@pytest.mark.parametrize("cycle", [COURSE, TASK])
def test_compiled_table_agrees_with_a_transitions_model(cycle):
    for (source, trigger), dest in cycle.table.items():
        machine = Machine(
            model=None,
            states=list(cycle.states),
            transitions=[{"trigger": t, "source": s, "dest": d} for s, t, d in cycle.edges()],
            initial=source,
            auto_transitions=False,
        )

        class Model:
            pass

        model = Model()
        machine.add_model(model, initial=source)
        getattr(model, trigger)()
        assert model.state == dest


def test_illegal_trigger_carries_state_and_event():
    with pytest.raises(TransitionNotAllowed) as err:
        COURSE.next("completed", "start")
    assert (err.value.state, err.value.event) == ("completed", "start")


def test_an_unreachable_state_is_refused_when_built():
    with pytest.raises(ValueError, match="unreachable"):
        build("x", ["a", "b", "island"], [("go", "a", "b")], initial="a", terminal=["b"])


def test_a_trap_state_is_refused_when_built():
    with pytest.raises(ValueError, match="cannot reach a terminal"):
        build(
            "x",
            ["a", "loop", "end"],
            [("go", "a", "loop"), ("spin", "loop", "loop"), ("stop", "a", "end")],
            initial="a",
            terminal=["end"],
        )


def test_task_retry_belongs_to_the_queue():
    assert TASK.next("running", "fail") == "retrying"
    assert TASK.next("retrying", "start") == "running"
    assert TASK.next("running", "start") == "running"  # redelivery after a crash
    assert not TASK.allows("succeeded", "start")
    assert TASK.next("exhausted", "redrive") == "pending"
