"""The Operation aggregate: a saga's durable log, one step after another."""

from __future__ import annotations

import pytest

from domain.errors import StepOutOfOrder
from domain.operation import STEPS, Operation


def a_provisioning() -> Operation:
    operation = Operation(kind="provision", addon="my-app-3030", app="my-app")
    operation.collect_events()
    return operation


def names(operation) -> list[str]:
    return [type(e).__name__ for e in operation.collect_events()]


def test_a_new_operation_lists_its_steps_pending_in_order():
    operation = a_provisioning()
    assert [s["name"] for s in operation.steps] == STEPS["provision"] == ["create", "start", "wait_ready", "publish"]
    assert operation.next_step == "create" and operation.status == "running"


def test_each_step_is_recorded_before_and_after_it_runs():
    operation = a_provisioning()
    operation.start_step("create")
    operation.succeed_step("create", "container made")
    assert names(operation) == ["StepStarted", "StepSucceeded"]
    assert operation.next_step == "start"
    assert operation.steps[0] == {"name": "create", "status": "succeeded", "attempts": 1, "detail": "container made"}


@pytest.mark.parametrize("step", ["start", "publish", "nonexistent"])
def test_a_step_that_is_not_next_is_refused(step):
    operation = a_provisioning()
    with pytest.raises(StepOutOfOrder):
        operation.start_step(step)
    assert names(operation) == []


def test_a_step_started_before_a_crash_is_the_one_to_run_again():
    operation = a_provisioning()
    operation.start_step("create")
    assert operation.next_step == "create"
    operation.start_step("create")
    assert operation.steps[0]["attempts"] == 2


def test_after_a_failed_step_only_compensation_remains():
    operation = a_provisioning()
    operation.start_step("create")
    operation.fail_step("create", "no such image")
    assert operation.next_step is None and operation.failed_step == "create"
    assert operation.error == "create: no such image"
    with pytest.raises(StepOutOfOrder):
        operation.start_step("start")
    operation.mark_compensated("container removed")
    assert [s["status"] for s in operation.steps] == ["failed", "skipped", "skipped", "skipped"]
    assert operation.status == "failed" and operation.is_finished


def test_an_operation_whose_steps_all_succeeded_is_finished():
    operation = a_provisioning()
    for step in STEPS["provision"]:
        operation.start_step(step)
        operation.succeed_step(step)
    operation.mark_succeeded()
    assert operation.is_finished and operation.status == "succeeded" and operation.next_step is None
