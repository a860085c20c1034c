"""A host's Docker engine stopped in the middle of an operation (issue 15, part 5): host-d's dockerd is
stopped with SIGTERM between two steps of a provisioning, a plan change, a backup and a restore (its
containers stop with it, as on a host's shutdown), then started again on the same data root. The
operation waits and retries while the engine is away and ends; once the engine is back nothing is left
half-made: one node per addon (no orphan container or volume), the inventory and read models agree,
and the addon answers or is cleanly failed."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as redis

from domain.errors import NoHostWithRoom
from engine import build
from tests.integration import data
from tests.integration.conftest import containers_of, volumes_of
from tests.integration.engine_down import (StopHostD, engine_d, fault_settings, host_a, host_d, on_host_d,
                                           remove_everything_of_app)

DOWN_S = 2.0  # how long host-d stays away when it comes back within the step's deadline


@pytest.fixture
async def cleanup(app_name):
    yield
    await remove_everything_of_app(app_name)


async def finished(engine, operation_id: str, timeout: float = 120) -> dict:
    operation = await engine.wait_for_operation(operation_id, timeout=timeout)
    assert operation["status"] not in ("running", "needs-attention"), json.dumps(operation, indent=1)
    return operation


async def needs_attention(engine, operation_id: str, timeout: float = 30) -> None:
    """Until the operation's compensation has missed its deadline (wait_for_operation waits for its end)."""
    async with asyncio.timeout(timeout):
        while (await engine.wait_for_operation(operation_id, timeout=0))["status"] != "needs-attention":
            await asyncio.sleep(0.2)


async def back_and_seen(engine) -> None:
    """host-d started again and the node watcher's round seeing it answer: the undo waiting for it runs now."""
    await engine.watcher.look()  # host-d silent
    await asyncio.to_thread(engine_d, "start")
    await engine.watcher.look()


async def answers(engine, app: str, known: dict | None = None) -> None:
    url = (await engine.environment(app))["REDIS_URL"]
    if known is not None:
        assert await data.read(url, known) == known
    client = redis.from_url(url)
    try:
        assert await client.set("after-the-engine-came-back", "1")
    finally:
        await client.aclose()


async def one_node_on_host_d(engine, app: str, addon: str) -> None:
    """The inventory, the read model and host-d agree: one running container, its data and config volumes."""
    containers, volumes = await on_host_d(app)
    [node] = [n for n in await engine.nodes(app, addon) if n["state"] != "retired"]
    assert [c["Name"].lstrip("/") for c in containers] == [node["container"]], (containers, node)
    assert containers[0]["State"]["Running"]
    assert volumes == sorted([f"{node['container']}-data", f"{node['container']}-data-config"]), volumes
    assert node["host"] == "host-d"


async def test_a_provisioning_waits_for_its_host_engine_and_ends_with_one_node(home, app_name, cleanup):
    async with build(fault_settings(home, host_d())) as engine:
        fault = StopHostD("provision", "create", down_s=DOWN_S)
        engine.coordinator.observe_steps(fault)
        requested = await engine.add_addon(app_name, "redis-starter-256")
        operation = await finished(engine, requested["operation_id"])
        assert fault.stopped.is_set()
        assert operation["status"] == "succeeded", json.dumps(operation, indent=1)
        [row] = await engine.addons(app_name)
        assert row["status"] == "running"
        await one_node_on_host_d(engine, app_name, requested["addon"])
        await answers(engine, app_name)


async def test_a_provisioning_whose_engine_stays_away_fails_and_leaves_nothing_once_it_is_back(home, app_name, cleanup):
    """Past the step's deadline the provisioning fails; undoing it needs the engine too, so the addon
    needs attention until the engine is back, then the undo removes the container and its volumes."""
    async with build(fault_settings(home, host_d(), step_deadline_s=2)) as engine:
        fault = StopHostD("provision", "create", down_s=None)
        engine.coordinator.observe_steps(fault)
        requested = await engine.add_addon(app_name, "redis-starter-256")
        await needs_attention(engine, requested["operation_id"])
        await back_and_seen(engine)
        operation = await finished(engine, requested["operation_id"], timeout=60)
        assert operation["status"] == "failed", json.dumps(operation, indent=1)
        [row] = await engine.addons(app_name)
        assert row["status"] == "failed", row
        assert {n["state"] for n in await engine.nodes(app_name, requested["addon"])} == {"retired"}
        assert await engine.environment(app_name) == {}
    assert await on_host_d(app_name) == ([], [])


async def test_a_plan_change_whose_new_host_engine_stops_under_its_new_node_ends_on_the_new_plan(home, app_name, cleanup):
    """The node moves from host-a to host-d; host-d stops just after the new node started there (dockerd
    stops it too) and is back 2 s later: the node restarts with the engine (restart policy), the saga
    waits for it, verifies the keys and publishes; the old node on host-a is removed."""
    async with build(fault_settings(home, host_a(), host_d())) as engine:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        assert (await finished(engine, requested["operation_id"]))["status"] == "succeeded"
        known = data.expected(500)
        await data.write((await engine.environment(app_name))["REDIS_URL"], known)
        fault = StopHostD("change_plan", "start_new", down_s=DOWN_S)
        engine.coordinator.observe_steps(fault)
        change = await engine.change_plan(app_name, requested["addon"], "redis-starter-512")
        operation = await finished(engine, change["operation_id"])
        assert fault.stopped.is_set()
        assert operation["status"] == "succeeded", json.dumps(operation, indent=1)
        [row] = await engine.addons(app_name)
        assert (row["status"], row["plan"]) == ("running", "redis-starter-512"), row
        await one_node_on_host_d(engine, app_name, requested["addon"])
        assert await containers_of(requested["addon"]) == [] and await volumes_of(requested["addon"]) == []
        await answers(engine, app_name, known)


