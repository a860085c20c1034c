"""A Business addon's major upgrades on real Docker, Redis/Valkey, Sentinel and HAProxy, under a writer
through REDIS_URL: a step the catalogue records as rolling (Redis 7.0 -> Valkey 8.1, both with TLS, the
cluster's nodes talking TLS to each other) with no downtime; and a step it does not (its flag removed for
this engine), which stops writes as the reference stops the nodes: refused (NOREPLICAS), never acknowledged
then lost, while the data moves through a safety backup into a new pair on the new build."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as redis

from domain.cluster_config import MASTER_NAME
from domain.upgrade_path import rolling
from engine.cluster_provisioning import sentinel_secret
from engine.nodes import endpoint
from tests.integration import data
from tests.integration.business import Writer, direct, eventually, nodes_by_role, primary_of

PLAN = "redis-business-256"


async def a_cluster_with_data(engine, app: str, version: str) -> tuple[str, str, dict]:
    requested = await engine.add_addon(app, PLAN, version=version)
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=240))["status"] == "succeeded"
    url = (await engine.environment(app))["REDIS_URL"]
    known = {db: keys for db, keys in data.expected(2_500).items() if db != 0}  # the writer writes to 0
    await data.write(url, known)
    return requested["addon"], url, known


async def read_back(url: str, known: dict) -> dict:
    """The data read through the entry; once more if a connection is cut (a client does the same: HAProxy,
    reloaded without the old nodes, cuts the sessions its old process still held, 10 s on)."""
    try:
        return await data.read(url, known)
    except redis.ConnectionError:
        return await data.read(url, known)


async def upgraded(engine, app: str, addon: str, version: str, kind: str) -> dict:
    before = await nodes_by_role(engine, app, addon)
    upgrading = await engine.database_version.upgrade(app, addon, version)
    operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=300)
    assert operation["status"] == "succeeded", operation
    assert operation["kind"] == kind and operation["steps"][-1]["name"] == "restart_app"
    after = await nodes_by_role(engine, app, addon)
    assert not {n["id"] for n in after["data"]} & {n["id"] for n in before["data"]}  # both data nodes new
    assert {n["version"] for n in after["data"]} == {version}
    return operation


async def every_node_runs(engine, app: str, addon: str, version: str, password: str) -> None:
    nodes = await nodes_by_role(engine, app, addon)
    for node in nodes["data"]:
        client = direct(node, password)
        info = await client.info("server")
        await client.aclose()
        assert info.get("valkey_version", info["redis_version"]) == version
    primary = primary_of(nodes)
    [replica] = [n for n in nodes["data"] if not n["is_primary"]]
    for sentinel in nodes["sentinel"]:  # the Sentinels agree on the new primary and know only the new nodes
        view = await engine.redis.sentinel_view(endpoint(sentinel, engine.secrets.password_for(sentinel_secret(addon))),
                                                MASTER_NAME)
        assert view["primary"] == f"{primary['address']}:{primary['port']}"
        assert view["replicas_up"] == [f"{replica['address']}:{replica['port']}"]


async def test_a_tls_cluster_moves_from_redis_7_to_valkey_8_with_no_downtime(engine, app_name):
    assert rolling(engine.versions.get("7.0.15"), engine.versions.get("8.1.1"))  # as the catalogue records
    addon, url, known = await a_cluster_with_data(engine, app_name, "7.0.15")
    writer = Writer(url).start()
    await eventually(writer.wrote_more)
    await upgraded(engine, app_name, addon, "8.1.1", "upgrade_cluster")
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
    assert writer.refused <= {"NOREPLICAS"}  # at most refused for an instant at the switch, never lost
    assert await read_back(url, known) == known
    assert (await engine.environment(app_name))["REDIS_URL"] == url
    await every_node_runs(engine, app_name, addon, "8.1.1", writer.password)


async def test_a_major_step_that_does_not_roll_stops_writes_and_moves_the_data(engine, app_name):
    build = engine.versions.get("7.0.15")
    engine.versions._versions["7.0.15"] = replace(build, rolling_from=())  # the catalogue flag forcing the stop path
    addon, url, known = await a_cluster_with_data(engine, app_name, "6.2.14")
    writer = Writer(url).start()
    await eventually(writer.wrote_more)
    operation = await upgraded(engine, app_name, addon, "7.0.15", "upgrade_cluster_stopped")
    assert "pre-upgrade backup" in next(s for s in operation["steps"] if s["name"] == "safety_backup")["detail"]
    await eventually(writer.wrote_more)
    await writer.stop()
    assert "NOREPLICAS" in writer.refused  # writes refused while the data moved, not taken and lost
    assert await writer.lost() == []
    assert await read_back(url, known) == known
    await every_node_runs(engine, app_name, addon, "7.0.15", writer.password)
    backups = [b for b in await engine.backups.list(app_name, addon) if b["kind"] == "pre-upgrade"]
    assert [(b["status"], b["redis_version"]) for b in backups] == [("done", "6.2.14")]
