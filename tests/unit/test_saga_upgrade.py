"""A Starter addon's engine upgrade on the in-memory ports (reference, "Database Upgrade"): a backup of
kind pre-upgrade first, the node stopped, a container of the new build at the same place (with RDB only, on
the old node's own volume, which it leaves as it was until published; with AOF or on a Sandbox, on a copy of
its data), verified, published, the old one removed, the app restarted. Killed at any step boundary or any call
to a port, a restarted engine finishes it; a failure before publish brings the old version back with its
data; a failure of the backup changes nothing and leaves no half-made backup. A Sandbox addon takes no
backup: its old data is kept as a copy until the end."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from uuid import UUID

import pytest

from domain.backup import Backup
from domain.errors import AddonBusy, UpgradeNotAllowed
from domain.operation import STEPS
from domain.redis_config import RDB_SAVE_RULES
from engine.nodes import REFUSE_WRITES
from engine.clusters import cluster_of, serving_node
from tests.unit.engine_fakes import (APP, SOME_EXPIRING, SOME_KEYS, a_running_addon, caught_up, finished, restarted,
                                     settled)
from tests.unit.fakes import Crash
from tests.unit.fakes.docker import untar
from tests.unit.fakes.redis import DUMP, decode_dump
from tests.unit.on_three_hosts import crash_at_every_call, step_boundaries

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
    # RDB only: the new build runs on the old node's volume, kept when the old container went; it saves by the
    # addon's rules again, and takes writes, live and in its file.
    assert node["volume"] == before.volume and world.runtime.volumes() == [(node["host"], before.volume)]
    assert not [e for e in world.runtime.effects if e[0] == "copied"]
    assert world.runtime.server(node["host"], node["container"]).config["save"] == " ".join(RDB_SAVE_RULES)
    conf = world.runtime.container(node["host"], node["container"]).config["redis.conf"]
    assert REFUSE_WRITES not in conf and "save 900 1" in conf.replace('"', "") and "appendonly no" in conf
    assert world.runtime.broken_rules == []
    await backed_up_first(world, engine, name)


async def backed_up_first(world, engine, name: str) -> dict:
    """The addon's one backup: of kind pre-upgrade, of the old version, linked to the upgrade, its archive
    holding the data as it was; listed with its kind, kept by retention as a manual one."""
    await caught_up(engine)
    [row] = await engine.backups.list(APP, name)
    [upgrade] = [o for o in await engine.operations(name) if o["kind"] == "upgrade"]
    assert (row["kind"], row["status"], row["redis_version"], row["operation_id"]) == (
        "pre-upgrade", "done", "7.0.15", upgrade["id"]), row
    assert upgrade["steps"][0]["name"] == "safety_backup" and row["id"] in upgrade["steps"][0]["detail"]
    backup = await world.events.get(UUID(row["id"]))
    assert backup.id == Backup.pre_upgrade_id(upgrade["id"])
    assert list(world.backups.archives) == [backup.archive_key]  # one archive, however often the step ran
    assert decode_dump(untar(world.backups.archives[backup.archive_key])["dump.rdb"]) == (SOME_KEYS, SOME_EXPIRING)
    return row


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


async def test_with_rdb_only_the_new_build_runs_on_the_old_volume_writing_nothing_there_until_published(world,
                                                                                                        engine):
    addon = await a_running_addon(world, engine)
    old = serving_node(await cluster_of(world.events, addon.name))
    world.events.crash_on("Operation.StepSucceeded(verify)", before=False)  # verified, not yet published
    try:
        await engine.coordinator.wait(UUID((await engine.database_version.upgrade(APP, addon.name))["operation_id"]),
                                      timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed
    new = [n for n in (await cluster_of(world.events, addon.name)).nodes.values() if n["id"] != old["id"]][0]
    assert new["volume"] == old["volume"] and world.runtime.volumes() == [(old["host"], old["volume"])]
    assert not [e for e in world.runtime.effects if e[0] == "copied"]
    server = world.runtime.server(new["host"], new["container"])
    assert (server.config["save"], server.config["appendonly"], server.saves_on_shutdown) == ("", "no", False)
    assert REFUSE_WRITES in world.runtime.container(new["host"], new["container"]).config["redis.conf"]
    assert decode_dump(world.runtime.hosts[old["host"]].volumes[old["volume"]][DUMP]) == (SOME_KEYS, SOME_EXPIRING)
    engine = await restarted(world, engine)
    await settled(engine)
    await upgraded_to_valkey(world, engine, addon.name, addon)


async def test_the_new_container_is_made_while_the_old_node_serves_leaving_its_configuration_as_it_is(world, engine):
    addon = await a_running_addon(world, engine)
    old = serving_node(await cluster_of(world.events, addon.name))
    conf = world.runtime.container(old["host"], old["container"]).config["redis.conf"]
    world.events.crash_on("Operation.StepSucceeded(create_new)", before=False)
    try:
        await engine.coordinator.wait(UUID((await engine.database_version.upgrade(APP, addon.name))["operation_id"]),
                                      timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed
    new = [n for n in (await cluster_of(world.events, addon.name)).nodes.values() if n["id"] != old["id"]][0]
    assert world.runtime.container(new["host"], new["container"]).image == IMAGE
    assert world.runtime.server(new["host"], new["container"]) is None and not world.redis.calls_to("freeze")
    assert world.runtime.container(old["host"], old["container"]).config["redis.conf"] == conf  # shared, untouched
    engine = await restarted(world, engine)
    await settled(engine)
    await upgraded_to_valkey(world, engine, addon.name, addon)


async def test_a_new_container_that_cannot_be_made_fails_the_upgrade_before_the_node_is_stopped(world, engine):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    world.runtime.fail_for_good("create_node")
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))
    assert operation["status"] == "failed" and operation["error"].startswith("create_new: "), operation
    assert (await world.operation(operation["id"])).compensation == "nothing changed: the addon runs 7.0.15 as before"
    assert not [e for e in world.runtime.effects if e[0] == "stopped"] and not world.redis.calls_to("freeze")
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.runtime.volumes() == [(node["host"], node["volume"])]
    assert world.key_counts(await world.addon(addon.name)) == SOME_KEYS
    await caught_up(engine)
    [row] = await engine.backups.list(APP, addon.name)
    assert (row["kind"], row["status"]) == ("pre-upgrade", "done")  # a safety backup taken whole is kept


async def test_a_failure_before_publish_brings_the_old_version_back_on_its_volume_and_configuration(world, engine):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    world.redis.fail_for_good("keyspace")  # the new build's data is never verified

    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))

    assert operation["status"] == "failed" and operation["error"].startswith("verify: "), operation
    await back_on_the_old_version(world, addon, node)


async def back_on_the_old_version(world, addon, node) -> None:
    """The old node runs on its own volume, with its data, its save rules and its redis.conf (which the new node,
    on the configuration volume they shared, had replaced): the new node and nothing else is gone."""
    back = await world.addon(addon.name)
    assert (back.redis_version, back.status, back.tls_port, back.volume) == ("7.0.15", "running", addon.tls_port,
                                                                             addon.volume)
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.runtime.volumes() == [(node["host"], node["volume"])]
    assert world.key_counts(back) == SOME_KEYS
    server = world.runtime.server(node["host"], node["container"])
    assert server.config["save"] == " ".join(RDB_SAVE_RULES) and not server.paused
    assert REFUSE_WRITES not in world.runtime.container(node["host"], node["container"]).config["redis.conf"]
    assert world.runtime.broken_rules == []


async def test_with_aof_the_new_build_gets_a_copy_and_a_failure_before_publish_leaves_the_old_node_as_it_was(world,
                                                                                                           engine):
    addon = await a_running_addon(world, engine)
    assert (await finished(engine, await engine.database.change(APP, addon.name, "aof", True)))["status"] == "succeeded"
    node = serving_node(await cluster_of(world.events, addon.name))
    world.runtime.fail_for_good("copy_data")  # the data never reaches the new build

    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))

    assert operation["status"] == "failed" and operation["error"].startswith("start_new: "), operation
    back = await world.addon(addon.name)
    assert (back.redis_version, back.status, back.tls_port) == ("7.0.15", "running", addon.tls_port)
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.runtime.volumes() == [(node["host"], node["volume"])]
    assert world.key_counts(back) == SOME_KEYS

    world.runtime.heal("copy_data")
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))
    assert operation["status"] == "succeeded", operation
    new = serving_node(await cluster_of(world.events, addon.name))
    assert new["volume"] != node["volume"] and world.runtime.volumes() == [(new["host"], new["volume"])]
    assert [e for e in world.runtime.effects if e[0] == "copied"]
    assert world.runtime.server(new["host"], new["container"]).config["appendonly"] == "yes"


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
    held = world.runtime.gate("create_node")  # the first upgrade holds the addon until both were answered
    outcomes = await asyncio.gather(engine.database_version.upgrade(APP, addon.name),
                                    engine.database_version.upgrade(APP, addon.name), return_exceptions=True)
    held.set()
    [started] = [o for o in outcomes if isinstance(o, dict)]
    [refused] = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(refused, AddonBusy), refused
    assert (await finished(engine, started))["status"] == "succeeded"
    await upgraded_to_valkey(world, engine, addon.name, addon)


# -- the safety backup -------------------------------------------------------------------------------


async def test_the_backup_is_taken_before_the_node_is_paused_and_is_downloadable_restorable_and_kept(world, engine):
    addon = await a_running_addon(world, engine)
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))
    assert operation["status"] == "succeeded", operation
    row = await backed_up_first(world, engine, addon.name)
    calls = [name for name, _ in world.redis.calls]
    assert calls.index("snapshot") < calls.index("freeze")  # saved while the node ran, writes flowing
    assert row["id"] in operation["steps"][0]["detail"] and "120 keys" not in operation["steps"][0]["detail"]
    assert f"{sum(SOME_KEYS.values())} keys" in operation["steps"][0]["detail"]

    assert (await engine.backups.downloadable(APP, addon.name, row["id"]))["id"] == row["id"]
    assert (await engine.backups.sweep(datetime.now(timezone.utc)))["deleted"] == 0
    await caught_up(engine)
    [kept] = await engine.backups.list(APP, addon.name)
    assert kept["kept_for"] == ["pre-upgrade"] and not kept["expired"]

    world.write_keys(await world.addon(addon.name), {"2": 5})  # written after the upgrade: the restore drops them
    restored = await finished(engine, await engine.backups.restore(APP, addon.name, row["id"]))
    assert restored["status"] == "succeeded", restored
    back = await world.addon(addon.name)
    assert (back.redis_version, world.key_counts(back)) == ("8.1.8", SOME_KEYS)  # Valkey loads the 7.0 file


@pytest.mark.parametrize("failing", [("backups", "write_archive"), ("redis", "snapshot")])
async def test_a_failed_safety_backup_fails_the_upgrade_having_changed_nothing(world, engine, failing):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    getattr(world, failing[0]).fail_for_good(failing[1])

    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))

    assert operation["status"] == "failed" and operation["error"].startswith("safety_backup: "), operation
    assert (await world.operation(operation["id"])).compensation == "nothing changed: the addon runs 7.0.15 as before"
    assert operation["steps"][0]["status"] == "undone" and "no archive left behind" in operation["steps"][0]["detail"]
    await nothing_changed(world, engine, addon, node)


async def nothing_changed(world, engine, addon, node) -> None:
    """The old version runs on, never stopped, its data and save rules as they were; the upgrade's backup is
    marked failed and has no archive; the addon is free for another operation."""
    back = await world.addon(addon.name)
    assert (back.redis_version, back.status, back.operation_id, back.tls_port) == ("7.0.15", "running", None,
                                                                                     addon.tls_port)
    assert world.runtime.containers() == [(node["host"], node["container"])]
    assert world.runtime.volumes() == [(node["host"], node["volume"])]
    assert not [e for e in world.runtime.effects if e[0] == "stopped"] and not world.redis.calls_to("freeze")
    server = world.runtime.server(node["host"], node["container"])
    assert server.config["save"] == " ".join(RDB_SAVE_RULES) and not server.paused
    assert world.key_counts(back) == SOME_KEYS
    assert [n["state"] for n in (await cluster_of(world.events, addon.name)).nodes.values()
            if n["id"] != node["id"]] == ["retired"]  # the node placed for the new version
    assert world.backups.archives == {}
    await caught_up(engine)
    [row] = await engine.backups.list(APP, addon.name)
    assert (row["kind"], row["status"]) == ("pre-upgrade", "failed") and row["failure"].startswith("safety_backup: ")


async def test_a_sandbox_addon_takes_no_backup_and_keeps_its_old_data_until_cleanup(world, engine):
    addon = await a_running_addon(world, engine, plan="redis-sandbox")
    old = serving_node(await cluster_of(world.events, addon.name))
    world.events.crash_on("Operation.StepSucceeded(publish)", before=False)  # published; not cleaned up yet
    try:
        await engine.coordinator.wait(UUID((await engine.database_version.upgrade(APP, addon.name))["operation_id"]),
                                      timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed
    assert (old["host"], old["volume"]) in world.runtime.volumes()  # the old data, kept as a copy until the end
    assert world.runtime.server(old["host"], old["container"]) is None  # stopped, not removed
    engine = await restarted(world, engine)
    await settled(engine)
    [operation] = [o for o in await engine.operations(addon.name) if o["kind"] == "upgrade"]
    assert operation["status"] == "succeeded"
    assert operation["steps"][0]["detail"].startswith("no backup taken: a Sandbox addon has no backups; its old "
                                                      "data is kept as a copy until the end")
    assert (old["host"], old["volume"]) not in world.runtime.volumes()  # removed at cleanup
    assert await engine.backups.list(APP, addon.name) == [] and world.backups.archives == {}
    assert world.key_counts(await world.addon(addon.name)) == SOME_KEYS


async def test_a_sandbox_addon_whose_upgrade_fails_before_publish_is_back_on_its_old_data(world, engine):
    addon = await a_running_addon(world, engine, plan="redis-sandbox")
    world.runtime.lose_data_in_copies = True  # the new node comes up empty: verify fails
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name))
    assert operation["status"] == "failed" and operation["error"].startswith("verify: "), operation
    back = await world.addon(addon.name)
    assert (back.redis_version, world.key_counts(back)) == ("7.0.15", SOME_KEYS)


async def test_killed_at_any_call_to_a_port_a_restarted_engine_finishes_the_upgrade_with_one_backup():
    async def given(world, engine):
        return await a_running_addon(world, engine)

    async def command(engine, addon):
        started = await engine.database_version.upgrade(APP, addon.name)
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)

    async def then(world, engine, addon):
        await upgraded_to_valkey(world, engine, addon.name, addon)

    crashed = await crash_at_every_call(given, command, then)
    assert len(crashed) > 10, crashed


async def test_killed_at_any_call_while_a_failed_backup_is_undone_a_restarted_engine_changes_nothing():
    async def given(world, engine):
        addon = await a_running_addon(world, engine)
        world.backups.fail_for_good("write_archive")
        return addon, serving_node(await cluster_of(world.events, addon.name))

    async def command(engine, state):
        started = await engine.database_version.upgrade(APP, state[0].name)
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)

    async def then(world, engine, state):
        [operation] = [o for o in await engine.operations(state[0].name) if o["kind"] == "upgrade"]
        assert operation["status"] == "failed" and operation["error"].startswith("safety_backup: "), operation
        await nothing_changed(world, engine, *state)

    crashed = await crash_at_every_call(given, command, then)
    assert len(crashed) > 3, crashed


async def test_killed_at_any_call_while_a_failed_upgrade_is_undone_a_restarted_engine_brings_the_old_node_back():
    async def given(world, engine):
        addon = await a_running_addon(world, engine)
        world.redis.fail_for_good("keyspace")
        return addon, serving_node(await cluster_of(world.events, addon.name))

    async def command(engine, state):
        started = await engine.database_version.upgrade(APP, state[0].name)
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)

    async def then(world, engine, state):
        [operation] = [o for o in await engine.operations(state[0].name) if o["kind"] == "upgrade"]
        assert operation["status"] == "failed" and operation["error"].startswith("verify: "), operation
        await back_on_the_old_version(world, *state)

    crashed = await crash_at_every_call(given, command, then)
    assert len(crashed) > 10, crashed


@pytest.mark.parametrize("event, before", [(e, b) for e in ("Backup.Started", "Operation.StepFailed(safety_backup)",
                                                            "Operation.StepUndone(safety_backup)",
                                                            "Operation.Compensated") for b in (True, False)])
async def test_killed_as_a_failed_backup_is_recorded_or_undone_a_restarted_engine_changes_nothing(world, engine,
                                                                                                 event, before):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    world.backups.fail_for_good("write_archive")
    world.events.crash_on(event, before=before)
    try:
        await engine.coordinator.wait(UUID((await engine.database_version.upgrade(APP, addon.name))["operation_id"]),
                                      timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)
    await nothing_changed(world, engine, addon, node)


async def test_an_archive_left_by_a_crash_goes_when_the_backup_then_fails(world, engine):
    addon = await a_running_addon(world, engine)
    node = serving_node(await cluster_of(world.events, addon.name))
    world.events.crash_on("Operation.StepSucceeded(safety_backup)", before=True)  # archived, not yet recorded
    started = await engine.database_version.upgrade(APP, addon.name)
    try:
        await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)
    except Crash:
        pass
    assert not world.events.crash_armed and len(world.backups.archives) == 1
    world.redis.fail_for_good("snapshot")  # the step, run again by the next engine, fails for good
    engine = await restarted(world, engine)
    operation = await finished(engine, started)
    assert operation["status"] == "failed" and operation["error"].startswith("safety_backup: snapshot"), operation
    await nothing_changed(world, engine, addon, node)
