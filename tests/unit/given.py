"""Given events / command / then events: small helpers for the domain's aggregates.

An aggregate is built from its history by calling the commands that produce the
"given" events; those events are then collected away, so `then(aggregate)`
returns only what the command under test decided.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.operation import Operation

NAME = "my-app-3030"


def a_requested_addon(name: str = NAME, operation_id: UUID | None = None, **changes) -> Addon:
    """Given: Addon.Requested (the addon is being provisioned by `operation_id`)."""
    fields = dict(
        name=name, app="my-app", plan="redis-starter-1024", memory_mib=1024, redis_version="7.0.15",
        host="host-a", address="127.0.1.1", port=30000, container=f"redis-addons-{name}-0",
        volume=f"redis-addons-{name}-0-data", operation_id=operation_id or uuid4(), settings=DEFAULT_SETTINGS,
    )
    fields.update(changes)
    addon = Addon(**fields)
    addon.collect_events()
    return addon


def a_running_addon(**changes) -> Addon:
    """Given: Requested, Provisioned."""
    addon = a_requested_addon(**changes)
    addon.mark_provisioned(operation_id=addon.operation_id)
    addon.collect_events()
    return addon


def an_addon_failed_to_provision(**changes) -> Addon:
    """Given: Requested, ProvisioningFailed."""
    addon = a_requested_addon(**changes)
    addon.mark_provisioning_failed(operation_id=addon.operation_id, reason="image missing")
    addon.collect_events()
    return addon


def an_addon_being_removed(operation_id: UUID | None = None, **changes) -> Addon:
    """Given: Requested, Provisioned, RemovalRequested."""
    addon = a_running_addon(**changes)
    addon.request_removal(operation_id or uuid4())
    addon.collect_events()
    return addon


def a_removed_addon(**changes) -> Addon:
    """Given: Requested, Provisioned, RemovalRequested, Removed."""
    addon = an_addon_being_removed(**changes)
    addon.mark_removed(operation_id=addon.operation_id)
    addon.collect_events()
    return addon


def an_operation(kind: str = "provision", succeeded: tuple[str, ...] = (), started: str | None = None) -> Operation:
    """Given: Started, then StepStarted + StepSucceeded for each of `succeeded`, then StepStarted for `started`."""
    operation = Operation(kind=kind, addon=NAME, app="my-app")
    for step in succeeded:
        operation.start_step(step)
        operation.succeed_step(step)
    if started:
        operation.start_step(started)
    operation.collect_events()
    return operation


def then(aggregate) -> list:
    """The new events the command produced (and clears them)."""
    return aggregate.collect_events()


def types(events) -> list[type]:
    return [type(e) for e in events]


def replayed(events, cls):
    """The aggregate as a restarted engine would rebuild it from its stored events."""
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert isinstance(aggregate, cls)
    return aggregate
