"""Host management on the in-memory fakes: the hosts file seeds the log, a drain's rounds move every node
off the host through the sagas (a Starter node moved as a same-plan plan change, a Business cluster's data
nodes by a same-plan cluster plan change, its Sentinel and HAProxy replaced), data kept; the drained host
takes no new addon and is removed only once empty. Proven on real Docker in tests/integration/test_host_drain.py."""

from __future__ import annotations

import pytest

from domain.host import Host
from domain.host_errors import HostNotEmpty, HostNotUsable, UnknownHost
from engine.clusters import cluster_of
from tests.unit.engine_fakes import APP, THREE_HOSTS, World, a_running_addon, caught_up, settled, shut_down, started_engine

BUSINESS = "redis-business-256"


@pytest.fixture
async def world():
    world = World(hosts=THREE_HOSTS)
    yield world
    await shut_down(world)


@pytest.fixture
async def engine(world):
    return await started_engine(world)


async def drain_rounds(engine, rounds: int = 8) -> list[dict]:
    started = []
    for _ in range(rounds):
        await caught_up(engine)
        started += await engine.hosts.drainer.round()
        await settled(engine)
    await caught_up(engine)
    return started


async def test_the_hosts_file_seeds_the_log_once(world, engine):
    hosts = await engine.hosts.list()
    assert [(h["name"], h["state"], h["source"]) for h in hosts] == [(h.name, "active", "hosts file") for h in THREE_HOSTS]
    recorded = await world.events.get(Host.id_for(THREE_HOSTS[0].name))
    assert recorded.memory_mib == THREE_HOSTS[0].memory_mib
    await engine.hosts.load()  # a second start: nothing new
    assert (await world.events.get(Host.id_for(THREE_HOSTS[0].name))).version == recorded.version


async def test_draining_moves_every_node_elsewhere_with_its_data_and_the_host_takes_no_new_node(world, engine):
    starter = await a_running_addon(world, engine)
    keys = world.key_counts(starter)
    started = await engine.add_addon(APP, BUSINESS)
    assert (await engine.wait_for_operation(started["operation_id"], timeout=10))["status"] == "succeeded"
    cluster = await cluster_of(world.events, started["addon"])
    host = starter.host
    on_host = [n for n in cluster.live_nodes if n["host"] == host]
    assert on_host, "the Business cluster spreads a node of each group over every host"

    listed = await engine.hosts.drain(host)
    assert listed["state"] == "draining"
    moves = await drain_rounds(engine)

    assert {m["addon"] for m in moves} == {starter.name, started["addon"]}
    assert all(m["to"] != host for m in moves)
    [row] = await engine.hosts.list(host)
    assert row["state"] == "drained" and row["nodes"] == [] and row["used_memory_mib"] == 0
    assert [c for h, c in world.runtime.containers() if h == host] == []
    moved = await world.addon(starter.name)
    assert moved.host != host and moved.plan == starter.plan and world.key_counts(moved) == keys
    cluster = await cluster_of(world.events, started["addon"])
    assert sorted(n["role"] for n in cluster.live_nodes) == sorted(["data"] * 2 + ["sentinel"] * 3 + ["proxy"] * 2)
    assert all(n["host"] != host and n["state"] == "running" for n in cluster.live_nodes)

    another = await engine.add_addon(APP, "redis-starter-256")
    assert (await world.addon(another["addon"])).host != host
    await engine.hosts.remove(host)
    assert [h["name"] for h in await engine.hosts.list()] == [h.name for h in THREE_HOSTS if h.name != host]
    assert host not in world.runtime.hosts


async def test_a_host_holding_nodes_or_being_drained_is_not_removed(world, engine):
    starter = await a_running_addon(world, engine)
    with pytest.raises(HostNotEmpty, match="holds 1 node"):
        await engine.hosts.remove(starter.host)
    await engine.hosts.drain(starter.host)
    with pytest.raises(HostNotEmpty, match="being drained"):
        await engine.hosts.remove(starter.host)
    with pytest.raises(UnknownHost):
        await engine.hosts.remove("host-nowhere")


