"""The Addon aggregate: requested, provisioned, removed — and the rules on the way.

Each test: given the addon's history, one command, then the new events (or a
domain error and no event at all).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.errors import AddonBusy, AddonRemoved
from tests.unit.given import (
    a_removed_addon,
    a_requested_addon,
    a_running_addon,
    an_addon_being_removed,
    an_addon_failed_to_provision,
    replayed,
    then,
    types,
)


# --- Adding an addon -------------------------------------------------------------------------------------------


def test_adding_an_addon_records_where_it_goes_and_starts_provisioning():
    operation = uuid4()
    addon = Addon(
        name="my-app-3030", app="my-app", plan="redis-starter-512", memory_mib=512, redis_version="7.0.15",
        host="host-b", address="127.0.2.1", port=31002, container="c-0", volume="v-0",
        operation_id=operation, settings=DEFAULT_SETTINGS,
    )
    [requested] = events = then(addon)
    assert types(events) == [Addon.Requested]
    assert (requested.name, requested.app, requested.plan, requested.memory_mib) == ("my-app-3030", "my-app", "redis-starter-512", 512)
    assert (requested.host, requested.address, requested.port) == ("host-b", "127.0.2.1", 31002)
    assert requested.operation_id == operation
    assert addon.status == "provisioning" and addon.is_busy and addon.operation_id == operation
    assert addon.holds_resources


def test_a_new_addon_starts_with_the_reference_settings_and_its_own_copy_of_them():
    addon = a_requested_addon()
    assert addon.settings == {"rdb": True, "aof": False, "cache_mode": False, "force_tls": False}
    addon.settings["aof"] = True
    assert DEFAULT_SETTINGS["aof"] is False


# --- Provisioning ends -----------------------------------------------------------------------------------------


def test_provisioned_makes_it_running_and_free_for_the_next_operation():
    addon = a_requested_addon()
    operation = addon.operation_id
    addon.mark_provisioned(operation_id=operation)
    [provisioned] = events = then(addon)
    assert types(events) == [Addon.Provisioned]
    assert provisioned.operation_id == operation
    assert addon.status == "running" and not addon.is_busy and addon.operation_id is None
    assert addon.holds_resources


def test_a_failed_provisioning_records_why_and_releases_host_memory_and_port():
    addon = a_requested_addon()
    addon.mark_provisioning_failed(operation_id=addon.operation_id, reason="image missing")
    [failed] = events = then(addon)
    assert types(events) == [Addon.ProvisioningFailed]
    assert failed.reason == "image missing"
    assert addon.status == "failed" and addon.failure == "image missing" and not addon.is_busy
    assert not addon.holds_resources


# --- Removal ---------------------------------------------------------------------------------------------------


def test_removal_of_a_running_addon_is_requested_and_makes_it_busy():
    addon = a_running_addon()
    operation = uuid4()
    addon.request_removal(operation)
    [requested] = events = then(addon)
    assert types(events) == [Addon.RemovalRequested]
    assert requested.operation_id == operation
    assert addon.status == "removing" and addon.operation_id == operation and addon.is_busy
    assert addon.holds_resources  # the container is still there until it is removed


def test_removed_releases_its_host_memory_and_port():
    addon = an_addon_being_removed()
    addon.mark_removed(operation_id=addon.operation_id)
    assert types(then(addon)) == [Addon.Removed]
    assert addon.status == "removed" and not addon.is_busy and not addon.holds_resources


def test_an_addon_whose_provisioning_failed_can_be_removed():
    addon = an_addon_failed_to_provision()
    addon.request_removal(uuid4())
    assert types(then(addon)) == [Addon.RemovalRequested]
    assert addon.status == "removing"


@pytest.mark.parametrize(
    "given_addon, busy_status",
    [(a_requested_addon, "provisioning"), (an_addon_being_removed, "removing")],
    ids=["while-provisioning", "while-removing"],
)
def test_one_operation_per_addon_removal_of_a_busy_addon_is_refused_naming_the_operation(given_addon, busy_status):
    running = uuid4()
    addon = given_addon(operation_id=running)
    with pytest.raises(AddonBusy) as refused:
        addon.request_removal(uuid4())
    assert str(running) in str(refused.value) and addon.name in str(refused.value)
    assert (refused.value.rule, refused.value.status) == ("one-operation-per-addon", 409)
    assert then(addon) == []
    assert addon.status == busy_status and addon.operation_id == running


def test_a_removed_addon_cannot_be_removed_again():
    addon = a_removed_addon()
    with pytest.raises(AddonRemoved) as refused:
        addon.request_removal(uuid4())
    assert "my-app-3030" in str(refused.value)
    assert (refused.value.rule, refused.value.status) == ("addon-removed", 409)
    assert then(addon) == []
    assert addon.status == "removed" and not addon.is_busy


def test_a_failed_removal_leaves_the_addon_failed_holding_its_resources_and_removal_can_be_asked_again():
    addon = an_addon_being_removed()
    addon.mark_removal_failed(operation_id=addon.operation_id, reason="docker down")
    [failed] = events = then(addon)
    assert types(events) == [Addon.RemovalFailed]
    assert failed.reason == "docker down"
    assert addon.status == "failed" and addon.failure == "docker down" and not addon.is_busy
    assert addon.holds_resources  # the container may still be there

    again = uuid4()
    addon.request_removal(again)
    assert types(then(addon)) == [Addon.RemovalRequested]
    assert addon.status == "removing" and addon.operation_id == again


# --- Identity and replay ---------------------------------------------------------------------------------------


def test_the_addon_id_is_a_uuid5_of_its_name_only():
    one = a_requested_addon(name="my-app-3030", host="host-a", port=30000)
    same_name_elsewhere = a_requested_addon(name="my-app-3030", host="host-b", address="127.0.2.1", port=31000)
    other = a_requested_addon(name="my-app-3031")
    assert isinstance(one.id, UUID) and one.id.version == 5
    assert one.id == same_name_elsewhere.id == Addon.id_for("my-app-3030")
    assert other.id != one.id and other.id == Addon.id_for("my-app-3031")


def test_an_addon_rebuilt_from_its_events_is_the_addon_that_made_them():
    addon = Addon(
        name="my-app-3030", app="my-app", plan="redis-sandbox", memory_mib=128, redis_version="7.0.15",
        host="host-a", address="127.0.1.1", port=30000, container="c", volume="v",
        operation_id=uuid4(), settings=DEFAULT_SETTINGS,
    )
    addon.mark_provisioned(operation_id=addon.operation_id)
    removal = uuid4()
    addon.request_removal(removal)
    addon.mark_removal_failed(operation_id=removal, reason="docker down")
    rebuilt = replayed(then(addon), Addon)
    assert rebuilt.id == addon.id and rebuilt.version == addon.version == 4
    assert (rebuilt.status, rebuilt.failure, rebuilt.operation_id, rebuilt.holds_resources) == (
        "failed", "docker down", None, True)
    assert (rebuilt.plan, rebuilt.host, rebuilt.port) == ("redis-sandbox", "host-a", 30000)
