"""Plan changes between a single node and a Business cluster, both ways, on the in-memory ports
(engine/kind_change*.py): the data moves by replication, the app is restarted onto the new URL while
the old primary still serves, and one switch moves the primary. At each step boundary the engine dies
and a new engine over the same world finishes the change; a step failing for good before the point of
no return leaves the addon as it was; what cannot be done is refused before anything starts.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.errors import AddonBusy, DatasetTooLarge, NoHostWithRoom, PlanNotAvailable
from domain.redis_config import TLS_FILES
from engine.clusters import cluster_of
from engine.ports import Endpoint
from tests.unit.engine_fakes import (APP, SOME_EXPIRING, SOME_KEYS, World, a_running_addon, caught_up, restarted,
                                     settled, shut_down, started_engine)
from tests.unit.on_three_hosts import giving_up_quickly, step_boundaries, engine, world  # noqa: F401 (fixtures)
from tests.unit.fakes import Crash
from tests.unit.test_saga_cluster_crashes import a_whole_cluster

STARTER, BUSINESS = "redis-starter-256", "redis-business-256"
UP, DOWN = "change_to_business", "change_to_starter"


def named(points):
    return [f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}" for e, b in points]


def watch_restarts(world, name: str) -> list[str]:
    """Which node answered at the app's new URL each time the app was restarted."""
    seen, restart = [], world.restarter.restart

    async def restarting(app, method, environment):
        address, _, port = environment["REDIS_URL"].rpartition("@")[2].partition(":")
        seen.append(await world.redis.answering(Endpoint(address, int(port), world.secrets.peek(name))))
        return await restart(app, method, environment)
    world.restarter.restart = restarting
    return seen


async def change_crashing(engine, addon: str, plan: str) -> None:
    try:
        operation_id = (await engine.change_plan(APP, addon, plan))["operation_id"]
    except Crash:
        return
    await engine.coordinator.wait(UUID(operation_id), timeout=10)


async def the_change(world, engine, addon: str, kind: str) -> dict:
    await caught_up(engine)
    [found] = [o for o in await engine.operations(addon) if o["kind"] == kind]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return found


async def a_business_addon(world, engine) -> str:
    started = await engine.add_addon(APP, BUSINESS)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    addon = await world.addon(started["addon"])
    cluster = await cluster_of(world.events, addon.name)
    primary = cluster.primary_node
    server = world.runtime.server(primary["host"], primary["container"])
    server.keys, server.expires = dict(SOME_KEYS), dict(SOME_EXPIRING)
    return addon.name


def certificate_also_at(world, node: dict) -> tuple[str, ...]:
    """The addresses beside its own that the certificate in `node`'s files was issued for."""
    files = world.runtime.container(node["host"], node["container"]).config
    certificate = next(text for path, text in files.items() if path.endswith(TLS_FILES["cert"]))
    serial = int(certificate.split("serial ")[1].split()[0])
    return world.certificates.calls_to("issue_server_certificate")[serial - 1]["also_at"]


async def on_business(world, name: str, old: dict, seen: list[str]) -> None:
    addon = await world.addon(name)
    cluster = await cluster_of(world.events, name)
    assert (addon.plan, addon.memory_mib, addon.status, addon.operation_id) == (BUSINESS, 256, "running", None)
    assert (addon.address, addon.port) == (cluster.entry["address"], cluster.entry["port"])
    assert cluster.node(old["id"])["state"] == "retired"
    await a_whole_cluster(world, cluster, addon)  # the old node gone; the Sentinels and HAProxy know the nodes of now
    primary = cluster.primary_node
    assert world.key_counts(type("A", (), {"host": primary["host"], "container": primary["container"]})) == SOME_KEYS
    assert len([e for e in world.redis.effects if e[0] == "failover"]) == 1  # one switch, even when redone
    environment = world.restarter.restarts[-1][2]
    assert f"@{addon.address}:{addon.port}" in environment["REDIS_URL"]
    assert seen and set(seen) == {f"{old['address']}:{old['port']}"}  # restarted while the old node served


