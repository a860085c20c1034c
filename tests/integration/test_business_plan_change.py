"""A Business addon's plan change with no downtime (real Docker, Redis, Sentinel and HAProxy, a
writer through REDIS_URL counting the writes acknowledged to it): its data nodes are replaced one at
a time by nodes with the new plan's memory, then the primary switches with writes paused until the
new nodes have everything; REDIS_URL does not change, so the app is not restarted."""

from __future__ import annotations

import aiodocker

from tests.integration.business import Writer, business_addon, direct, eventually, nodes_by_role, primary_of

MIB = 1024 * 1024


async def changed(engine, app: str, addon: str, plan: str) -> dict:
    requested = await engine.change_plan(app, addon, plan)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=300)
    assert operation["status"] == "succeeded", operation
    return operation


async def gone(engine, node: dict) -> bool:
    try:
        await engine.runtime.client(node["host"]).containers.get(node["container"])
    except aiodocker.DockerError as error:
        return error.status == 404
    return False


async def test_up_and_down_between_business_plans_under_writes_loses_nothing_and_keeps_the_url(engine, app_name):
    addon = await business_addon(engine, app_name)
    url = (await engine.environment(app_name))["REDIS_URL"]
    writer = Writer(url).start()
    await eventually(writer.wrote_more)

    for plan, memory in (("redis-business-512", 512), ("redis-business-256", 256)):
        before = await nodes_by_role(engine, app_name, addon)
        operation = await changed(engine, app_name, addon, plan)
        assert "not restarted" in operation["steps"][-1]["detail"], operation["steps"][-1]
        after = await nodes_by_role(engine, app_name, addon)
        assert not {n["id"] for n in after["data"]} & {n["id"] for n in before["data"]}  # both data nodes new
        assert len(after["data"]) == 2 and len({n["host"] for n in after["data"]}) == 2  # the spread kept
        for node in after["data"]:
            client = direct(node, writer.password)
            assert (await client.config_get("maxmemory"))["maxmemory"] == str(memory * MIB)
            await client.aclose()
        for old in before["data"]:
            assert await gone(engine, old), old  # container and volume removed
        assert [n["id"] for n in after["sentinel"] + after["proxy"]] == [n["id"] for n in before["sentinel"] + before["proxy"]]
        shown = await engine.addon(app_name, addon)
        assert (shown["plan"], shown["status"]) == (plan, "running")
        assert (await engine.environment(app_name))["REDIS_URL"] == url
        await eventually(writer.wrote_more)

    changes = [e for e in await engine.event_page(after=0, limit=5000) if e["type"] == "Cluster.PrimaryChanged"
               and e["data"]["reason"].startswith("plan change")]
    assert len(changes) == 2, changes
    primary = direct(primary_of(await nodes_by_role(engine, app_name, addon)), writer.password)
    assert (await primary.info("replication"))["connected_slaves"] == 1
    await primary.aclose()
    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