async def test_a_backup_and_a_restore_wait_for_their_host_engine(home, app_name, cleanup):
    """host-d stops after the backup's save (the archive is then read from the node's volume once the
    engine is back), and again after the restore has loaded the backup into its new node."""
    async with build(fault_settings(home, host_d())) as engine:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        assert (await finished(engine, requested["operation_id"]))["status"] == "succeeded"
        addon, url = requested["addon"], (await engine.environment(app_name))["REDIS_URL"]
        known = data.expected(500)
        await data.write(url, known)

        engine.coordinator.observe_steps(fault := StopHostD("backup", "save", down_s=DOWN_S))
        backup = await engine.backups.create(app_name, addon)
        assert (await finished(engine, backup["operation_id"]))["status"] == "succeeded"
        assert fault.stopped.is_set()
        [row] = await engine.backups.list(app_name, addon)
        assert row["status"] == "done", row
        client = redis.from_url(url)
        assert await client.config_get("save") == {"save": "900 1 300 10 60 10000"}  # the save rules are back
        await client.flushall()
        await client.aclose()

        engine.coordinator.observe_steps(fault := StopHostD("restore", "load", down_s=DOWN_S))
        restore = await engine.backups.restore(app_name, addon, backup["backup_id"])
        operation = await finished(engine, restore["operation_id"])
        assert fault.stopped.is_set()
        assert operation["status"] == "succeeded", json.dumps(operation, indent=1)
        await one_node_on_host_d(engine, app_name, addon)
        await answers(engine, app_name, known)


async def test_a_plan_change_whose_new_host_engine_stays_away_serves_from_the_old_node_at_once(home, app_name, cleanup):
    """host-d stops once the node on host-a is stopped for the move. The move waits for host-d's engine no
    longer than the step deadline (3 s here), not its 15 minutes for copying data; the old node serves again
    at once, though the new one on host-d cannot be removed yet (the addon needs attention); once host-d
    is back the plan change ends failed and nothing of it is left there."""
    async with build(fault_settings(home, host_a(), host_d(), step_deadline_s=3)) as engine:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        assert (await finished(engine, requested["operation_id"]))["status"] == "succeeded"
        known = data.expected(200)
        await data.write((await engine.environment(app_name))["REDIS_URL"], known)
        engine.coordinator.observe_steps(StopHostD("change_plan", "stop", down_s=None))
        change = await engine.change_plan(app_name, requested["addon"], "redis-starter-512")
        await needs_attention(engine, change["operation_id"])
        assert await data.read((await engine.environment(app_name))["REDIS_URL"], known) == known  # host-d away

        await back_and_seen(engine)
        operation = await finished(engine, change["operation_id"], timeout=60)
        assert operation["status"] == "failed", json.dumps(operation, indent=1)
        [row] = await engine.addons(app_name)
        assert (row["status"], row["plan"]) == ("running", "redis-starter-256"), row
        [node] = [n for n in await engine.nodes(app_name, requested["addon"]) if n["state"] != "retired"]
        assert node["host"] == "host-a"
        assert await on_host_d(app_name) == ([], [])
        await answers(engine, app_name, known)


async def test_the_node_watcher_goes_on_while_a_host_engine_is_away(home, app_name, cleanup):
    """A round of the watcher once failed whole while any host's engine was down (no node on any other host
    was looked after); now a node on a host silent two rounds in a row is down, and recovered once its
    engine is back."""
    async with build(fault_settings(home, host_d())) as engine:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        assert (await finished(engine, requested["operation_id"]))["status"] == "succeeded"
        await asyncio.to_thread(engine_d, "stop")
        assert await engine.watcher.look() == []  # one silent round may be a slow `docker ps`: said at the second
        [seen] = await engine.watcher.look()
        assert seen["down"] == "its host host-d does not answer" and seen["recovered"] is None, seen
        await engine.follower.catch_up()
        [row] = await engine.addons(app_name)
        assert row["status"] == "down", row
        await asyncio.to_thread(engine_d, "start")
        [seen] = await engine.watcher.look()
        assert seen["recovered"], seen
        await engine.follower.catch_up()
        [row] = await engine.addons(app_name)
        assert row["status"] == "running", row
        await answers(engine, app_name)


async def test_a_new_addon_goes_to_a_host_whose_engine_answers(home, app_name, cleanup):
    """host-d is listed first (a tie in room goes to it) but its engine is stopped: the addon goes to
    host-a (it went to host-d, waited for its engine and failed); a plan change needing another host than
    host-a is refused at once, the database left running."""
    await asyncio.to_thread(engine_d, "stop")
    async with build(fault_settings(home, host_d(), host_a())) as engine:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        assert (await finished(engine, requested["operation_id"]))["status"] == "succeeded"
        [node] = await engine.nodes(app_name, requested["addon"])
        assert node["host"] == "host-a", node
        with pytest.raises(NoHostWithRoom, match="no host other than host-a has a Docker engine that answers"):
            await engine.change_plan(app_name, requested["addon"], "redis-starter-512")
        await answers(engine, app_name)
