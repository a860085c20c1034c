"""Plan change decisions (engine/plan_change.py) through a real Engine over the in-memory ports:
the data moves to a node of the new plan on another host, or the addon stays on its old host."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import AddonBusy, AddonNeedsAttention, DatasetTooLarge, OperationNotStuck
from domain.redis_config import RDB_SAVE_RULES
from tests.unit.engine_fakes import (APP, SHORT_DEADLINE_S, SOME_KEYS, a_running_addon, caught_up, finished,
                                     started_engine)

NEW_PLAN = "redis-starter-512"
SAVE_RULES = " ".join(RDB_SAVE_RULES)


def steps(operation: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in operation["steps"]}


async def test_a_plan_change_moves_the_data_to_a_node_of_the_new_plan_on_another_host(world, engine):
    await engine.register_app(APP, "hook", url="http://127.0.0.1:9999/restart")
    addon = await a_running_addon(world, engine)
    old = (addon.host, addon.container)

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "succeeded"
    moved = await world.addon(addon.name)
    assert (moved.status, moved.plan, moved.host) == ("running", NEW_PLAN, "host-b")
    assert (await world.addon_events(addon.name))[-2:] == ["PlanChangeRequested", "PlanChanged"]
    assert world.key_counts(moved) == SOME_KEYS
    assert world.runtime.containers() == [("host-b", moved.container)]
    assert world.runtime.volumes() == [("host-b", moved.volume)]
    assert world.runtime.container(*world.node_of(moved)).memory_bytes > 512 * 1024 * 1024
    assert ("removed", *old) in world.runtime.effects
    assert world.runtime.broken_rules == []
    [(app, method, environment)] = world.restarter.restarts
    assert (app, method["kind"]) == (APP, "hook")
    assert f"@127.0.2.1:{moved.port}" in environment["REDIS_URL"]
    assert environment["REDIS_URL"] == (await engine.environment(APP))["REDIS_URL"]


async def test_a_plan_change_whose_new_node_cannot_start_leaves_the_addon_on_its_old_host(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("start_node", host="host-b")

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "failed"
    assert operation["error"] == "start_new: start_node failed for good (told to)"
    assert steps(operation) == {"stop": "succeeded", "start_new": "failed", "wait_ready": "skipped",
                                "verify": "skipped", "publish": "skipped", "cleanup": "skipped",
                                "restart_app": "skipped"}
    back = await world.addon(addon.name)
    assert (back.status, back.plan, back.host, back.container) == ("running", addon.plan, "host-a", addon.container)
    assert (await world.addon_events(addon.name))[-2:] == ["PlanChangeRequested", "PlanChangeFailed"]
    assert world.runtime.containers() == [("host-a", addon.container)]
    assert world.runtime.volumes() == [("host-a", addon.volume)]
    server = world.runtime.server("host-a", addon.container)
    assert world.key_counts(back) == SOME_KEYS
    assert not server.paused and server.config["save"] == SAVE_RULES
    assert world.restarter.restarts == []
    assert (await engine.addon(APP, addon.name))["status"] == "running"


async def test_a_plan_change_whose_new_node_never_answers_is_undone_at_the_step_deadline(world):
    engine = await started_engine(world, step_deadline_s=SHORT_DEADLINE_S)
    addon = await a_running_addon(world, engine)
    world.redis.fail("ping", times=None, address="127.0.2.1")

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "failed"
    assert operation["error"].startswith(f"wait_ready: not done within its deadline of {SHORT_DEADLINE_S:g} s")
    assert steps(operation)["start_new"] == "succeeded"
    assert world.runtime.containers() == [("host-a", addon.container)]
    assert world.key_counts(await world.addon(addon.name)) == SOME_KEYS


async def test_a_plan_change_whose_copy_lost_data_is_undone_before_the_app_sees_it(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.lose_data_in_copies = True

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "failed"
    assert operation["error"] == ("verify: the new node's data differs: database 0: 0 keys, 120 saved (20 of them "
                                  "with an expiry); database 1: 0 keys, 7 saved (0 of them with an expiry); "
                                  "database 4: 0 keys, 3 saved (0 of them with an expiry)")
    back = await world.addon(addon.name)
    assert (back.host, back.plan) == ("host-a", addon.plan)
    assert world.runtime.containers() == [("host-a", addon.container)]
    assert world.key_counts(back) == SOME_KEYS
    assert world.restarter.restarts == []


async def test_a_plan_change_retries_a_docker_engine_busy_for_now(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.fail("copy_data", times=2)

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "succeeded"
    assert len(world.runtime.calls_to("copy_data")) == 3
    assert world.key_counts(await world.addon(addon.name)) == SOME_KEYS


async def test_a_failure_once_the_new_node_is_published_undoes_nothing(world, engine):
    addon = await a_running_addon(world, engine)
    world.restarter.fail_for_good("restart")

    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    assert operation["status"] == "failed"
    assert steps(operation) == {"stop": "succeeded", "start_new": "succeeded", "wait_ready": "succeeded",
                                "verify": "succeeded", "publish": "succeeded", "cleanup": "succeeded",
                                "restart_app": "failed"}
    moved = await world.addon(addon.name)
    assert (moved.status, moved.plan, moved.host) == ("running", NEW_PLAN, "host-b")
    assert world.runtime.containers() == [("host-b", moved.container)]
    assert world.key_counts(moved) == SOME_KEYS
    assert (await engine.operation(operation["id"]))["status"] == "failed"


async def test_of_two_plan_changes_asked_at_once_one_runs_and_the_other_is_refused_as_busy(world, engine):
    addon = await a_running_addon(world, engine)

    outcomes = await asyncio.gather(engine.change_plan(APP, addon.name, NEW_PLAN),
                                    engine.change_plan(APP, addon.name, "redis-starter-1024"),
                                    return_exceptions=True)

    [started] = [o for o in outcomes if isinstance(o, dict)]
    [refused] = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(refused, AddonBusy), refused
    assert (await finished(engine, started))["status"] == "succeeded"
    assert len(world.runtime.containers()) == 1


async def test_a_dataset_too_large_for_the_new_plan_is_refused_before_anything_is_touched(world, engine):
    addon = await a_running_addon(world, engine, plan="redis-starter-1024", keys={"0": 3_000_000})
    effects = list(world.runtime.effects)

    with pytest.raises(DatasetTooLarge):
        await engine.change_plan(APP, addon.name, "redis-starter-256")

    assert world.runtime.effects == effects
    assert (await world.addon(addon.name)).operation_id is None


# -- when the old node cannot be brought back ----------------------------------------------------------


async def a_plan_change_stuck_in_compensation(world, where: dict):
    """Given: a plan change whose new node cannot start, and whose compensation fails `where` (a call and its
    arguments) for good; the engine would try it again only in a minute."""
    engine = await started_engine(world, attention_retry_s=60)
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("start_node", host="host-b")
    world.runtime.fail_for_good(**where)
    started = await engine.change_plan(APP, addon.name, NEW_PLAN)
    await until(lambda: any("Addon.NeedsAttention" in s for s in world.events.saves))
    await caught_up(engine)
    return engine, addon, started


async def test_a_plan_change_that_cannot_bring_back_the_old_node_needs_attention_until_it_can(world):
    engine, addon, started = await a_plan_change_stuck_in_compensation(world, dict(call="start_node", host="host-a"))

    shown = await engine.addon(APP, addon.name)
    assert shown["status"] == "needs-attention"
    assert "start_node failed for good" in shown["failure"]
    assert (await engine.operation(started["operation_id"]))["status"] == "needs-attention"
    with pytest.raises(AddonNeedsAttention):
        await engine.change_plan(APP, addon.name, "redis-starter-1024")

    world.runtime.heal()
    await engine.retry_operation(started["operation_id"])
    operation = await finished(engine, started)

    assert operation["status"] == "failed"
    back = await world.addon(addon.name)
    assert (back.status, back.host, back.plan) == ("running", "host-a", addon.plan)
    assert (await world.addon_events(addon.name))[-3:] == ["NeedsAttention", "PlanChangeFailed", "AttentionCleared"]
    assert (await engine.addon(APP, addon.name))["status"] == "running"
    assert world.runtime.containers() == [("host-a", addon.container)]
    assert world.key_counts(back) == SOME_KEYS


async def test_removing_an_addon_that_needs_attention_gives_up_its_operation_and_leaves_nothing_behind(world):
    engine, addon, started = await a_plan_change_stuck_in_compensation(world, dict(call="remove_node", host="host-b"))
    assert len(world.runtime.containers()) == 2  # the old node, and the new one compensation could not remove
    world.runtime.heal()

    removal = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert removal["status"] == "succeeded"
    assert (await engine.operation(started["operation_id"]))["status"] == "abandoned"
    assert (await world.addon(addon.name)).status == "removed"
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.secrets.peek(addon.name) is None
    assert engine.inventory.unfinished == {}


async def test_retrying_an_operation_that_does_not_need_attention_is_refused(world, engine):
    addon = await a_running_addon(world, engine)
    operation = await finished(engine, await engine.change_plan(APP, addon.name, NEW_PLAN))

    with pytest.raises(OperationNotStuck):
        await engine.retry_operation(operation["id"])


async def until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.005)
