"""Given-events / command / then-events helpers for the domain's aggregates."""

from __future__ import annotations

from uuid import uuid4

from domain.addon import DEFAULT_SETTINGS, Addon


def a_requested_addon(name="my-app-3030", app="my-app", plan="redis-starter-1024", memory_mib=1024, **changes) -> Addon:
    fields = dict(
        name=name, app=app, plan=plan, memory_mib=memory_mib, redis_version="7.0.15", host="host-a",
        address="127.0.1.1", port=30000, container=f"redis-addons-{name}-0", volume=f"redis-addons-{name}-0-data",
        operation_id=uuid4(), settings=DEFAULT_SETTINGS,
    )
    fields.update(changes)
    addon = Addon(**fields)
    addon.collect_events()
    return addon


def a_running_addon(**changes) -> Addon:
    addon = a_requested_addon(**changes)
    addon.mark_provisioned(operation_id=addon.operation_id)
    addon.collect_events()
    return addon


def then_events(aggregate) -> list[str]:
    """The names of the events the command produced."""
    return [type(e).__name__ for e in aggregate.collect_events()]
