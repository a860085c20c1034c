"""A plan change without containers, for the API and CLI tests: the real engine, event log,
coordinator and read models; only the saga's effects on Docker and Redis are left out.
(The real saga, with containers and data, is tested in test_plan_change*.py.)"""

from __future__ import annotations

import asyncio
import uuid

from domain.addon import DEFAULT_SETTINGS, Addon
from engine.ports import EffectError
from engine.saga import StepResult

DETAILS = {
    "stop": "saved 42 keys and stopped {old[container]} on {old[host]}",
    "start_new": "3 data files (4096 bytes, identical) copied to {new[host]}; started with {new[memory_mib]} MiB "
                 "on {new[address]}:{new[port]}",
    "wait_ready": "PING answered",
    "verify": "same 42 keys, same digest 0123456789ab",
    "cleanup": "old node {old[container]} removed from {old[host]}",
    "restart_app": "app has no restart method registered: nothing to restart",
}


class FakePlanChange:
    """Each step takes `pause_s` (so a poller sees them end one by one); `fail_at` fails one for good."""

    kind = "change_plan"

    def __init__(self, events, fail_at: str | None = None, pause_s: float = 0.15):
        self.events, self.fail_at, self.pause_s = events, fail_at, pause_s

    async def run_step(self, step: str, operation) -> StepResult:
        await asyncio.sleep(self.pause_s)
        if step == self.fail_at:
            raise EffectError(f"{step} failed on purpose")
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if step == "publish":
            addon.mark_plan_changed(operation_id=operation.id)
            return StepResult(f"now {addon.plan} on {addon.host}; REDIS_URL and SCALINGO_REDIS_URL changed", changes=(addon,))
        old = addon.replaced if step == "cleanup" else addon.previous_node
        return StepResult(DETAILS[step].format(old=old, new=addon.target or {}))

    async def compensate(self, operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        if operation.past_point_of_no_return:
            return StepResult(f"the addon runs on its new plan; {operation.failed_step} failed: {error}")
        addon.mark_plan_change_failed(operation_id=operation.id, reason=error)
        return StepResult(f"back on {addon.host} with plan {addon.plan}: new node removed, old node running", changes=(addon,))


def fake_plan_changes(engine, monkeypatch, fail_at: str | None = None) -> None:
    """Plan changes on `engine` run FakePlanChange; the dataset is empty (nothing to measure)."""
    async def no_memory_used(address, port, password):
        return 0

    monkeypatch.setattr(engine.redis, "used_memory", no_memory_used)
    monkeypatch.setitem(engine.coordinator._sagas, "change_plan", FakePlanChange(engine.events, fail_at=fail_at))


async def running_addon(engine, app: str, plan: str = "redis-starter-256", number: int = 4242) -> str:
    """An addon recorded as provisioned and running on host-a (no container is made)."""
    name = f"{app}-{number}"
    memory = engine.plans.get(plan).memory_mib
    node = f"redis-addons-{name}-seeded"
    addon = Addon(name=name, app=app, plan=plan, memory_mib=memory, redis_version=engine.versions.default.version,
                  host="host-a", address="127.0.1.1", port=30999, container=node, volume=f"{node}-data",
                  operation_id=uuid.uuid4(), settings=DEFAULT_SETTINGS)
    addon.mark_provisioned(operation_id=addon.operation_id)
    recordings = await engine.events.save(addon)
    await engine.follower.wait_until(recordings[-1].notification.id)
    return name
