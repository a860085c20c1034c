"""Security updates reaching running nodes, on the in-memory ports (engine/maintenance.py): a rebuilt image
of the same version takes its tag, and the addon whose node was made from the old one shows an outdated
build (database-version, the listing); its maintenance is the upgrade's saga to the version it runs, under
a kind of its own, moving it onto the current build with its data; refused, recording nothing, when the
build is current. The scheduler starts it only while the addon's weekly window is open, once per window,
never beside another operation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.addon_maintenance import BuildCurrent
from domain.errors import AddonRemoved, UnknownAddon
from domain.maintenance_window import InvalidMaintenanceWindow
from domain.operation import STEPS
from engine.clusters import cluster_of, serving_node
from tests.unit.engine_fakes import (APP, SOME_KEYS, THREE_HOSTS, World, a_running_addon, caught_up, finished, settled,
                                     shut_down, started_engine)

IMAGE = "redis-addons/redis:7.0.15"
# Sunday 4 January 2026, 3:00 in Paris (winter time, UTC+1), and the days around it.
SATURDAY = datetime(2026, 1, 3, 2, 10, tzinfo=timezone.utc)
IN_THE_WINDOW = datetime(2026, 1, 4, 2, 10, tzinfo=timezone.utc)
LATER_IN_THE_WINDOW = datetime(2026, 1, 4, 2, 50, tzinfo=timezone.utc)
AFTER_THE_WINDOW = datetime(2026, 1, 4, 3, 10, tzinfo=timezone.utc)
NEXT_WEEK = datetime(2026, 1, 11, 2, 10, tzinfo=timezone.utc)


async def an_outdated_addon(world, engine, plan: str = "redis-starter-256"):
    addon = await a_running_addon(world, engine, plan)
    world.runtime.rebuild_image(IMAGE)  # a Debian security update: the tag names a new image
    return addon


async def on_the_current_build(world, name: str, before) -> None:
    addon = await world.addon(name)
    assert (addon.redis_version, addon.status, addon.operation_id) == ("7.0.15", "running", None)
    node = serving_node(await cluster_of(world.events, name))
    assert (node["host"], node["port"], addon.tls_port) == (before.host, before.port, before.tls_port)  # same place
    assert world.runtime.container(node["host"], node["container"]).image_id == f"{IMAGE}@build-2"
    assert world.runtime.containers() == [(node["host"], node["container"])]  # the old one removed
    assert world.key_counts(addon) == SOME_KEYS


async def test_an_addon_on_a_rebuilt_image_shows_an_outdated_build_and_its_maintenance_moves_it(world, engine):
    before = await an_outdated_addon(world, engine)
    shown = await engine.database_version.show(APP, "redis")
    assert [n["build"] for n in shown["nodes"]] == ["outdated"] and shown["build_outdated"] is True
    assert shown["maintenance"] == "a security update of 7.0.15 is available: run database-maintenance"
    [listed] = await engine.maintenance.outdated()
    assert (listed["app"], listed["addon"], listed["version"], listed["window"]) == (APP, before.name, "7.0.15", None)
    assert [(n["id"], n["build"]) for n in listed["nodes"]] == [(before.container, "outdated")]

    requested = await engine.maintenance.start(APP, "redis")
    operation = await finished(engine, requested)

    assert operation["status"] == "succeeded", operation
    assert (operation["kind"], [s["name"] for s in operation["steps"]]) == ("maintenance", STEPS["upgrade"])
    await on_the_current_build(world, before.name, before)
    assert [app for app, _, _ in world.restarter.restarts] == [APP]  # the app restarted, at the end
    await caught_up(engine)
    assert await engine.maintenance.outdated() == [] and await engine.maintenance.outdated(APP) == []
    shown = await engine.database_version.show(APP, "redis")
    assert [n["build"] for n in shown["nodes"]] == ["current"] and shown["maintenance"] is None


async def test_maintenance_of_a_current_build_is_refused_and_nothing_is_recorded(world, engine):
    addon = await a_running_addon(world, engine)
    before = await world.events.max_position()
    with pytest.raises(BuildCurrent) as refused:
        await engine.maintenance.start(APP, addon.name)
    assert refused.value.status == 409 and refused.value.rule == "maintenance-needs-an-outdated-build"
    assert str(refused.value) == (f"addon {addon.name} runs the current build of 7.0.15: there is no security "
                                  "update to take")
    assert await world.events.max_position() == before and len(world.runtime.containers()) == 1


async def test_a_build_docker_cannot_tell_is_not_taken_for_outdated(world, engine):
    addon = await an_outdated_addon(world, engine)
    world.runtime.hosts[addon.host].images_missing.add(IMAGE)  # the image is gone from the node's host
    shown = await engine.database_version.show(APP, addon.name)
    assert [n["build"] for n in shown["nodes"]] == ["unknown"] and shown["build_outdated"] is False
    assert await engine.maintenance.outdated() == []
    with pytest.raises(BuildCurrent, match=f"not known for {addon.container}: no image {IMAGE} on {addon.host}"):
        await engine.maintenance.start(APP, addon.name)


async def test_a_failure_before_publish_leaves_the_addon_on_its_old_build_with_its_data(world, engine):
    addon = await an_outdated_addon(world, engine)
    world.redis.fail_for_good("keyspace")  # the new build's data is never verified
    operation = await finished(engine, await engine.maintenance.start(APP, addon.name))
    assert operation["status"] == "failed" and operation["error"].startswith("verify: "), operation
    back = await world.addon(addon.name)
    assert (back.status, back.container) == ("running", addon.container)
    assert world.runtime.container(addon.host, addon.container).image_id == f"{IMAGE}@build-1"
    assert world.key_counts(back) == SOME_KEYS
    await caught_up(engine)
    assert [r["addon"] for r in await engine.maintenance.outdated()] == [addon.name]  # still to do


async def test_the_window_is_set_shown_and_removed_and_bad_input_changes_nothing(world, engine):
    addon = await a_running_addon(world, engine)
    assert await engine.maintenance.window(APP, "redis") is None
    window = await engine.maintenance.set_window(APP, "redis", "sun 3:00", "Europe/Paris")
    assert {k: window[k] for k in ("day", "hour", "minute", "zone")} == {"day": "sunday", "hour": 3, "minute": 0,
                                                                         "zone": "Europe/Paris"}
    assert window["description"] == "sundays at 3:00 Europe/Paris, for an hour"
    assert await engine.maintenance.window(APP, addon.name) == window
    before = await world.events.max_position()
    with pytest.raises(InvalidMaintenanceWindow):
        await engine.maintenance.set_window(APP, "redis", "someday 3", "UTC")
    await engine.maintenance.set_window(APP, "redis", "sunday 3", "Europe/Paris")  # the same: nothing recorded
    assert await world.events.max_position() == before
    assert await engine.maintenance.set_window(APP, "redis", None, "UTC") is None
    assert await engine.maintenance.window(APP, "redis") is None
    assert (await world.addon_events(addon.name))[-2:] == ["MaintenanceWindowSet", "MaintenanceWindowRemoved"]
    with pytest.raises(UnknownAddon):
        await engine.maintenance.window(APP, "my-app-0000")


async def test_a_removed_addon_has_no_window_to_set(world, engine):
    addon = await a_running_addon(world, engine)
    await finished(engine, await engine.remove_addon(APP, addon.name))
    with pytest.raises(AddonRemoved):
        await engine.maintenance.set_window(APP, addon.name, "sun 3 UTC", "UTC")


async def maintenance_operations(engine, name: str) -> list[dict]:
    await caught_up(engine)
    return [o for o in await engine.operations(name) if o["kind"] == "maintenance"]


async def test_the_scheduler_moves_an_outdated_addon_when_its_window_comes_and_only_then(world, engine):
    addon = await an_outdated_addon(world, engine)
    await engine.maintenance.set_window(APP, addon.name, "sunday 3", "Europe/Paris")

    assert (await engine.scheduler.tick(SATURDAY))["maintenance"] == []  # the day before, same hour
    assert (await engine.scheduler.tick(AFTER_THE_WINDOW))["maintenance"] == []  # an hour too late
    assert await maintenance_operations(engine, addon.name) == []

    assert (await engine.scheduler.tick(IN_THE_WINDOW))["maintenance"] == [addon.name]
    await settled(engine)
    await on_the_current_build(world, addon.name, addon)
    assert (await engine.scheduler.tick(LATER_IN_THE_WINDOW))["maintenance"] == []  # current now
    assert [o["status"] for o in await maintenance_operations(engine, addon.name)] == ["succeeded"]


async def test_a_current_build_is_left_alone_in_its_window(world, engine):
    addon = await a_running_addon(world, engine)
    await engine.maintenance.set_window(APP, addon.name, "sunday 3", "Europe/Paris")
    assert (await engine.scheduler.tick(IN_THE_WINDOW))["maintenance"] == []
    assert await maintenance_operations(engine, addon.name) == []


async def test_a_failed_maintenance_is_tried_again_at_the_next_window_not_at_the_next_tick(world, engine):
    addon = await an_outdated_addon(world, engine)
    await engine.maintenance.set_window(APP, addon.name, "sunday 3", "Europe/Paris")
    world.redis.fail_for_good("keyspace")  # the new build's data is never verified
    assert (await engine.scheduler.tick(IN_THE_WINDOW))["maintenance"] == [addon.name]
    await settled(engine)
    assert [o["status"] for o in await maintenance_operations(engine, addon.name)] == ["failed"]

    assert (await engine.scheduler.tick(LATER_IN_THE_WINDOW))["maintenance"] == []
    world.redis.heal("keyspace")
    assert (await engine.scheduler.tick(NEXT_WEEK))["maintenance"] == [addon.name]
    await settled(engine)
    await on_the_current_build(world, addon.name, addon)


async def test_an_addon_busy_in_its_window_is_moved_at_a_later_tick_of_the_same_window(world, engine):
    addon = await an_outdated_addon(world, engine)
    await engine.maintenance.set_window(APP, addon.name, "sunday 3", "Europe/Paris")
    held = world.runtime.gate("create_node")  # the settings change holds the addon until the test opens it
    change = await engine.database.change(APP, addon.name, "aof", True)
    assert (await engine.scheduler.tick(IN_THE_WINDOW))["maintenance"] == []
    held.set()
    assert (await finished(engine, change))["status"] == "succeeded"
    assert (await engine.scheduler.tick(LATER_IN_THE_WINDOW))["maintenance"] == [addon.name]
    await settled(engine)
    await on_the_current_build(world, addon.name, addon)


async def test_a_business_addons_data_nodes_are_moved_one_at_a_time_with_one_switch():
    world = World(hosts=THREE_HOSTS)
    try:
        engine = await started_engine(world)
        started = await engine.add_addon(APP, "redis-business-256")
        assert (await finished(engine, started))["status"] == "succeeded"
        name, before = started["addon"], await cluster_of(world.events, started["addon"])
        old = sorted(n["id"] for n in before.live_nodes if n["role"] == "data")
        world.runtime.rebuild_image(IMAGE)
        world.redis.effects.clear()
        assert [n["build"] for n in (await engine.database_version.show(APP, name))["nodes"]] == ["outdated"] * 2

        requested = await engine.maintenance.start(APP, name)
        assert sorted(requested["nodes"]) == old
        operation = await finished(engine, requested)

        assert operation["status"] == "succeeded", operation
        assert (operation["kind"], [s["name"] for s in operation["steps"]]) == ("maintenance_cluster",
                                                                                STEPS["upgrade_cluster"])
        cluster = await cluster_of(world.events, name)
        data = [n for n in cluster.live_nodes if n["role"] == "data"]
        assert len(data) == 2 and not {n["id"] for n in data} & set(old)
        assert {world.runtime.container(n["host"], n["container"]).image_id for n in data} == {f"{IMAGE}@build-2"}
        assert len([e for e in world.redis.effects if e[0] == "failover"]) == 1  # one coordinated switch
        assert [app for app, _, _ in world.restarter.restarts] == [APP]
        await caught_up(engine)
        assert await engine.maintenance.outdated() == []
        assert (await world.addon(name)).redis_version == "7.0.15"
    finally:
        await shut_down(world)