async def test_a_host_that_does_not_answer_is_not_added_and_nothing_is_recorded(world, engine):
    before = await world.events.max_position()
    with pytest.raises(HostNotUsable, match="cannot be used.*nothing was recorded"):
        await engine.hosts.add("host-new", "unix:///run/nowhere.sock", "127.0.9.1", 40000, 40099, 4096)
    assert await world.events.max_position() == before
    assert "host-new" not in world.runtime.hosts
    assert [h["name"] for h in await engine.hosts.list()] == [h.name for h in THREE_HOSTS]


async def test_a_host_lacking_images_is_refused_naming_them_and_how_to_build_them(world, engine):
    from tests.unit.fakes.docker import Host as Machine

    image = engine.hosts.images[0]
    world.runtime.hosts["host-new"] = Machine("host-new", images_missing={image})
    with pytest.raises(HostNotUsable, match=f"lacks 1 image.*{image}.*build-images.py"):
        await engine.hosts.add("host-new", "unix:///run/new.sock", "127.0.9.1", 40000, 40099, 4096)


async def test_a_host_added_takes_new_nodes_at_once(world, engine):
    from tests.unit.fakes.docker import Host as Machine

    world.runtime.hosts["host-new"] = Machine("host-new")
    added = await engine.hosts.add("host-new", "unix:///run/new.sock", "127.0.9.1", 40000, 40099, 65536)
    assert (added["state"], added["source"], added["memory_mib"]) == ("active", "operator", 65536)
    started = await a_running_addon(world, engine)  # the host with the most room
    assert started.host == "host-new"


async def test_a_move_the_read_models_still_show_is_not_started_twice(world, engine):
    """Seen on real hosts: a round right after a move ended, its read models behind, asked for the same node
    again; the log says it left the host, so nothing is started."""
    from domain.host_drain import MOVE_NODE, Move

    starter = await a_running_addon(world, engine)
    host = starter.host
    await engine.hosts.drain(host)
    await drain_rounds(engine, rounds=2)
    stale = Move(starter.name, MOVE_NODE, "data", starter.container)
    assert await engine.hosts.drainer.mover.start(stale, host) is None
    assert (await world.addon(starter.name)).host != host


async def test_an_engine_restarted_mid_drain_keeps_the_host_closed_and_finishes_the_drain(world, engine):
    from tests.unit.engine_fakes import restarted

    starter = await a_running_addon(world, engine)
    host = starter.host
    await engine.hosts.drain(host)
    engine = await restarted(world, engine)

    assert host in engine.placing.closed  # read back from the log: still no new node there
    assert (await world.addon((await engine.add_addon(APP, "redis-starter-256"))["addon"])).host != host
    await drain_rounds(engine, rounds=3)
    [row] = await engine.hosts.list(host)
    assert row["state"] == "drained" and (await world.addon(starter.name)).host != host


async def test_a_host_added_is_known_again_after_a_restart(world, engine):
    from tests.unit.engine_fakes import restarted
    from tests.unit.fakes.docker import Host as Machine

    world.runtime.hosts["host-new"] = Machine("host-new")
    await engine.hosts.add("host-new", "unix:///run/new.sock", "127.0.9.1", 40000, 40099, 65536)
    engine = await restarted(world, engine)
    assert [h["name"] for h in await engine.hosts.list()][-1] == "host-new"
    assert "host-new" in [h.name for h in engine.placing.hosts]


async def test_a_drain_recorded_by_another_engine_process_is_learnt_at_the_next_round(world, engine):
    starter = await a_running_addon(world, engine)
    host: Host = await world.events.get(Host.id_for(starter.host))
    host.start_drain("asked through another process")
    await world.events.save(host)  # as another process on the same store records it

    await drain_rounds(engine, rounds=3)
    assert starter.host in engine.placing.closed
    assert (await world.addon(starter.name)).host != starter.host
    assert (await engine.hosts.list(starter.host))[0]["state"] == "drained"


async def test_a_drain_recorded_by_another_engine_process_closes_the_host_to_this_ones_placements(world, engine):
    host: Host = await world.events.get(Host.id_for(THREE_HOSTS[0].name))
    host.start_drain("asked through another process")
    await world.events.save(host)

    for _ in range(3):  # the most room would be on the first host
        placed = await a_running_addon(world, engine)
        assert placed.host != host.name
