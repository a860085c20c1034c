"""The crash-point matrix: for each kind of operation and each step boundary, the engine dies
(its process gone, the containers and the store left as they are) and a new engine over the same
world finishes the operation: one node, the data's key counts intact, nothing left behind, and
each effect applied once (the app's restart at least once: it is redone when the crash comes
between the restart and its record).

A crash "before saving StepSucceeded(x)" comes after the step's effects and before their record:
the step runs again on the restart. "After saving" is the step boundary itself. A second matrix
crashes the engine as it makes each of its calls to Docker, Redis or a store, between boundaries.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import pytest

from domain.operation import STEPS
from domain.redis_config import RDB_SAVE_RULES
from tests.unit.engine_fakes import (APP, SOME_EXPIRING, SOME_KEYS, World, a_running_addon, finished, restarted,
                                     settled, shut_down, started_engine)
from tests.unit.fakes import Crash
from tests.unit.fakes.docker import untar
from tests.unit.fakes.redis import decode_dump

NEW_PLAN = "redis-starter-512"
SAVE_RULES = " ".join(RDB_SAVE_RULES)
WRITTEN_AFTER_THE_BACKUP = {"0": 50, "2": 9}


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    fails_at: str | None = None  # the step whose effect fails for good, so that the operation is undone


SCENARIOS = [
    Scenario("provision", "provision"),
    Scenario("change_plan", "change_plan"),
    Scenario("change_plan undone", "change_plan", fails_at="start_new"),
    Scenario("backup", "backup"),
    Scenario("restore", "restore"),
    Scenario("change_settings", "change_settings"),
    Scenario("enable_force_tls", "enable_force_tls"),
    Scenario("remove", "remove"),
]


def crash_points(scenario: Scenario) -> list[tuple[str, bool]]:
    """(the event whose save the crash hits, whether before it is written) at each step boundary. A crash
    just after a step is recorded as started leaves the world as the boundary before it does (resuming a
    started step is the coordinator's, tested on its own in test_coordinator.py)."""
    points = [("Operation.Started", False)]
    for step in STEPS[scenario.kind]:
        if step == scenario.fails_at:
            for event in (f"Operation.StepFailed({step})", "Operation.Compensated"):
                points += [(event, True), (event, False)]
            break
        points += [(f"Operation.StepSucceeded({step})", True), (f"Operation.StepSucceeded({step})", False)]
    return points


CASES = [pytest.param(scenario, event, before,
                      id=f"{scenario.name}: crash {'before' if before else 'after'} saving {event.split('.', 1)[1]}")
         for scenario in SCENARIOS for event, before in crash_points(scenario)]


@pytest.mark.parametrize("scenario, event, before", CASES)
async def test_a_crash_at_a_step_boundary_and_a_restart_finish_the_operation_with_one_node_and_the_data_intact(
        world, engine, scenario, event, before):
    given = await GIVEN[scenario.name](world, engine)

    world.events.crash_on(event, before=before)
    await command_crashing(engine, scenario, given)
    assert not world.events.crash_armed, f"no save held {event}"
    engine = await restarted(world, engine)
    await settled(engine)

    addon = await the_operations_addon(world, engine, scenario)
    assert addon is not None
    await THEN[scenario.name](world, addon, given)
    redone = before and event.startswith("Operation.StepSucceeded(")
    applied_once(world, scenario, addon, event[event.find("(") + 1:-1] if redone else None)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_a_crash_as_the_engine_makes_any_call_to_docker_redis_or_a_store_and_a_restart_finish_the_operation(
        scenario):
    """Between step boundaries too: the engine dies as it makes its Nth call to a port (before that call has
    any effect), for every N until the operation finishes without meeting a crash."""
    crashed = []
    for number in itertools.count(1):
        if not await crash_at_call(scenario, number):
            break
        crashed.append(number)
    assert len(crashed) >= 3, crashed


async def crash_at_call(scenario: Scenario, number: int) -> bool:
    """Whether the engine met the crash at its `number`-th call; if so, a restart has finished the operation."""
    world = World()
    try:
        engine = await started_engine(world)
        given = await GIVEN[scenario.name](world, engine)
        world.crash_switch.arm(number)
        await command_crashing(engine, scenario, given)
        if world.crash_switch.armed:  # finished without meeting the crash: every call has been tried
            return False
        engine = await restarted(world, engine)
        await settled(engine)

        addon = await the_operations_addon(world, engine, scenario)
        if addon is None:  # the crash came in the command, before the operation was recorded
            await then_nothing_changed(world, given)
        else:
            await THEN[scenario.name](world, addon, given)
        return True
    except AssertionError as failure:
        raise AssertionError(f"crash at call {number}: {failure}") from failure
    finally:
        await shut_down(world)


async def command_crashing(engine, scenario: Scenario, given: dict) -> None:
    """Ask for the operation; return once the engine has crashed (in the command or in the saga), or the
    operation has finished."""
    addon = given.get("addon")
    commands = {
        "provision": lambda: engine.add_addon(APP, "redis-starter-256"),
        "change_plan": lambda: engine.change_plan(APP, addon.name, NEW_PLAN),
        "backup": lambda: engine.backups.create(APP, addon.name),
        "restore": lambda: engine.backups.restore(APP, addon.name, given.get("backup_id")),
        "change_settings": lambda: engine.database.change(APP, addon.name, "aof", True),
        "enable_force_tls": lambda: engine.database.change(APP, addon.name, "force-tls", True),
        "remove": lambda: engine.remove_addon(APP, addon.name),
    }
    try:
        started = await commands[scenario.kind]()
    except Crash:  # before the operation was recorded, or after, before it was submitted
        return
    await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)


