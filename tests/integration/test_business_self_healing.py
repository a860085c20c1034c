"""Self-healing of a Business cluster (real Docker, Redis, Sentinel and HAProxy, a writer through
REDIS_URL): a lost node is replaced by a new one on a host with room and the right spread, the
others are told, and the cluster comes back to full redundancy by itself; nothing acknowledged is lost."""

from __future__ import annotations

from tests.integration.business import (Writer, business_addon, container, direct, eventually, nodes_by_role,
                                        primary_of, watcher_round)


async def replaced(engine, app: str, addon: str, lost: dict, timeout: float = 120) -> dict:
    """Watcher rounds until a replacement of `lost` has succeeded; returns its operation."""
    async def done():
        await watcher_round(engine)
        ops = [o for o in await engine.operations(addon) if o["kind"] == "replace_node"]
        if ops and ops[0]["status"] in ("failed", "compensated"):
            raise AssertionError(f"the replacement failed: {ops[0]}")
        return next((o for o in ops if o["status"] == "succeeded"), None)

    operation = await eventually(done, timeout=timeout, every=0.5)
    nodes = await engine.nodes(app, addon)
    assert next(n for n in nodes if n["id"] == lost["id"])["state"] == "retired"
    return operation


async def redundant(engine, app: str, addon: str) -> bool:
    await watcher_round(engine)
    return (await engine.addon(app, addon))["status"] == "running"


async def test_a_replica_lost_is_replaced_and_writes_go_on_meanwhile(engine, app_name):
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    primary, replica = primary_of(before), next(n for n in before["data"] if not n["is_primary"])
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)

    await (await container(engine, replica)).delete(force=True)  # killed and its container gone

    async def writes_go_on() -> bool:
        await watcher_round(engine)
        return await writer.wrote_more()

    await eventually(writes_go_on, timeout=30)  # once the engine has lowered the requirement (no replica in sync)
    await replaced(engine, app_name, addon, replica)
    after = await nodes_by_role(engine, app_name, addon)
    [new] = [n for n in after["data"] if n["id"] != primary["id"]]
    assert new["host"] != primary["host"] and new["state"] == "running"  # the spread kept
    assert primary_of(after)["id"] == primary["id"]  # no failover for a replica
    await eventually(lambda: redundant(engine, app_name, addon), timeout=30)
    node = direct(primary, writer.password)
    assert (await node.config_get("min-replicas-to-write"))["min-replicas-to-write"] == "1"  # the requirement is back
    assert (await node.info("replication"))["connected_slaves"] == 1
    await node.aclose()
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []
