"""A password rotation (engine/credentials_rotation.py) over the in-memory ports: the new password
published and the old one refused at the end, the connections opened before the publication closed and
those after kept, a crash at any call to a port resumed to the same end, a failure before the
publication undone. The same on real Docker and Redis: tests/integration/test_credentials_rotation.py."""

from __future__ import annotations

import itertools
from uuid import UUID

import pytest

from domain.errors import RotationNeedsEveryNode, RotationNeedsRestartMethod
from engine.clusters import cluster_of
from engine.nodes import endpoint
from engine.ports import EffectError
from tests.unit.engine_fakes import (APP, World, a_running_addon, caught_up, finished, restarted, settled, shut_down,
                                     started_engine)
from tests.unit.fakes import Crash
from tests.unit.fakes.credentials import connect


def server_of(world, addon):
    return world.runtime.server(addon.host, addon.container)


def node_of(addon) -> dict:
    return {"address": addon.address, "port": addon.port, "tls_port": addon.tls_port}


async def accepted(world, addon, password: str) -> bool:
    try:
        await world.redis.ping(endpoint(node_of(addon), password))
        return True
    except EffectError:
        return False


HOOK = "http://127.0.0.1:9999/restart"  # the fake restarter calls nothing


@pytest.fixture
async def engine(world):
    """conftest's, with the app registered with a restart method (a rotation without one is refused)."""
    engine = await started_engine(world)
    await engine.register_app(APP, "hook", url=HOOK)
    return engine


async def every_event_text(world) -> str:
    return "\n".join(repr(event) for _, event in await world.events.select(0, 10_000))


async def then_rotated(world, engine, addon, old: str, app_connection: dict) -> str:
    new = world.secrets.peek(addon.name)
    assert new != old and world.secrets.peek_pending(addon.name) is None
    assert not await accepted(world, addon, old) and await accepted(world, addon, new)
    assert (await engine.environment(APP))["REDIS_URL"].startswith(f"redis://default:{new}@")
    assert app_connection not in server_of(world, addon).connections  # opened before the publication: closed
    assert not (await world.addon(addon.name)).is_busy
    assert new not in await every_event_text(world)
    return new


async def test_the_new_password_is_published_the_old_one_refused_and_older_connections_closed(world, engine):
    addon = await a_running_addon(world, engine)
    old = world.secrets.peek(addon.name)
    before, seen = connect(server_of(world, addon)), {}
    restart = world.restarter.restart

    async def restarted_app(app, method, environment):
        seen["old accepted"] = await accepted(world, addon, old)  # both work while the app restarts
        seen["after"] = connect(server_of(world, addon))  # the restarted app's, with the new URL
        return await restart(app, method, environment)

    world.restarter.restart = restarted_app
    operation = await finished(engine, await engine.credentials.rotate(APP, "redis"))

    assert operation["status"] == "succeeded", operation
    assert [s["name"] for s in operation["steps"]] == ["add_password", "publish", "restart_app", "remove_old",
                                                       "disconnect_old"]
    new = await then_rotated(world, engine, addon, old, before)
    assert seen["old accepted"] and seen["after"] in server_of(world, addon).connections
    [(_, _, environment)] = world.restarter.restarts
    assert environment["REDIS_URL"].startswith(f"redis://default:{new}@")
    assert operation["steps"][-1]["detail"] == "1 connection opened before the publication closed"


async def test_a_failure_before_the_publication_leaves_the_old_password_alone(world, engine):
    addon = await a_running_addon(world, engine)
    old = world.secrets.peek(addon.name)
    world.redis.fail_for_good("marker")  # in publish, before the app's URL changes

    operation = await finished(engine, await engine.credentials.rotate(APP, addon.name))

    assert operation["status"] == "failed" and "publish" in operation["error"], operation
    assert world.secrets.peek(addon.name) == old and world.secrets.peek_pending(addon.name) is None
    assert await accepted(world, addon, old)
    assert not getattr(server_of(world, addon), "added_hashes", set())  # the new one refused again
    assert world.restarter.restarts == []
    assert not (await world.addon(addon.name)).is_busy
    await caught_up(engine)  # the addon's view shows the failure, as a TLS one's
    row = await engine.addon(APP, addon.name)
    assert row["failure"].startswith("password rotation failed: ") and "publish" in row["failure"], row
    assert row["operation_id"] is None

    world.redis.heal("marker")
    assert (await finished(engine, await engine.credentials.rotate(APP, addon.name)))["status"] == "succeeded"
    await caught_up(engine)
    assert (await engine.addon(APP, addon.name))["failure"] is None  # over once a rotation succeeds


async def test_a_rotation_holds_the_addon_like_any_operation(world, engine):
    addon = await a_running_addon(world, engine)
    world.redis.fail("add_password", times=None)  # the rotation stays at its first step
    started = await engine.credentials.rotate(APP, addon.name)
    await caught_up(engine)
    assert (await engine.addon(APP, addon.name))["operation_id"] == started["operation_id"]
    with pytest.raises(Exception) as busy:
        await engine.credentials.rotate(APP, addon.name)
    assert getattr(busy.value, "rule", None) == "one-operation-per-addon"


