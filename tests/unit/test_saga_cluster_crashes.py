"""The crash-point matrix of a Business cluster's sagas: provision_cluster, and replace_node as the
healer starts it (engine/cluster_healing.py) for a replica, a Sentinel and the HAProxy that holds the
entry address, each of whose containers is removed behind the engine's back. At each step boundary the
engine dies (the containers and the store left as they are) and a new engine over the same world
finishes the operation: the cluster's seven nodes run, recorded, spread over the three hosts, with
exactly their containers on the hosts (no duplicate, no orphan); each container made once; the right
Sentinels reset and the right HAProxy reloaded (again when the crash comes after their step's effect
and before its record), so that every Sentinel forgets the lost node and every HAProxy routes to the
cluster's nodes of now. A step failing for good undoes what the operation made, and releases the addon
(past rewire_proxies, the new node is kept). A replica whose whole host is lost is replaced too, and
left behind on that host; an engine restarted while the host is lost does not start (an engine bug:
those cases are expected to fail until it is fixed).

As in test_saga_crashes.py, "before saving StepSucceeded(x)" comes after x's effects and before their
record (x runs again on the restart); "after saving" is the step boundary itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import pytest

from domain.cluster_config import MASTER_NAME
from domain.operation import POINTS_OF_NO_RETURN, STEPS
from engine.cluster_provisioning import sentinel_secret
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import EffectError, Endpoint
from tests.unit.engine_fakes import APP, THREE_HOSTS, World, caught_up, restarted, settled, shut_down, started_engine
from tests.unit.fakes import Crash

PLAN = "redis-business-256"


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    lost: str | None = None  # the role of the node whose container is removed, for a replacement
    fails_at: str | None = None  # the step made to fail for good
    host_lost: bool = False  # the lost node's whole host is gone (silent past the grace period), not its container

    @property
    def undoes_create(self) -> bool:
        no_return = POINTS_OF_NO_RETURN.get(self.kind, [])
        steps = STEPS[self.kind]
        return self.fails_at is not None and not any(steps.index(s) < steps.index(self.fails_at) for s in no_return)


SCENARIOS = [
    Scenario("provision_cluster", "provision_cluster"),
    Scenario("provision_cluster undone", "provision_cluster", fails_at="wait_sentinels"),
    Scenario("replica replaced", "replace_node", lost="data"),
    Scenario("Sentinel replaced", "replace_node", lost="sentinel"),
    Scenario("entry HAProxy replaced", "replace_node", lost="proxy"),
    Scenario("replica on a lost host replaced", "replace_node", lost="data", host_lost=True),
    Scenario("replica replacement undone", "replace_node", lost="data", fails_at="start"),
    Scenario("replica replacement failing past rewiring", "replace_node", lost="data", fails_at="reset_sentinels"),
]
FAULTS = {  # what fails for good, set once the cluster (if any) is provisioned
    "provision_cluster undone": lambda world: world.redis.fail_for_good("sentinel_view"),
    "replica replacement undone": lambda world: world.runtime.fail_for_good("start_node"),
    "replica replacement failing past rewiring": lambda world: world.redis.fail_for_good("sentinel_reset"),
}


def crash_points(scenario: Scenario) -> list[tuple[str, bool]]:
    """(the event whose save the crash hits, whether before it is written) at each step boundary, and
    at each record of the compensation when a step fails."""
    points = [("Operation.Started", False)]
    for step in STEPS[scenario.kind]:
        if step == scenario.fails_at:
            events = [f"Operation.StepFailed({step})"]
            events += ["Operation.StepUndone(create)"] if scenario.undoes_create else []
            for event in events + ["Operation.Compensated"]:
                points += [(event, True), (event, False)]
            break
        points += [(f"Operation.StepSucceeded({step})", True), (f"Operation.StepSucceeded({step})", False)]
    return points


CASES = [pytest.param(scenario, event, before,
                      id=f"{scenario.name}: crash {'before' if before else 'after'} saving {event.split('.', 1)[1]}")
         for scenario in SCENARIOS for event, before in crash_points(scenario)]


GRACE_S = 0.0  # a host that does not answer is given up at the healer's first round


@pytest.fixture
async def world():
    """Three hosts: a Business plan spreads each group of its cluster over them."""
    world = World(hosts=THREE_HOSTS)
    yield world
    await shut_down(world)


@pytest.fixture
async def engine(world):
    return await started_engine(world, host_grace_s=GRACE_S)


@pytest.mark.parametrize("scenario, event, before", CASES)
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_cluster_operation(world, engine, scenario, event,
                                                                                    before):
    given = await GIVEN[scenario.kind](world, engine, scenario)

    world.events.crash_on(event, before=before)
    await command_crashing(engine, scenario)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine, host_grace_s=GRACE_S)
    await settled(engine)

    operation = await the_operation(world, engine, scenario, given)
    redone = event[event.find("(") + 1:-1] if before and event.startswith("Operation.StepSucceeded(") else None
    await THEN[scenario.name](world, engine, given, operation, redone)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_without_a_crash_the_operation_ends_as_it_should(world, engine, scenario):
    """The same expectations, met by an operation that runs through (the matrix's baseline)."""
    given = await GIVEN[scenario.kind](world, engine, scenario)
    await command_crashing(engine, scenario)
    await settled(engine)
    await THEN[scenario.name](world, engine, given, await the_operation(world, engine, scenario, given), None)


# -- given and when ------------------------------------------------------------------------------------------


async def nothing(world, engine, scenario: Scenario) -> dict:
    if scenario.name in FAULTS:
        FAULTS[scenario.name](world)
    return {}


async def a_cluster_with_a_node_lost(world, engine, scenario: Scenario) -> dict:
    """A Business addon provisioned; then one node's container (not the primary's) is removed behind the
    engine's back, or its host is lost. For an HAProxy: the one whose address and port are the entry's."""
    started = await engine.add_addon(APP, PLAN)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    addon = await world.addon(started["addon"])
    cluster = await cluster_of(world.events, addon.name)
    group = [n for n in cluster.live_nodes if n["role"] == scenario.lost and n["id"] != cluster.primary]
    lost = next(n for n in group if (n["address"], n["port"]) == (addon.address, addon.port)) \
        if scenario.lost == "proxy" else group[0]
    if scenario.host_lost:
        world.runtime.lose_host(lost["host"])
    else:
        del world.runtime.hosts[lost["host"]].containers[lost["container"]]
    world.runtime.effects.clear()
    world.redis.effects.clear()
    if scenario.name in FAULTS:
        FAULTS[scenario.name](world)
    await caught_up(engine)  # the healer looks at the addons the read models show
    return {"addon": addon.name, "lost": lost, "nodes_before": {n["id"] for n in cluster.live_nodes}}


GIVEN = {"provision_cluster": nothing, "replace_node": a_cluster_with_a_node_lost}


async def command_crashing(engine, scenario: Scenario) -> None:
    """Ask for the operation (a Business addon; one round of the healer); return once the engine has
    crashed or the operation has finished."""
    try:
        if scenario.kind == "provision_cluster":
            operation_id = (await engine.add_addon(APP, PLAN))["operation_id"]
        else:
            [operation_id] = [d["replacing"] for d in await engine.watcher.healer.look() if d.get("replacing")]
    except Crash:  # as the operation was recorded
        return
    await engine.coordinator.wait(UUID(operation_id), timeout=10)


async def the_operation(world, engine, scenario: Scenario, given: dict):
    """The scenario's one operation, finished as it should."""
    await caught_up(engine)
    rows = await asyncio.to_thread(engine.views.addons, APP)
    found = [o for row in rows for o in await engine.operations(row["name"]) if o["kind"] == scenario.kind]
    assert len(found) == 1, found  # one provisioning; one replacement, never a second for the same node
    assert found[0]["status"] == ("failed" if scenario.fails_at else "succeeded"), found[0]
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return await world.operation(UUID(found[0]["id"]))


# -- then ------------------------------------------------------------------------------------------------------


def address(node: dict) -> str:
    return f"{node['address']}:{node['port']}"


async def a_whole_cluster(world, cluster, addon, reset: bool = True) -> None:
    """Seven nodes recorded running, each group on different hosts; exactly their containers and volumes
    exist and run; the replica in sync; each Sentinel names the primary and sees the others and the
    replica up (and, `reset`, knows of no other node: none lost); each HAProxy routes with the nodes of
    now; the entry answers."""
    live = cluster.live_nodes
    assert Counter(n["role"] for n in live) == {"data": 2, "sentinel": 3, "proxy": 2}
    assert all(n["state"] == "running" for n in live), [(n["id"], n["state"]) for n in live]
    for role in ("data", "sentinel", "proxy"):
        hosts = [n["host"] for n in live if n["role"] == role]
        assert len(set(hosts)) == len(hosts), f"{role} nodes share a host: {hosts}"
    assert world.runtime.containers() == sorted((n["host"], n["container"]) for n in live)
    assert world.runtime.volumes() == sorted((n["host"], n["volume"]) for n in live)
    assert all(world.runtime.container(n["host"], n["container"]).running for n in live)

    password, sentinel_password = world.secrets.peek(addon.name), world.secrets.peek(sentinel_secret(addon.name))
    primary = cluster.primary_node
    [replica] = [n for n in live if n["role"] == "data" and n["id"] != primary["id"]]
    info = await world.redis.replication(endpoint(primary, password))
    assert (info["role"], info["connected_slaves"], info["slave0"]["state"]) == ("master", 1, "online")
    assert (info["slave0"]["ip"], info["slave0"]["port"]) == (replica["address"], replica["port"])
    sentinels = [n for n in live if n["role"] == "sentinel"]
    for sentinel in sentinels:
        view = await world.redis.sentinel_view(endpoint(sentinel, sentinel_password),
                                               MASTER_NAME)
        others = sorted(address(s) for s in sentinels if s is not sentinel)
        view.pop("replicas_electable")  # whether a new replica is electable yet is the failover follower's
        assert view.pop("failing_over") is False
        seen = {**view, "sentinels": 2, "replicas": 1} if not reset else view
        assert seen == {"primary": address(primary), "sentinels": 2, "replicas": 1, "sentinels_up": others,
                        "replicas_up": [address(replica)]}, f"Sentinel {sentinel['container']}: {view}"
    for proxy in [n for n in live if n["role"] == "proxy"]:
        loaded = world.runtime.server(proxy["host"], proxy["container"])
        assert (loaded.address, loaded.port) == (addon.address, addon.port)
        assert sorted(loaded.data_nodes) == sorted(address(n) for n in live if n["role"] == "data")
        assert sorted(loaded.sentinels) == sorted(address(s) for s in sentinels)
    await world.redis.ping(Endpoint(addon.address, addon.port, password))  # through HAProxy, to the primary


def created_once(world) -> Counter:
    created = Counter(e[2] for e in world.runtime.effects if e[0] == "created")
    assert set(created.values()) <= {1}, created  # no container was made twice
    return created


async def cluster_provisioned(world, engine, given, operation, redone) -> None:
    addon = await world.addon(operation.addon)
    cluster = await cluster_of(world.events, addon.name)
    assert (addon.status, addon.operation_id) == ("running", None)
    assert cluster.primary == next(n["id"] for n in cluster.live_nodes if n["role"] == "data")
    await a_whole_cluster(world, cluster, addon)
    assert set(created_once(world)) == {n["container"] for n in cluster.live_nodes}
    started = Counter(e[2] for e in world.runtime.effects if e[0] == "started")
    assert started == {n["container"]: 1 for n in cluster.live_nodes}
    url = (await engine.environment(APP))["REDIS_URL"]
    assert url == f"redis://default:{world.secrets.peek(addon.name)}@{addon.address}:{addon.port}"


async def cluster_provisioning_undone(world, engine, given, operation, redone) -> None:
    addon = await world.addon(operation.addon)
    cluster = await cluster_of(world.events, addon.name)
    assert addon.status == "failed" and addon.failure.startswith("wait_sentinels: ")
    assert cluster.live_nodes == [] and len(cluster.nodes) == 7
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.secrets.peek(addon.name) is None and world.secrets.peek(sentinel_secret(addon.name)) is None
    assert len(created_once(world)) == 7


async def node_replaced(world, engine, given, operation, redone, kept_after_failure: bool = False) -> None:
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    lost = cluster.node(given["lost"]["id"])
    [new] = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
    assert addon.operation_id is None and addon.status == "running"
    assert (new["role"], new["replaces"], new["state"]) == (lost["role"], lost["id"], "running")
    assert lost["state"] == "retired"
    assert {n["id"] for n in cluster.live_nodes} == given["nodes_before"] - {lost["id"]} | {new["id"]}
    await a_whole_cluster(world, cluster, addon, reset=not kept_after_failure)

    assert created_once(world) == {new["container"]: 1}
    assert [e for e in world.runtime.effects if e[0] == "started"] == [("started", new["host"], new["container"])]
    assert [e for e in world.runtime.effects if e[0] in ("removed", "volume removed")] == [
        ("volume removed", lost["host"], lost["volume"])]  # its container was gone already
    others = [n for n in cluster.live_nodes if n["id"] != new["id"]]
    reset = Counter(e[2] for e in world.redis.effects if e[0] == "sentinel reset")
    signalled = Counter((e[2], e[3]) for e in world.runtime.effects if e[0] == "signalled")
    if kept_after_failure:  # sentinel_reset failed for good at the first Sentinel: none was reset
        assert reset == {} and len({c["endpoint"] for c in world.redis.calls_to("sentinel_reset")}) == 1
    else:  # nothing knows an HAProxy: a new one is told to no one
        told_once(reset, {n["container"] for n in others if n["role"] == "sentinel" and lost["role"] != "proxy"},
                  "reset_sentinels", redone)
    reloaded = {(n["container"], "SIGUSR2") for n in others if n["role"] == "proxy" and lost["role"] != "proxy"}
    told_once(signalled, reloaded, "rewire_proxies", redone)


ANY_STEP = "any step"  # a crash between two calls to the ports: any step may have run twice, some of it


def told_once(counts: Counter, expected: set, step: str, redone: str | None) -> None:
    """Each of `expected` was told once; twice when the crash came after `step`'s effects, before its record."""
    assert set(counts) == expected, counts
    allowed = {1, 2} if redone == ANY_STEP else {2 if redone == step else 1}
    assert set(counts.values()) <= allowed, counts


async def replacement_kept_after_failure(world, engine, given, operation, redone) -> None:
    """Past rewire_proxies the new node is the cluster's (HAProxy knows it): kept, the lost one retired. As
    the saga stands, no Sentinel is reset then, and none is later: each still counts the lost node."""
    assert operation.error.startswith("reset_sentinels: ")
    world.redis.heal()  # to read the Sentinels
    await node_replaced(world, engine, given, operation, redone, kept_after_failure=True)


async def replacement_undone(world, engine, given, operation, redone) -> None:
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    lost = cluster.node(given["lost"]["id"])
    [new] = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
    assert addon.operation_id is None and operation.error.startswith("start: ")
    assert (new["state"], lost["state"]) == ("retired", "down")  # the watcher tries again later
    assert {n["id"] for n in cluster.live_nodes} == given["nodes_before"]
    assert world.runtime.containers() == sorted((n["host"], n["container"]) for n in cluster.live_nodes
                                                if n["id"] != lost["id"])
    assert world.runtime.volumes() == sorted((n["host"], n["volume"]) for n in cluster.live_nodes)
    assert created_once(world) == {new["container"]: 1}
    assert world.redis.effects == [] and [e for e in world.runtime.effects if e[0] == "signalled"] == []


async def replaced_beside_a_lost_host(world, engine, given, operation, redone) -> None:
    """The replica on the host that does not answer is replaced on the third host; the nodes beside it on
    that host are down (replaced in later rounds). It is left behind there, to remove when the host answers."""
    addon = await world.addon(given["addon"])
    cluster = await cluster_of(world.events, addon.name)
    lost = cluster.node(given["lost"]["id"])
    [new] = [n for n in cluster.nodes.values() if n.get("placed_by") == str(operation.id)]
    assert addon.operation_id is None
    assert (new["state"], lost["state"]) == ("running", "left") and new["host"] != lost["host"]
    assert cluster.left_behind == [lost]
    assert world.runtime.containers() == sorted((n["host"], n["container"]) for n in cluster.live_nodes + [lost])
    assert world.runtime.volumes() == sorted((n["host"], n["volume"]) for n in cluster.live_nodes + [lost])
    up = [n for n in cluster.live_nodes if n["host"] != lost["host"]]
    assert all(n["state"] == "running" and world.runtime.container(n["host"], n["container"]).running for n in up)
    assert all(n["state"] == "down" for n in cluster.live_nodes if n["host"] == lost["host"])

    password, sentinel_password = world.secrets.peek(addon.name), world.secrets.peek(sentinel_secret(addon.name))
    primary = cluster.primary_node
    info = await world.redis.replication(endpoint(primary, password))
    assert (info["connected_slaves"], info["slave0"]["ip"], info["slave0"]["port"]) == (1, new["address"], new["port"])
    sentinels = [n for n in up if n["role"] == "sentinel"]
    for sentinel in sentinels:  # reset: each forgot the lost replica, and the Sentinel of the lost host too
        view = await world.redis.sentinel_view(endpoint(sentinel, sentinel_password),
                                               MASTER_NAME)
        assert view == {"primary": address(primary), "sentinels": 1, "replicas": 1,
                        "sentinels_up": [address(s) for s in sentinels if s is not sentinel],
                        "replicas_up": [address(new)], "replicas_electable": [], "failing_over": False}, view
    for proxy in [n for n in up if n["role"] == "proxy"]:
        loaded = world.runtime.server(proxy["host"], proxy["container"])
        assert sorted(loaded.data_nodes) == sorted([address(primary), address(new)])
    await world.redis.ping(Endpoint(addon.address, addon.port, password))

    assert created_once(world) == {new["container"]: 1}
    assert [e for e in world.runtime.effects if e[0] in ("removed", "volume removed")] == []
    reset = Counter(e[2] for e in world.redis.effects if e[0] == "sentinel reset")
    told_once(reset, {n["container"] for n in sentinels}, "reset_sentinels", redone)
    signalled = Counter((e[2], e[3]) for e in world.runtime.effects if e[0] == "signalled")
    told_once(signalled, {(n["container"], "SIGUSR2") for n in up if n["role"] == "proxy"}, "rewire_proxies", redone)


THEN = {"provision_cluster": cluster_provisioned, "provision_cluster undone": cluster_provisioning_undone,
        "replica replaced": node_replaced, "Sentinel replaced": node_replaced, "entry HAProxy replaced": node_replaced,
        "replica on a lost host replaced": replaced_beside_a_lost_host,
        "replica replacement undone": replacement_undone,
        "replica replacement failing past rewiring": replacement_kept_after_failure}
