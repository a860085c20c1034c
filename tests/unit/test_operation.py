"""The Operation aggregate: a saga's durable log, one step after another.

Given the steps already recorded, one command, then the new events — or
StepOutOfOrder and no event.
"""

from __future__ import annotations

import pytest

from domain.errors import StepOutOfOrder
from domain.operation import STEPS, Operation
from tests.unit.given import an_operation, replayed, then, types

PROVISION = ["create", "start", "wait_ready", "publish"]


def statuses(operation) -> list[str]:
    return [s["status"] for s in operation.steps]


# --- Starting ---------------------------------------------------------------------------------------------------


def test_the_steps_of_each_kind_of_operation():
    assert STEPS["provision"] == PROVISION
    assert STEPS["remove"] == ["stop", "remove"]


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_a_new_operation_lists_its_steps_pending_in_order(kind):
    operation = Operation(kind=kind, addon="my-app-3030", app="my-app")
    [started] = events = then(operation)
    assert types(events) == [Operation.Started]
    assert (started.kind, started.addon, started.app) == (kind, "my-app-3030", "my-app")
    assert [s["name"] for s in operation.steps] == STEPS[kind]
    assert all(s["status"] == "pending" and s["attempts"] == 0 for s in operation.steps)
    assert operation.next_step == STEPS[kind][0]
    assert operation.status == "running" and not operation.is_finished and operation.failed_step is None


# --- Steps in order ---------------------------------------------------------------------------------------------


def test_a_step_is_recorded_before_it_runs():
    operation = an_operation()
    operation.start_step("create")
    [started] = events = then(operation)
    assert types(events) == [Operation.StepStarted] and started.step == "create"
    assert operation.steps[0] == {"name": "create", "status": "running", "attempts": 1, "detail": None}
    assert operation.next_step == "create"


def test_a_step_is_recorded_after_it_succeeds_and_the_next_one_comes_up():
    operation = an_operation(started="create")
    operation.succeed_step("create", "container made")
    [succeeded] = events = then(operation)
    assert types(events) == [Operation.StepSucceeded]
    assert (succeeded.step, succeeded.detail) == ("create", "container made")
    assert operation.steps[0] == {"name": "create", "status": "succeeded", "attempts": 1, "detail": "container made"}
    assert operation.next_step == "start"
    assert statuses(operation) == ["succeeded", "pending", "pending", "pending"]


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_every_step_in_order_then_the_operation_succeeds(kind):
    operation = an_operation(kind)
    for step in STEPS[kind]:
        assert operation.next_step == step
        operation.start_step(step)
        operation.succeed_step(step)
        assert [(type(e), e.step) for e in then(operation)] == [
            (Operation.StepStarted, step), (Operation.StepSucceeded, step)]
    assert operation.next_step is None and not operation.is_finished
    operation.mark_succeeded()
    assert types(then(operation)) == [Operation.Succeeded]
    assert operation.status == "succeeded" and operation.is_finished


@pytest.mark.parametrize(
    "succeeded, command, step",
    [
        ((), "start_step", "start"),  # skipping ahead
        ((), "start_step", "publish"),
        ((), "succeed_step", "wait_ready"),
        ((), "fail_step", "publish"),
        (("create",), "start_step", "create"),  # a step that already succeeded does not run twice
        (("create",), "succeed_step", "create"),
        (("create", "start"), "start_step", "create"),  # going back
        ((), "start_step", "remove"),  # a step of another kind of operation
        ((), "start_step", "nonexistent"),
    ],
)
def test_a_step_that_is_not_next_is_refused(succeeded, command, step):
    operation = an_operation(succeeded=succeeded)
    before = (operation.next_step, statuses(operation))
    args = (step, "boom") if command == "fail_step" else (step,)
    with pytest.raises(StepOutOfOrder) as refused:
        getattr(operation, command)(*args)
    assert repr(step) in str(refused.value) and str(operation.id) in str(refused.value)
    assert refused.value.rule == "steps-in-order"
    assert then(operation) == []
    assert (operation.next_step, statuses(operation)) == before


# --- Crash and resume -------------------------------------------------------------------------------------------


def test_a_step_started_before_a_crash_is_the_one_to_run_again_and_counts_its_attempts():
    operation = Operation(kind="provision", addon="my-app-3030", app="my-app")
    operation.start_step("create")
    operation.succeed_step("create")
    operation.start_step("start")
    # crash: the engine restarts and rebuilds the operation from its stored events
    resumed = replayed(then(operation), Operation)
    assert resumed.next_step == "start" and resumed.steps[1]["status"] == "running"
    resumed.start_step("start")
    [started] = events = then(resumed)
    assert types(events) == [Operation.StepStarted] and started.step == "start"
    assert resumed.steps[1]["attempts"] == 2
    resumed.succeed_step("start")
    assert resumed.next_step == "wait_ready"


# --- Failure and compensation -----------------------------------------------------------------------------------


def test_a_failed_step_stops_the_operation_short_of_the_next_step():
    operation = an_operation(succeeded=("create",), started="start")
    operation.fail_step("start", "port in use")
    [failed] = events = then(operation)
    assert types(events) == [Operation.StepFailed]
    assert (failed.step, failed.error) == ("start", "port in use")
    assert operation.next_step is None and operation.failed_step == "start"
    assert operation.error == "start: port in use"
    assert statuses(operation) == ["succeeded", "failed", "pending", "pending"]
    assert not operation.is_finished  # compensation is still to come


@pytest.mark.parametrize("command, step", [("start_step", "wait_ready"), ("start_step", "start"), ("succeed_step", "start")])
def test_after_a_failed_step_no_step_runs(command, step):
    operation = an_operation(succeeded=("create",), started="start")
    operation.fail_step("start", "port in use")
    then(operation)
    with pytest.raises(StepOutOfOrder):
        getattr(operation, command)(step)
    assert then(operation) == []


def test_compensation_skips_the_steps_never_run_and_fails_the_operation():
    operation = an_operation(succeeded=("create",), started="start")
    operation.fail_step("start", "port in use")
    then(operation)
    operation.mark_compensated("container removed")
    [compensated] = events = then(operation)
    assert types(events) == [Operation.Compensated] and compensated.detail == "container removed"
    assert statuses(operation) == ["succeeded", "failed", "skipped", "skipped"]
    assert operation.status == "failed" and operation.is_finished
    assert operation.failed_step == "start" and operation.next_step is None


@pytest.mark.parametrize("finish", ["succeeded", "compensated"])
def test_a_finished_operation_runs_no_more_steps(finish):
    operation = an_operation("remove")
    if finish == "succeeded":
        operation.mark_succeeded()
    else:
        operation.start_step("stop")
        operation.fail_step("stop", "docker down")
        operation.mark_compensated("nothing to undo")
    then(operation)
    assert operation.is_finished
    for step in STEPS["remove"]:
        with pytest.raises(StepOutOfOrder):
            operation.start_step(step)
    assert then(operation) == []