async def test_an_app_with_no_restart_method_is_refused_and_nothing_recorded(world, engine):
    """Nothing would restart the app onto the new password before the old one is refused: it would be
    cut off, and the rotation would say it succeeded."""
    addon = await a_running_addon(world, engine)
    await engine.register_app(APP, "none")
    old, recorded = world.secrets.peek(addon.name), await world.events.max_position()

    with pytest.raises(RotationNeedsRestartMethod) as refused:
        await engine.credentials.rotate(APP, addon.name)

    assert refused.value.rule == "rotation-needs-restart-method" and f"app {APP} has no restart method" in str(
        refused.value) and "apps-register" in str(refused.value)
    assert await world.events.max_position() == recorded  # nothing recorded
    assert world.secrets.peek(addon.name) == old and world.secrets.peek_pending(addon.name) is None
    assert not (await world.addon(addon.name)).is_busy


async def test_an_app_never_registered_is_refused(world):
    engine = await started_engine(world)  # no `engine` fixture: the app is not registered
    addon = await a_running_addon(world, engine)
    with pytest.raises(RotationNeedsRestartMethod):
        await engine.credentials.rotate(APP, addon.name)
    assert not [o for o in await engine.operations(addon.name) if o["kind"] == "rotate_credentials"]


async def test_a_restart_method_taken_away_before_the_publication_undoes_the_rotation(world, engine):
    addon = await a_running_addon(world, engine)
    old = world.secrets.peek(addon.name)
    admin = engine.coordinator._sagas["rotate_credentials"].admin
    add_password = admin.add_password

    async def then_taken_away(node, password):
        await add_password(node, password)
        await engine.register_app(APP, "none")

    admin.add_password = then_taken_away
    operation = await finished(engine, await engine.credentials.rotate(APP, addon.name))

    assert operation["status"] == "failed" and "no longer has a restart method" in operation["error"], operation
    assert world.secrets.peek(addon.name) == old and await accepted(world, addon, old)
    assert world.restarter.restarts == []


async def test_a_node_recorded_down_is_refused_naming_it(world, engine):
    """It would keep the old password in its files, and the steps (and their undo) would wait for it."""
    addon = await a_running_addon(world, engine)
    cluster = await cluster_of(world.events, addon.name)
    [node] = cluster.live_nodes
    cluster.mark_node_down(node["id"], reason="its host does not answer", observed_at="2026-01-01T00:00:00+00:00")
    await world.events.save(cluster)
    recorded = await world.events.max_position()

    with pytest.raises(RotationNeedsEveryNode) as refused:
        await engine.credentials.rotate(APP, addon.name)

    assert refused.value.rule == "rotation-needs-every-node" and node["container"] in str(refused.value)
    assert await world.events.max_position() == recorded
    assert not (await world.addon(addon.name)).is_busy


CRASHES = {  # where the engine dies: at its Nth call to a port (before its effect), or at its Nth save of events
    "at a call": (lambda world, n: world.crash_switch.arm(n), lambda world: world.crash_switch.armed),
    "before a save": (lambda world, n: world.events.crash_at_save(n, before=True), lambda world: world.events.crash_armed),
    "after a save": (lambda world, n: world.events.crash_at_save(n, before=False), lambda world: world.events.crash_armed),
}


@pytest.mark.parametrize("where", list(CRASHES))
async def test_a_crash_anywhere_resumes_to_the_same_end(where):
    """The engine dies at its Nth call (or save), for every N until the rotation finishes without meeting
    the crash: a new engine over the same world finishes it. Before a save of StepSucceeded is after the
    step's effects and before their record: the step runs again."""
    crashed = []
    for number in itertools.count(1):
        if not await crash_at(where, number):
            break
        crashed.append(number)
    assert len(crashed) >= 8, crashed


async def crash_at(where: str, number: int) -> bool:
    """Whether the engine met the crash; if so, a restart has finished the rotation."""
    arm, armed = CRASHES[where]
    world = World()
    try:
        engine = await started_engine(world)
        await engine.register_app(APP, "hook", url=HOOK)
        addon = await a_running_addon(world, engine)
        old = world.secrets.peek(addon.name)
        app_connection = connect(server_of(world, addon))
        arm(world, number)
        try:
            started = await engine.credentials.rotate(APP, addon.name)
            await engine.coordinator.wait(UUID(started["operation_id"]), timeout=10)
        except Crash:
            pass
        if armed(world):
            return False
        engine = await restarted(world, engine)
        await settled(engine)
        rotations = [o for o in await engine.operations(addon.name) if o["kind"] == "rotate_credentials"]
        if not rotations:  # the crash came in the command, before the operation was recorded
            assert world.secrets.peek(addon.name) == old and await accepted(world, addon, old)
            return True
        [operation] = rotations
        assert operation["status"] == "succeeded", operation
        await then_rotated(world, engine, addon, old, app_connection)
        return True
    except AssertionError as failure:
        raise AssertionError(f"crash {where} {number}: {failure}") from failure
    finally:
        await shut_down(world)
