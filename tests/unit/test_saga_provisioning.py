"""Provisioning and removal decisions (engine/provisioning.py) through a real Engine over the
in-memory ports, and an addon's whole life: provisioned, moved to a larger plan, removed."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.errors import AddonRemoved
from engine.nodes import endpoint
from tests.unit.engine_fakes import APP, SHORT_DEADLINE_S, SOME_KEYS, a_running_addon, finished, started_engine


def steps(operation: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in operation["steps"]}


# -- provisioning --------------------------------------------------------------------------------------


async def test_provisioning_runs_a_node_on_the_roomiest_host_and_publishes_the_addon(world, engine):
    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))

    assert operation["status"] == "succeeded"
    assert steps(operation) == {"create": "succeeded", "start": "succeeded", "wait_ready": "succeeded",
                                "publish": "succeeded"}
    addon = await world.addon(operation["addon"])
    assert addon.status == "running" and addon.operation_id is None
    assert await world.addon_events(addon.name) == ["Requested", "Provisioned"]
    assert world.runtime.containers() == [("host-a", addon.container)]
    assert world.runtime.volumes() == [("host-a", addon.volume)]
    node = world.runtime.container("host-a", addon.container)
    assert node.running and node.labels["redis-addons.addon"] == addon.name
    assert node.labels["redis-addons.port"] == str(addon.port)
    await world.redis.ping(endpoint(addon.previous_node, world.secrets.peek(addon.name)))  # answers with its password
    environment = await engine.environment(APP)
    assert environment["REDIS_URL"] == f"redis://default:{world.secrets.peek(addon.name)}@127.0.1.1:{addon.port}"
    assert (await engine.addon(APP, addon.name))["status"] == "running"


async def test_addons_go_to_the_roomiest_host_each_on_ports_of_its_own(world, engine):
    first = await a_running_addon(world, engine, plan="redis-starter-1024")
    second = await a_running_addon(world, engine, plan="redis-starter-256")
    third = await a_running_addon(world, engine, plan="redis-starter-256")

    assert [(a.host, a.port, a.tls_port) for a in (first, second, third)] == [
        ("host-a", 30000, 30001), ("host-b", 30000, 30001), ("host-b", 30002, 30003)]
    assert world.key_counts(first) == world.key_counts(third) == SOME_KEYS


async def test_provisioning_retries_a_docker_engine_busy_for_now(world, engine):
    world.runtime.fail("create_node", times=2)

    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))

    assert operation["status"] == "succeeded"
    assert len(world.runtime.calls_to("create_node")) == 3
    assert [e for e in world.runtime.effects if e[0] == "created"] == [("created", "host-a", operation_container(world))]


async def test_a_node_docker_refuses_to_create_leaves_nothing_behind(world, engine):
    world.runtime.fail_for_good("create_node")

    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))

    assert operation["status"] == "failed"
    assert operation["error"] == "create: create_node failed for good (told to)"
    addon = await world.addon(operation["addon"])
    assert addon.status == "failed" and addon.failure == operation["error"]
    assert await world.addon_events(addon.name) == ["Requested", "ProvisioningFailed"]
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.secrets.peek(addon.name) is None
    assert (await engine.addon(APP, addon.name))["status"] == "failed"


async def test_a_node_that_never_answers_is_removed_and_its_last_log_lines_kept(world):
    engine = await started_engine(world, step_deadline_s=SHORT_DEADLINE_S)
    world.redis.fail("ping", times=None)

    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))

    assert operation["status"] == "failed"
    assert operation["error"].startswith(
        f"wait_ready: not done within its deadline of {SHORT_DEADLINE_S:g} s (last error: ping failed")
    assert steps(operation) == {"create": "undone", "start": "succeeded", "wait_ready": "failed",
                                "publish": "skipped"}
    recorded = await world.operation(UUID(operation["id"]))
    assert "Ready to accept connections" in recorded.compensation
    assert world.runtime.containers() == [] and world.runtime.volumes() == []


async def test_a_node_whose_port_a_foreign_server_holds_fails_and_says_why(world):
    engine = await started_engine(world, step_deadline_s=SHORT_DEADLINE_S)
    world.runtime.run_foreign_server("host-a", "someone-elses-redis", "127.0.1.1", 30000)

    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))

    assert operation["status"] == "failed"
    recorded = await world.operation(UUID(operation["id"]))
    assert "Address already in use" in recorded.compensation
    assert world.runtime.containers() == [("host-a", "someone-elses-redis")]  # the stranger's server is left alone
    assert world.runtime.server("host-a", "someone-elses-redis") is not None


# -- removal ---------------------------------------------------------------------------------------------


async def test_removal_removes_the_node_and_its_volume_and_forgets_the_password(world, engine):
    addon = await a_running_addon(world, engine)

    operation = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert operation["status"] == "succeeded"
    assert (await world.addon_events(addon.name))[-2:] == ["RemovalRequested", "Removed"]
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.secrets.peek(addon.name) is None
    assert await engine.environment(APP) == {}
    with pytest.raises(AddonRemoved):
        await engine.remove_addon(APP, addon.name)


async def test_removal_of_a_node_already_gone_succeeds(world, engine):
    addon = await a_running_addon(world, engine)
    del world.runtime.hosts["host-a"].containers[addon.container]  # removed by hand, behind the engine's back

    operation = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert operation["status"] == "succeeded"
    assert world.runtime.containers() == [] and world.runtime.volumes() == []


async def test_a_removal_docker_refuses_leaves_the_addon_failed_and_it_can_be_asked_again(world, engine):
    addon = await a_running_addon(world, engine)
    world.runtime.fail_for_good("stop_node")

    operation = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert operation["status"] == "failed"
    failed = await world.addon(addon.name)
    assert (failed.status, failed.failure) == ("failed", "stop: stop_node failed for good (told to)")
    assert world.runtime.containers() == [("host-a", addon.container)]

    world.runtime.heal()
    again = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert again["status"] == "succeeded"
    assert world.runtime.containers() == []


# -- a whole life ----------------------------------------------------------------------------------------


async def test_an_addon_provisioned_moved_to_a_larger_plan_then_removed_leaves_nothing_behind(world, engine):
    addon = await a_running_addon(world, engine)
    moved = await finished(engine, await engine.change_plan(APP, addon.name, "redis-starter-1024"))
    removed = await finished(engine, await engine.remove_addon(APP, addon.name))

    assert (moved["status"], removed["status"]) == ("succeeded", "succeeded")
    assert await world.addon_events(addon.name) == ["Requested", "Provisioned", "PlanChangeRequested", "PlanChanged",
                                                    "RemovalRequested", "Removed"]
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.runtime.broken_rules == []
    created = [e[2] for e in world.runtime.effects if e[0] == "created"]
    removed_nodes = [e[2] for e in world.runtime.effects if e[0] == "removed"]
    assert len(created) == 2 and sorted(created) == sorted(removed_nodes)
    assert [op["status"] for op in await engine.operations(addon.name)] == ["succeeded"] * 3
    assert engine.inventory.unfinished == {}


def operation_container(world) -> str:
    [(_, container)] = world.runtime.containers()
    return container
