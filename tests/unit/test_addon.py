"""The Addon aggregate's life: requested, provisioned, removed — and the rules on the way."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.addon import Addon, addon_name, check_app_name
from domain.errors import AddonBusy, AddonRemoved, InvalidName
from tests.unit.given import a_requested_addon, a_running_addon, then_events


def test_a_requested_addon_is_provisioning_and_busy_with_its_operation():
    operation = uuid4()
    addon = a_requested_addon(operation_id=operation)
    assert addon.status == "provisioning" and addon.operation_id == operation and addon.is_busy


def test_provisioned_makes_it_running_and_free():
    addon = a_requested_addon()
    addon.mark_provisioned(operation_id=addon.operation_id)
    assert then_events(addon) == ["Provisioned"]
    assert addon.status == "running" and not addon.is_busy


def test_a_failed_provisioning_records_why_and_releases_host_and_port():
    addon = a_requested_addon()
    addon.mark_provisioning_failed(operation_id=addon.operation_id, reason="image missing")
    assert then_events(addon) == ["ProvisioningFailed"]
    assert addon.status == "failed" and addon.failure == "image missing" and not addon.holds_resources


def test_removal_of_a_running_addon_is_requested_then_done():
    addon = a_running_addon()
    operation = uuid4()
    addon.request_removal(operation)
    assert then_events(addon) == ["RemovalRequested"]
    assert addon.status == "removing" and addon.operation_id == operation
    addon.mark_removed(operation_id=operation)
    assert then_events(addon) == ["Removed"]
    assert addon.status == "removed" and not addon.holds_resources


def test_one_operation_at_a_time_removal_of_a_busy_addon_is_refused():
    addon = a_requested_addon()
    with pytest.raises(AddonBusy, match=str(addon.operation_id)) as refused:
        addon.request_removal(uuid4())
    assert refused.value.rule == "one-operation-per-addon"
    assert then_events(addon) == []


def test_a_removed_addon_cannot_be_removed_again():
    addon = a_running_addon()
    operation = uuid4()
    addon.request_removal(operation)
    addon.mark_removed(operation_id=operation)
    addon.collect_events()
    with pytest.raises(AddonRemoved):
        addon.request_removal(uuid4())
    assert then_events(addon) == []


def test_a_failed_removal_can_be_asked_again():
    addon = a_running_addon()
    first = uuid4()
    addon.request_removal(first)
    addon.mark_removal_failed(operation_id=first, reason="docker down")
    assert then_events(addon) == ["RemovalRequested", "RemovalFailed"]
    assert addon.status == "failed" and addon.holds_resources
    addon.request_removal(uuid4())
    assert then_events(addon) == ["RemovalRequested"]


def test_the_addon_id_is_derived_from_its_name():
    assert Addon.id_for("my-app-3030") == a_requested_addon(name="my-app-3030").id
    assert Addon.id_for("my-app-3030") != Addon.id_for("my-app-3031")


@pytest.mark.parametrize("app", ["my-app", "abc", "a1-b2-c3", "x" * 48])
def test_valid_app_names(app):
    assert check_app_name(app) == app


@pytest.mark.parametrize("app", ["", "ab", "My-App", "my_app", "-app", "app-", "1app", "x" * 49, "my app", None])
def test_invalid_app_names_are_refused_with_the_rule(app):
    with pytest.raises(InvalidName, match="app name"):
        check_app_name(app)


def test_addon_names_read_like_the_reference():
    assert addon_name("my-app", 3030) == "my-app-3030"
    assert addon_name("my-app", 7) == "my-app-0007"