async def on_starter(world, name: str, seen: list[str]) -> None:
    addon = await world.addon(name)
    cluster = await cluster_of(world.events, name)
    assert (addon.plan, addon.memory_mib, addon.status, addon.operation_id) == (STARTER, 256, "running", None)
    [node] = cluster.live_nodes
    assert (node["role"], node["state"], cluster.primary) == ("data", "running", node["id"])
    assert (addon.host, addon.address, addon.port, addon.container) == (node["host"], node["address"], node["port"],
                                                                         node["container"])
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.runtime.volumes() == [(node["host"], node["volume"])]
    assert world.key_counts(addon) == SOME_KEYS
    running = world.runtime.server(node["host"], node["container"])
    assert running.replicaof is None  # the running node is a primary, not a replica of a node removed
    conf = world.runtime.container(node["host"], node["container"]).config["redis.conf"]
    assert "replicaof" not in conf and "masterauth" not in conf  # a single node's file: it restarts as one
    environment = world.restarter.restarts[-1][2]
    assert f"@{addon.address}:{addon.port}" in environment["REDIS_URL"]
    assert seen and set(seen) == {f"{node['address']}:{node['port']}"}  # the entry routed to it already
    assert world.secrets.peek(f"{name}-sentinels") is None


# -- Starter -> Business --------------------------------------------------------------------------

@pytest.mark.parametrize("event, before", step_boundaries(UP), ids=named(step_boundaries(UP)))
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_move_onto_business(world, engine, event, before):
    addon = await a_running_addon(world, engine, STARTER)
    old = (await cluster_of(world.events, addon.name)).primary_node
    seen = watch_restarts(world, addon.name)
    world.events.crash_on(event, before=before)
    await change_crashing(engine, addon.name, BUSINESS)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    operation = await the_change(world, engine, addon.name, UP)
    assert operation["status"] == "succeeded", operation
    await on_business(world, addon.name, old, seen)