async def the_operations_addon(world, engine, scenario: Scenario):
    """The addon of the scenario's operation, which has finished as it should; None when it was never recorded."""
    rows = await asyncio.to_thread(engine.views.addons, APP)
    operations = [o for row in rows for o in await engine.operations(row["name"]) if o["kind"] == scenario.kind]
    if not operations:
        return None
    [operation] = operations
    assert operation["status"] == ("failed" if scenario.fails_at else "succeeded"), operation
    assert engine.inventory.unfinished == {}
    assert world.runtime.broken_rules == []
    return await world.addon(operation["addon"])


# -- given -----------------------------------------------------------------------------------------------


async def nothing(world, engine) -> dict:
    return {}


async def an_addon(world, engine) -> dict:
    return {"addon": await a_running_addon(world, engine)}


async def an_addon_whose_new_node_cannot_start(world, engine) -> dict:
    given = await an_addon(world, engine)
    world.runtime.fail_for_good("start_node", host="host-b")
    return given


async def an_addon_written_to_since_its_backup(world, engine) -> dict:
    addon = await a_running_addon(world, engine)
    backup = await finished(engine, started := await engine.backups.create(APP, addon.name))
    assert backup["status"] == "succeeded"
    world.write_keys(addon, WRITTEN_AFTER_THE_BACKUP)
    return {"addon": addon, "backup_id": started["backup_id"]}


GIVEN = {"provision": nothing, "change_plan": an_addon, "change_plan undone": an_addon_whose_new_node_cannot_start,
         "backup": an_addon, "restore": an_addon_written_to_since_its_backup, "change_settings": an_addon,
         "enable_force_tls": an_addon, "remove": an_addon}


# -- then: what each operation leaves, whatever the crash ---------------------------------------------------


def one_node(world, addon) -> None:
    assert world.runtime.containers() == [(addon.host, addon.container)]
    assert world.runtime.volumes() == [(addon.host, addon.volume)]


async def provisioned(world, addon, given):
    assert addon.status == "running" and addon.host == "host-a"
    one_node(world, addon)
    assert world.runtime.server("host-a", addon.container) is not None
    assert world.secrets.peek(addon.name) is not None


async def plan_changed(world, addon, given):
    assert (addon.status, addon.plan, addon.host) == ("running", NEW_PLAN, "host-b")
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    server = world.runtime.server("host-b", addon.container)
    assert not server.paused and server.config["save"] == SAVE_RULES
    assert f"@127.0.2.1:{addon.port}" in world.restarter.restarts[-1][2]["REDIS_URL"]


