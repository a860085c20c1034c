"""A Business addon's minor engine upgrade on real Docker, Redis, Sentinel and HAProxy (reference, "Database
Upgrade": a "zero-downtime upgrade of minor version"; "once the operation is finished, the application is
restarted"), under a writer through REDIS_URL counting the writes acknowledged to it: its data nodes are
replaced one at a time by nodes of the new build, then the primary switches with writes paused until the
new nodes have everything. The major steps, rolling or not: test_business_upgrade_major.py."""

from __future__ import annotations

from domain.cluster_config import MASTER_NAME
from engine.cluster_provisioning import sentinel_secret
from engine.nodes import endpoint
from tests.integration import data
from tests.integration.business import Writer, direct, eventually, nodes_by_role, primary_of


async def test_a_business_addon_takes_its_latest_patch_under_writes_with_no_downtime(engine, app_name, restart_hook):
    hook, restarts = await restart_hook(200)
    await engine.register_app(app_name, restart="hook", url=hook)
    requested = await engine.add_addon(app_name, "redis-business-256", version="6.2.7")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=240))["status"] == "succeeded"
    addon = requested["addon"]
    url = (await engine.environment(app_name))["REDIS_URL"]
    known = {db: keys for db, keys in data.expected(2_500).items() if db != 0}  # the writer writes to 0
    await data.write(url, known)
    writer = Writer(url).start()
    await eventually(writer.wrote_more)

    for version, kind in (("6.2.14", "patch"),):
        before = await nodes_by_role(engine, app_name, addon)
        upgrading = await engine.database_version.upgrade(app_name, addon)  # the next allowed step
        assert (upgrading["to"], upgrading["kind"]) == (version, kind)
        operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=300)
        assert operation["status"] == "succeeded", operation
        assert operation["kind"] == "upgrade_cluster" and operation["steps"][-1]["name"] == "restart_app"
        assert restarts[-1] == {"app": app_name, "environment": await engine.environment(app_name)}  # at the end
        assert len(restarts) == 1
        after = await nodes_by_role(engine, app_name, addon)
        assert not {n["id"] for n in after["data"]} & {n["id"] for n in before["data"]}  # both data nodes new
        for node in after["data"]:  # each runs the new build, as its record says
            client = direct(node, writer.password)
            assert (await client.info("server"))["redis_version"] == version == node["version"]
            await client.aclose()
        shown = await engine.database_version.show(app_name, addon)
        assert shown["version"] == version and {n["version"] for n in shown["nodes"]} == {version}
        assert (await engine.environment(app_name))["REDIS_URL"] == url
        await eventually(writer.wrote_more)

    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
    assert await data.read(url, known) == known
    nodes = await nodes_by_role(engine, app_name, addon)
    primary = primary_of(nodes)
    [replica] = [n for n in nodes["data"] if not n["is_primary"]]
    for sentinel in nodes["sentinel"]:  # the Sentinels agree on the new primary and know only the new nodes
        view = await engine.redis.sentinel_view(endpoint(sentinel, engine.secrets.password_for(sentinel_secret(addon))),
                                                MASTER_NAME)
        assert view["primary"] == f"{primary['address']}:{primary['port']}"
        assert view["replicas_up"] == [f"{replica['address']}:{replica['port']}"]
