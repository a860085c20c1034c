"""Changing plans (reference, "Changing Plans"): the addon moves to a new node with the new plan's parameters."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.addon import Addon
from domain.catalog import PlanCatalog
from domain.errors import AddonBusy, AddonNotRunning, AddonRemoved, DatasetTooLarge, SamePlan
from domain.operation import STEPS, Operation
from domain.placement import Placement
from tests.unit.given import (
    a_removed_addon,
    a_requested_addon,
    a_running_addon,
    an_addon_being_removed,
    an_addon_failed_to_provision,
    an_operation,
    replayed,
    then,
    types,
)

PLANS = PlanCatalog.load()
MiB = 1024 * 1024
ELSEWHERE = Placement("host-b", "127.0.2.1", 31000)
OLD_NODE = dict(host="host-a", address="127.0.1.1", port=30000, container="redis-addons-my-app-3030-0",
                volume="redis-addons-my-app-3030-0-data", tls_port=None)
NEW_NODE = dict(host="host-b", address="127.0.2.1", port=31000, container="node-1", volume="node-1-data", tls_port=None)


def change(addon: Addon, plan_id: str = "redis-starter-2048", used_mib: float = 10, operation_id=None) -> None:
    addon.request_plan_change(PLANS.get(plan_id), ELSEWHERE, "node-1", "node-1-data",
                              operation_id or uuid4(), int(used_mib * MiB))


def an_addon_changing_plan(plan_id: str = "redis-starter-2048") -> Addon:
    """Given: Requested (starter-1024 on host-a), Provisioned, PlanChangeRequested (to host-b)."""
    addon = a_running_addon()
    change(addon, plan_id)
    addon.collect_events()
    return addon


def test_a_plan_change_is_requested_with_the_new_node_and_makes_the_addon_busy():
    addon = a_running_addon()
    operation = uuid4()
    change(addon, "redis-starter-2048", operation_id=operation)
    [requested] = events = then(addon)
    assert types(events) == [Addon.PlanChangeRequested]
    assert (requested.operation_id, requested.plan, requested.memory_mib) == (operation, "redis-starter-2048", 2048)
    assert (requested.host, requested.address, requested.port) == ("host-b", "127.0.2.1", 31000)
    assert (requested.container, requested.volume) == ("node-1", "node-1-data")
    assert addon.status == "changing-plan" and addon.is_busy and addon.operation_id == operation
    # until the change is published the addon is where it was, on its old plan
    assert (addon.plan, addon.memory_mib, addon.previous_node) == ("redis-starter-1024", 1024, OLD_NODE)
    assert addon.target == dict(plan="redis-starter-2048", memory_mib=2048, **NEW_NODE)


def test_a_downgrade_that_leaves_room_for_the_data_is_accepted():
    addon = a_running_addon()
    change(addon, "redis-starter-256", used_mib=256)
    assert types(then(addon)) == [Addon.PlanChangeRequested]


@pytest.mark.parametrize("used_mib", [256.1, 300, 1000])
def test_a_downgrade_below_the_data_already_there_is_refused(used_mib):
    addon = a_running_addon()
    with pytest.raises(DatasetTooLarge) as refused:
        change(addon, "redis-starter-256", used_mib=used_mib)
    assert "redis-starter-256" in str(refused.value) and "256 MiB" in str(refused.value)
    assert refused.value.rule == "dataset-fits-the-plan"
    assert then(addon) == [] and addon.status == "running" and not addon.is_busy


def test_in_cache_mode_a_downgrade_is_accepted_whatever_the_data_evictions_make_room():
    addon = a_running_addon(settings={"rdb": True, "aof": False, "cache_mode": True, "force_tls": False})
    change(addon, "redis-starter-256", used_mib=1000)
    assert types(then(addon)) == [Addon.PlanChangeRequested]


def test_a_change_to_the_same_plan_is_refused():
    addon = a_running_addon()
    with pytest.raises(SamePlan, match="redis-starter-1024") as refused:
        change(addon, "redis-starter-1024")
    assert (refused.value.rule, refused.value.status) == ("plan-change-to-another-plan", 409)
    assert then(addon) == []


@pytest.mark.parametrize(
    "given_addon, error",
    [
        (a_requested_addon, AddonBusy),
        (an_addon_being_removed, AddonBusy),
        (an_addon_changing_plan, AddonBusy),
        (a_removed_addon, AddonRemoved),
        (an_addon_failed_to_provision, AddonNotRunning),
    ],
    ids=["provisioning", "removing", "changing-plan", "removed", "failed"],
)
def test_only_a_running_addon_free_of_operations_can_change_plan(given_addon, error):
    addon = given_addon()
    status = addon.status
    with pytest.raises(error):
        change(addon, "redis-starter-4096")
    assert then(addon) == [] and addon.status == status


def test_removal_is_refused_while_the_plan_changes():
    addon = an_addon_changing_plan()
    with pytest.raises(AddonBusy, match=str(addon.operation_id)):
        addon.request_removal(uuid4())
    assert then(addon) == []


def test_plan_changed_moves_the_addon_to_its_new_node_and_keeps_the_old_one_to_clean_up():
    addon = an_addon_changing_plan("redis-starter-2048")
    operation = addon.operation_id
    addon.mark_plan_changed(operation_id=operation)
    [changed] = events = then(addon)
    assert types(events) == [Addon.PlanChanged]
    assert (changed.operation_id, changed.plan, changed.host, changed.port) == (operation, "redis-starter-2048", "host-b", 31000)
    assert (addon.plan, addon.memory_mib) == ("redis-starter-2048", 2048)
    assert addon.previous_node == NEW_NODE and addon.replaced == OLD_NODE
    assert addon.status == "running" and not addon.is_busy and addon.target is None


def test_a_failed_plan_change_leaves_the_addon_running_where_it_was_on_its_old_plan():
    addon = an_addon_changing_plan()
    addon.mark_plan_change_failed(operation_id=addon.operation_id, reason="the new node's data differs")
    [failed] = events = then(addon)
    assert types(events) == [Addon.PlanChangeFailed] and failed.reason == "the new node's data differs"
    assert (addon.plan, addon.memory_mib, addon.previous_node) == ("redis-starter-1024", 1024, OLD_NODE)
    assert addon.status == "running" and not addon.is_busy and addon.target is None
    change(addon, "redis-starter-4096")  # it can be asked again
    assert types(then(addon)) == [Addon.PlanChangeRequested]


def test_an_addon_rebuilt_mid_change_knows_where_it_is_going():
    addon = Addon(
        name="my-app-3030", app="my-app", plan="redis-starter-1024", memory_mib=1024, redis_version="7.0.15",
        host="host-a", address="127.0.1.1", port=30000, container=OLD_NODE["container"], volume=OLD_NODE["volume"],
        operation_id=uuid4(), settings={"rdb": True, "aof": False, "cache_mode": False, "force_tls": False},
    )
    addon.mark_provisioned(operation_id=addon.operation_id)
    change(addon, "redis-starter-2048")
    # the engine restarts mid-change and rebuilds the addon from Requested, Provisioned, PlanChangeRequested
    rebuilt = replayed(then(addon), Addon)
    assert rebuilt.status == "changing-plan" and rebuilt.target == dict(plan="redis-starter-2048", memory_mib=2048, **NEW_NODE)
    rebuilt.mark_plan_changed(operation_id=rebuilt.operation_id)
    assert types(then(rebuilt)) == [Addon.PlanChanged]
    assert rebuilt.replaced == OLD_NODE and rebuilt.previous_node == NEW_NODE


# --- The plan change operation ----------------------------------------------------------------------------------


def test_the_steps_of_a_plan_change_follow_the_reference():
    assert STEPS["change_plan"] == ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"]


@pytest.mark.parametrize(
    "succeeded, past",
    [
        ((), False),
        (("stop", "start_new", "wait_ready", "verify"), False),
        (("stop", "start_new", "wait_ready", "verify", "publish"), True),
        (("stop", "start_new", "wait_ready", "verify", "publish", "cleanup"), True),
    ],
)
def test_once_published_a_plan_change_is_past_the_point_of_no_return(succeeded, past):
    assert an_operation("change_plan", succeeded=succeeded).past_point_of_no_return is past


@pytest.mark.parametrize("kind", ["provision", "remove"])
def test_other_operations_have_no_point_of_no_return(kind):
    operation = an_operation(kind, succeeded=tuple(STEPS[kind]))
    assert operation.past_point_of_no_return is False


def test_what_a_step_measured_is_kept_for_the_steps_after_it_even_after_a_restart():
    operation = Operation(kind="change_plan", addon="my-app-3030", app="my-app")
    operation.start_step("stop")
    fingerprint = {"keys": {"db0": 3}, "digest": "ab12"}
    operation.succeed_step("stop", "saved", outcome=fingerprint)
    [_, _, succeeded] = events = then(operation)
    assert types(events) == [Operation.Started, Operation.StepStarted, Operation.StepSucceeded]
    assert succeeded.outcome == fingerprint
    rebuilt = replayed(events, Operation)
    assert rebuilt.outcome("stop") == fingerprint
    assert rebuilt.outcome("start_new") == {}