async def test_the_move_onto_business_says_what_each_step_did(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    old = (await cluster_of(world.events, addon.name)).primary_node
    seen = watch_restarts(world, addon.name)
    await change_crashing(engine, addon.name, BUSINESS)
    operation = await the_change(world, engine, addon.name, UP)
    await on_business(world, addon.name, old, seen)
    details = {s["name"]: s["detail"] for s in operation["steps"]}
    assert "restarted" in details["restart_app"] and "is the primary" in details["switch"]
    assert "the app was restarted onto the new URL" in details["finish"]
    assert "AddressPublished" in await world.addon_events(addon.name)
    entry = (await world.addon(addon.name)).address  # the entry passes TLS through to the old node for a while
    assert [c["address"] for c in world.certificates.calls_to("issue_server_certificate", also_at=(entry,))
            if c["address"] == old["address"]]


UNDOING = [(None, False)] + [(e, b) for e in ("Operation.StepFailed(wait_sentinels)", "Operation.Compensated")
                              for b in (True, False)]


@pytest.mark.parametrize("event, before", UNDOING, ids=["no crash"] + named(UNDOING[1:]))
async def test_a_failure_before_publishing_leaves_the_starter_addon_as_it_was(world, engine, event, before):
    addon = await a_running_addon(world, engine, STARTER)
    before_change = await cluster_of(world.events, addon.name)
    world.redis.fail_for_good("sentinel_view")
    if event:
        world.events.crash_on(event, before=before)
    await change_crashing(engine, addon.name, BUSINESS)
    if event:  # the engine died while undoing: a new one undoes the rest
        assert not world.events.crash_armed, f"no save held {event}"
        engine = await restarted(world, engine)
    await settled(engine)
    operation = await the_change(world, engine, addon.name, UP)
    assert operation["status"] == "failed"
    after, cluster = await world.addon(addon.name), await cluster_of(world.events, addon.name)
    assert (after.plan, after.status, after.operation_id, after.address, after.port) == \
        (STARTER, "running", None, addon.address, addon.port)
    assert after.failure.startswith("wait_sentinels: ")
    assert [n["id"] for n in cluster.live_nodes] == [before_change.primary]
    assert world.runtime.containers() == [(addon.host, addon.container)]
    assert world.key_counts(after) == SOME_KEYS
    assert world.restarter.restarts == []
    assert world.secrets.peek(f"{addon.name}-sentinels") is None


async def test_a_failure_once_the_entry_routes_to_the_starter_node_gives_it_back_its_own_certificate(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    old = (await cluster_of(world.events, addon.name)).primary_node
    world.redis.fail_for_good("answering")  # wait_entry never sees the entry answer
    await change_crashing(engine, addon.name, BUSINESS)
    await settled(engine)
    operation = await the_change(world, engine, addon.name, UP)
    assert operation["status"] == "failed" and operation["steps"][5]["name"] == "wait_entry", operation
    assert [n["id"] for n in (await cluster_of(world.events, addon.name)).live_nodes] == [old["id"]]
    assert world.runtime.containers() == [(addon.host, addon.container)]
    assert certificate_also_at(world, old) == ()  # the entry, released, names it no longer
    assert world.runtime.server(old["host"], old["container"]).certificate_reloads >= 2


async def test_a_failure_past_publishing_finishes_the_move(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    old = (await cluster_of(world.events, addon.name)).primary_node
    seen = watch_restarts(world, addon.name)
    world.redis.fail_for_good("sentinel_reset")  # retire_old fails, then the Sentinels answer again
    world.events.when_saved("Operation.StepFailed(retire_old)", lambda: world.redis.heal("sentinel_reset"))
    await change_crashing(engine, addon.name, BUSINESS)
    await settled(engine)
    operation = await the_change(world, engine, addon.name, UP)
    assert operation["status"] == "failed" and "finished forward" in operation["compensation"], operation
    await on_business(world, addon.name, old, seen)


# -- Business -> Starter --------------------------------------------------------------------------

@pytest.mark.parametrize("event, before", step_boundaries(DOWN), ids=named(step_boundaries(DOWN)))
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_move_onto_a_single_node(world, engine, event,
                                                                                            before):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    world.events.crash_on(event, before=before)
    await change_crashing(engine, name, STARTER)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "succeeded", operation
    await on_starter(world, name, seen)


async def test_the_move_onto_a_single_node_says_what_each_step_did(world, engine):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    held = (await cluster_of(world.events, name)).entry
    entry = held["address"]
    await change_crashing(engine, name, STARTER)
    operation = await the_change(world, engine, name, DOWN)
    await on_starter(world, name, seen)
    assert (await cluster_of(world.events, name)).entry is None  # its ports free again
    assert not [t for t in engine.inventory.tenants() if t.host == held["host"] and t.port == held["port"]]
    assert "the app was restarted onto the new URL" in operation["steps"][-1]["detail"]
    node = await world.addon(name)  # the entry passes TLS through to the new node until it goes
    assert world.certificates.calls_to("issue_server_certificate", address=node.address, also_at=(entry,))
    [running] = (await cluster_of(world.events, name)).live_nodes  # then it names the node alone
    assert certificate_also_at(world, running) == ()
    assert world.runtime.server(running["host"], running["container"]).certificate_reloads


async def test_a_failure_before_the_switch_leaves_the_business_addon_as_it_was(world):
    engine = await started_engine(world)
    name = await a_business_addon(world, engine)
    giving_up_quickly(engine)  # the switch fails at it
    before = await cluster_of(world.events, name)
    world.redis.fail_for_good("sentinel_failover")
    await change_crashing(engine, name, STARTER)
    await settled(engine, timeout=30)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "failed"
    addon, cluster = await world.addon(name), await cluster_of(world.events, name)
    assert (addon.plan, addon.status, addon.operation_id) == (BUSINESS, "running", None)
    assert addon.failure.startswith("switch: ")
    assert sorted(n["id"] for n in cluster.live_nodes) == sorted(n["id"] for n in before.live_nodes)
    await a_whole_cluster(world, cluster, addon, reset=False)
    replica = next(n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary)
    assert world.runtime.server(replica["host"], replica["container"]).config["replica-priority"] == "100"
    assert world.restarter.restarts == []


async def test_a_failure_past_the_switch_finishes_the_move_onto_a_single_node(world, engine):
    name = await a_business_addon(world, engine)
    seen = watch_restarts(world, name)
    world.restarter.fail_for_good("restart")  # the app's restart fails, then its hook answers again
    world.events.when_saved("Operation.StepFailed(restart_app)", lambda: world.restarter.heal("restart"))
    await change_crashing(engine, name, STARTER)
    await settled(engine)
    operation = await the_change(world, engine, name, DOWN)
    assert operation["status"] == "failed" and "finished forward" in operation["compensation"], operation
    await on_starter(world, name, seen)


# -- refused before anything starts -----------------------------------------------------------------

async def nothing_started(world, engine, name: str, plan: str) -> None:
    assert [o["kind"] for o in await engine.operations(name)] == [("provision" if plan == STARTER
                                                                   else "provision_cluster")]
    addon = await world.addon(name)
    assert (addon.plan, addon.status, addon.operation_id) == (plan, "running", None)


async def test_a_downgrade_whose_data_does_not_fit_is_refused(world, engine):
    name = await a_business_addon(world, engine)
    addon = await world.addon(name)
    primary = (await cluster_of(world.events, name)).primary_node
    world.runtime.server(primary["host"], primary["container"]).keys["0"] = 3_000_000
    with pytest.raises(DatasetTooLarge, match=f"addon {name} uses .* MiB of memory and plan {STARTER} has 256 MiB"):
        await engine.change_plan(APP, name, STARTER)
    await nothing_started(world, engine, addon.name, BUSINESS)


async def test_a_move_onto_business_the_hosts_cannot_spread_is_refused_and_nothing_is_left():
    world = World()  # two hosts: three Sentinels cannot spread
    engine = await started_engine(world)
    try:
        addon = await a_running_addon(world, engine, STARTER)
        with pytest.raises(NoHostWithRoom, match="the sentinel nodes go to different hosts"):
            await engine.change_plan(APP, addon.name, BUSINESS)
        await nothing_started(world, engine, addon.name, STARTER)
        assert len((await cluster_of(world.events, addon.name)).nodes) == 1
        assert world.runtime.containers() == [(addon.host, addon.container)]
    finally:
        await shut_down(world)


async def test_a_move_onto_a_single_node_no_host_has_room_for_is_refused_and_nothing_is_left(world, engine):
    name = await a_business_addon(world, engine)
    before = await cluster_of(world.events, name)
    with pytest.raises(NoHostWithRoom, match="no host has room for 4096 MiB"):
        await engine.change_plan(APP, name, "redis-starter-4096")
    await nothing_started(world, engine, name, BUSINESS)
    assert (await cluster_of(world.events, name)).nodes == before.nodes


async def test_a_second_change_while_one_runs_is_refused(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    gate = world.runtime.gate("start_node")
    started = await engine.change_plan(APP, addon.name, BUSINESS)
    with pytest.raises(AddonBusy, match=f"busy with operation {started['operation_id']}"):
        await engine.change_plan(APP, addon.name, "redis-business-512")
    gate.set()
    await settled(engine)
    assert (await the_change(world, engine, addon.name, UP))["status"] == "succeeded"


async def test_an_addon_forcing_tls_is_refused_until_it_stops(world, engine):
    addon = await a_running_addon(world, engine, STARTER)
    forced = await engine.database.change(APP, addon.name, "force-tls", True)
    assert (await engine.wait_for_operation(forced["operation_id"], timeout=10))["status"] == "succeeded"
    with pytest.raises(PlanNotAvailable, match="bind TLS only for the whole change: turn force TLS off first"):
        await engine.change_plan(APP, addon.name, BUSINESS)