async def plan_change_undone(world, addon, given):
    assert (addon.status, addon.plan, addon.host, addon.container) == (
        "running", "redis-starter-256", "host-a", given["addon"].container)
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    server = world.runtime.server("host-a", addon.container)
    assert not server.paused and server.config["save"] == SAVE_RULES
    assert world.restarter.restarts == []


async def backed_up(world, addon, given):
    assert addon.status == "running" and addon.operation_id is None
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    assert world.runtime.server("host-a", addon.container).config["save"] == SAVE_RULES
    [archive] = world.backups.archives.values()
    assert decode_dump(untar(archive)["dump.rdb"]) == (SOME_KEYS, SOME_EXPIRING)
    [backup] = await asyncio.to_thread(world.engines[-1].views.backups, addon.name)
    assert backup["status"] == "done"


async def restored(world, addon, given):
    assert (addon.status, addon.host, addon.port) == ("running", "host-a", given["addon"].port)
    assert addon.container != given["addon"].container  # a new node took the backup's data
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    assert world.runtime.server("host-a", addon.container).config["save"] == SAVE_RULES
    assert len(world.backups.archives) == 1


async def settings_changed(world, addon, given):
    assert addon.settings["aof"] is True and addon.operation_id is None
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    assert world.runtime.server("host-a", addon.container).config["appendonly"] == "yes"
    assert "appendonly yes" in world.runtime.container("host-a", addon.container).config["redis.conf"]


async def tls_forced(world, addon, given):
    assert addon.settings["force_tls"] is True and addon.operation_id is None
    one_node(world, addon)
    assert world.key_counts(addon) == SOME_KEYS
    assert world.runtime.server("host-a", addon.container).port == 0  # plaintext closed
    assert "\nport 0\n" in world.runtime.container("host-a", addon.container).config["redis.conf"]
    assert world.restarter.restarts[-1][2]["REDIS_URL"].startswith("rediss://")


async def removed(world, addon, given):
    assert addon.status == "removed"
    assert world.runtime.containers() == [] and world.runtime.volumes() == []
    assert world.secrets.peek(addon.name) is None


THEN = {"provision": provisioned, "change_plan": plan_changed, "change_plan undone": plan_change_undone,
        "backup": backed_up, "restore": restored, "change_settings": settings_changed,
        "enable_force_tls": tls_forced, "remove": removed}


async def then_nothing_changed(world, given: dict) -> None:
    """A crash in the command, before the operation was recorded: nothing was done."""
    addon = given.get("addon")
    if addon is None:
        assert world.runtime.containers() == [] and world.runtime.volumes() == []
        return
    one_node(world, addon)
    assert world.runtime.server(addon.host, addon.container) is not None
    assert (await world.addon(addon.name)).operation_id is None


def applied_once(world, scenario: Scenario, addon, redone_step: str | None) -> None:
    """At a step boundary, each effect happened once; the app's restart, at least once."""
    created = Counter(e[2] for e in world.runtime.effects if e[0] == "created")
    assert set(created.values()) <= {1}, created  # no container was made twice
    if scenario.name == "provision":
        assert world.runtime.effects.count(("started", "host-a", addon.container)) == 1
    if scenario.name == "change_plan":
        new_node = ("host-b", addon.container)
        assert [e for e in world.runtime.effects if e[0] == "copied"] == [
            ("copied", "host-a", addon.replaced["container"], *new_node)]
        assert world.runtime.effects.count(("started", *new_node)) == 1
    if scenario.name == "restore":
        assert world.runtime.effects.count(("started", "host-a", addon.container)) == 1
    if scenario.name == "backup":
        assert len(world.backups.calls_to("write_archive")) == (2 if redone_step == "archive" else 1)
    if scenario.name in ("change_plan", "enable_force_tls"):
        assert len(world.restarter.restarts) == (2 if redone_step == "restart_app" else 1)
