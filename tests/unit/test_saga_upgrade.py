"""A Starter addon's engine upgrade on the in-memory ports (reference, "Database Upgrade"): the node
stopped, a container of the new build at the same place on a copy of its data, verified, published,
the old one removed, the app restarted. Killed at any step boundary, a restarted engine finishes it;
a failure before publish brings the old version back with its data."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from domain.errors import AddonBusy, UpgradeNotAllowed
from domain.operation import STEPS
from engine.clusters import cluster_of, serving_node
from tests.unit.engine_fakes import APP, SOME_KEYS, a_running_addon, caught_up, finished, restarted, settled
from tests.unit.fakes import Crash
from tests.unit.on_three_hosts import step_boundaries

IMAGE = "redis-addons/valkey:8.1.8"


async def upgraded_to_valkey(world, engine, name: str, before) -> None:
    addon = await world.addon(name)
    assert (addon.redis_version, addon.status, addon.operation_id) == ("8.1.8", "running", None)
    assert addon.tls_port is None  # the Valkey build has no TLS: its port is given back
    node = serving_node(await cluster_of(world.events, name))
    assert (node["host"], node["port"], node["version"]) == (before.host, before.port, "8.1.8")  # the same place
    assert world.runtime.container(node["host"], node["container"]).image == IMAGE
    assert world.runtime.containers() == [(node["host"], node["container"])]  # the old one removed
    assert world.key_counts(addon) == SOME_KEYS


async def test_a_starter_addon_is_upgraded_at_the_same_place_with_its_data_and_the_app_restarted(world, engine):
    before = await a_running_addon(world, engine)
    requested = await engine.database_version.upgrade(APP, before.name)
    assert (requested["from"], requested["to"], requested["engine"], requested["kind"]) == ("7.0.15", "8.1.8",
                                                                                          "valkey", "major")
    operation = await finished(engine, requested)
    assert operation["status"] == "succeeded", operation
    assert [s["name"] for s in operation["steps"]] == STEPS["upgrade"]  # the app restarted last, as the reference says
    await upgraded_to_valkey(world, engine, before.name, before)
    await caught_up(engine)
    shown = await engine.database_version.show(APP, before.name)
    assert (shown["version"], [u["version"] for u in shown["upgrades"]]) == ("8.1.8", ["9.1.2"])


@pytest.mark.parametrize("event, before", step_boundaries("upgrade"),
                         ids=[f"crash {'before' if b else 'after'} saving {e.split('.', 1)[1]}"
                              for e, b in step_boundaries("upgrade")])
async def test_killed_at_a_step_boundary_a_restarted_engine_finishes_the_upgrade(world, engine, event, before):
    addon = await a_running_addon(world, engine)
    world.events.crash_on(event, before=before)
    try:
        await engine.coordinator.wait(UUID((await engine.database_version.upgrade(APP, addon.name))["operation_id"]),
                                      timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await upgraded_to_valkey(world, engine, addon.name, addon)


async def test_a_failure_before_publish_brings_the_old_version_back_with_its_data(world, engine):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    world.runtime.fail_for_good("copy_data")  # the data never reaches the new build

    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))

    assert operation["status"] == "failed" and operation["error"].startswith("start_new: "), operation
    back = await world.addon(addon.name)
    assert (back.redis_version, back.status, back.tls_port) == ("7.0.15", "running", addon.tls_port)
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.key_counts(back) == SOME_KEYS


async def test_what_the_path_does_not_allow_is_refused_and_nothing_is_recorded(world, engine):
    addon = await a_running_addon(world, engine)
    before = await world.events.max_position()
    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(APP, addon.name, "9.1.2")  # skipping Valkey 8
    assert refused.value.rule == "upgrade-step-by-step" and "the upgrade available: 8.1.8" in str(refused.value)
    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(APP, addon.name, "6.2.14")
    assert refused.value.rule == "no-downgrade"
    assert await world.events.max_position() == before and len(world.runtime.containers()) == 1


async def test_of_two_upgrades_asked_at_once_one_runs_and_the_other_is_refused_as_busy(world, engine):
    addon = await a_running_addon(world, engine)
    outcomes = await asyncio.gather(engine.database_version.upgrade(APP, addon.name),
                                    engine.database_version.upgrade(APP, addon.name), return_exceptions=True)
    [started] = [o for o in outcomes if isinstance(o, dict)]
    [refused] = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(refused, AddonBusy), refused
    assert (await finished(engine, started))["status"] == "succeeded"
    await upgraded_to_valkey(world, engine, addon.name, addon)
