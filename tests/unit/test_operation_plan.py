"""An operation's recorded plan: its steps and points of no return are written when it starts,
so its history replays the same whatever the code's step lists become; compensation undoes the
steps that ran, latest first, back to the last point of no return passed.
"""

from __future__ import annotations

import pytest

from domain import operation as operations
from domain.errors import StepOutOfOrder
from domain.operation import Operation
from tests.unit.given import replayed, then, types


def an_operation_with(steps, no_return=(), succeeded=(), failed=None) -> Operation:
    operation = Operation(kind="provision", addon="my-app-3030", app="my-app", steps=list(steps), no_return=list(no_return))
    for step in succeeded:
        operation.start_step(step)
        operation.succeed_step(step)
    if failed:
        operation.start_step(failed)
        operation.fail_step(failed, "boom")
    return operation


def test_the_plan_is_written_into_the_started_event():
    operation = Operation(kind="change_plan", addon="my-app-3030", app="my-app")
    [started] = then(operation)
    assert started.steps == operations.STEPS["change_plan"] and started.no_return == ["publish"]


def test_a_recorded_operation_replays_its_own_steps_after_the_code_changes_them(monkeypatch):
    operation = Operation(kind="provision", addon="my-app-3030", app="my-app")
    operation.start_step("create")
    events = then(operation)
    monkeypatch.setitem(operations.STEPS, "provision", ["renamed", "create", "added"])
    resumed = replayed(events, Operation)
    assert resumed.step_names == ["create", "start", "wait_ready", "publish"]
    assert resumed.next_step == "create"


def test_a_plan_that_depends_on_the_topology_is_kept():
    operation = an_operation_with(["place", "sync:replica-1", "sync:replica-2", "publish"], no_return=["publish"])
    resumed = replayed(then(operation), Operation)
    assert resumed.step_names == ["place", "sync:replica-1", "sync:replica-2", "publish"]


def test_an_event_recorded_before_plans_were_recorded_is_upcast_to_the_release_steps():
    state = {"kind": "restore", "addon": "my-app-3030", "app": "my-app", "subject": None}
    Operation.Started.upcast_v1_v2(state)
    assert state["steps"] == ["check", "stop", "load", "wait_ready", "verify", "settings", "publish", "cleanup"]
    assert state["no_return"] == ["publish"]
    state = {"kind": "backup", "addon": "my-app-3030", "app": "my-app"}
    Operation.Started.upcast_v1_v2(state)
    assert state["steps"] == ["save", "archive", "record"] and state["no_return"] == []


def test_compensation_undoes_the_steps_that_ran_latest_first_the_failed_one_included():
    operation = an_operation_with(["a", "b", "c", "d"], succeeded=("a", "b"), failed="c")
    assert operation.steps_to_undo == ["c", "b", "a"]


def test_steps_before_the_last_point_of_no_return_passed_are_not_undone():
    operation = an_operation_with(["a", "publish_1", "b", "publish_2", "c", "d"], no_return=["publish_1", "publish_2"],
                                  succeeded=("a", "publish_1", "b", "publish_2"), failed="c")
    assert operation.steps_to_undo == ["c"]
    assert operation.past_point_of_no_return


def test_several_points_of_no_return_count_from_the_first_one_passed():
    operation = an_operation_with(["a", "publish_1", "b", "publish_2"], no_return=["publish_1", "publish_2"],
                                  succeeded=("a", "publish_1"), failed="b")
    assert operation.past_point_of_no_return
    assert operation.steps_to_undo == ["b"]


def test_an_undone_step_is_recorded_and_not_undone_again_after_a_crash():
    operation = an_operation_with(["a", "b", "c"], succeeded=("a", "b"), failed="c")
    history = then(operation)
    operation.mark_step_undone("c", "container removed")
    [undone] = events = then(operation)
    assert types(events) == [Operation.StepUndone] and (undone.step, undone.detail) == ("c", "container removed")
    resumed = replayed([*history, *events], Operation)  # the engine restarted after the undo
    assert resumed.steps_to_undo == ["b", "a"]
    assert resumed.failed_step == "c" and resumed.next_step is None  # undone, it does not run again
    with pytest.raises(StepOutOfOrder):
        resumed.mark_step_undone("c", "again")


def test_a_step_that_never_ran_cannot_be_undone():
    operation = an_operation_with(["a", "b", "c"], succeeded=("a",), failed="b")
    with pytest.raises(StepOutOfOrder):
        operation.mark_step_undone("c", "nothing")


def test_a_compensation_that_fails_leaves_the_operation_unfinished_needing_attention():
    operation = an_operation_with(["a", "b"], succeeded=("a",), failed="b")
    then(operation)
    operation.mark_compensation_failed("docker on host-a does not answer")
    [event] = then(operation)
    assert isinstance(event, Operation.CompensationFailed)
    assert operation.status == "needs-attention" and not operation.is_finished
    assert operation.attention == "docker on host-a does not answer"
    operation.mark_compensated("undone at the second try")
    assert operation.status == "failed" and operation.is_finished and operation.attention is None


def test_an_abandoned_operation_is_finished():
    operation = an_operation_with(["a", "b"], succeeded=("a",), failed="b")
    operation.mark_compensation_failed("stuck")
    operation.abandon("the addon is removed")
    assert operation.status == "abandoned" and operation.is_finished
    assert [s["status"] for s in operation.steps] == ["succeeded", "failed"]
