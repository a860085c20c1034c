"""A Starter upgrade past its point of no return (publish) on the in-memory ports: the addon is held until its
new build takes writes (open_writes), and a failure from there on still gives writes back and restarts the
app — the new build serves it, and a build without TLS took its TLS URL away."""

from __future__ import annotations

from engine.clusters import cluster_of, serving_node
from engine.nodes import REFUSE_WRITES
from tests.unit.engine_fakes import APP, a_running_addon, caught_up, finished


async def test_until_writes_are_open_the_addon_is_held_by_the_upgrade(world, engine):
    addon = await a_running_addon(world, engine)
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name, "8.1.8"))
    assert operation["status"] == "succeeded"
    facts = [(e["type"], e["data"].get("step")) for e in await engine.event_page(after=0, limit=5000)
             if e["type"] in ("Addon.Upgraded", "Operation.StepSucceeded")]
    at = facts.index(("Addon.Upgraded", None))  # saved with open_writes' success, not publish's
    assert ("Operation.StepSucceeded", "open_writes") in facts[at - 1:at + 2]
    assert ("Operation.StepSucceeded", "publish") not in facts[at - 1:at + 2]
    steps = {s["name"]: s["detail"] for s in operation["steps"]}
    assert "takes writes: the addon runs 8.1.8" in steps["open_writes"]
    assert (await world.addon(addon.name)).redis_version == "8.1.8"


async def test_a_cleanup_failing_for_good_still_leaves_writes_open_and_the_app_restarted(world, engine):
    addon = await a_running_addon(world, engine)
    old = serving_node(await cluster_of(world.events, addon.name))
    world.runtime.fail_for_good("remove_node", container=old["container"])
    world.restarter.restarts.clear()
    operation = await finished(engine, await engine.database_version.upgrade(APP, addon.name, "8.1.8"))
    assert operation["status"] == "failed" and "cleanup" in operation["error"], operation
    await caught_up(engine)
    [seen] = [o for o in await engine.operations(addon.name) if o["kind"] == "upgrade"]
    assert "restarted" in seen["compensation"]
    after = await world.addon(addon.name)
    assert (after.redis_version, after.status, after.operation_id) == ("8.1.8", "running", None)
    assert [app for app, _, _ in world.restarter.restarts] == [APP]  # onto the new build, once
    node = serving_node(await cluster_of(world.events, after.name))
    server = world.runtime.server(node["host"], node["container"])
    assert server.config["min-replicas-to-write"] == "0"  # it takes writes
    assert REFUSE_WRITES not in world.runtime.container(node["host"], node["container"]).config["redis.conf"]
