"""Restore into a Business addon on real Docker, Redis, Sentinel and HAProxy (issue 12, part 4): the
backup's data becomes the cluster's on both data nodes, the URL unchanged, the old nodes gone, the
Sentinels watching the new pair and the entry sending writes to its primary."""

from __future__ import annotations

import redis.asyncio as redis

from domain.cluster_config import MASTER_NAME
from engine.cluster_provisioning import sentinel_secret
from engine.nodes import endpoint
from tests.integration import data
from tests.integration.business import business_addon, eventually, nodes_by_role, over_tls, primary_of
from tests.integration.conftest import containers_of
from tests.integration.test_backups import backup_now



async def counts(node: dict, password: str) -> dict[int, int]:
    """Keys per database that this data node holds."""
    found = {}
    for db in range(5):
        client = redis.Redis(host=node["address"], port=node["port"], db=db, username="default", password=password,
                             socket_timeout=2, **over_tls(node))
        try:
            if n := await client.dbsize():
                found[db] = n
        finally:
            await client.aclose()
    return found


async def test_restore_into_a_business_addon_both_nodes_hold_the_backups_data(engine, app_name):
    addon = await business_addon(engine, app_name)
    url = (await engine.environment(app_name))["REDIS_URL"]
    known = data.expected(1_000)
    await data.write(url, known)
    made = await backup_now(engine, app_name)
    assert made["operation"]["status"] == "succeeded", made["operation"]
    await data.write(url, {0: {"written-after-the-backup": "gone after the restore"}})
    before = await nodes_by_role(engine, app_name, addon)

    requested = await engine.backups.restore(app_name, addon, made["backup"]["id"])
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=240)

    assert operation["status"] == "succeeded", operation
    assert (await engine.environment(app_name))["REDIS_URL"] == url  # the entry address does not change
    assert await data.read(url, known) == known  # through HAProxy, to the new primary
    client = redis.from_url(url, socket_timeout=2)
    try:
        assert await client.exists("written-after-the-backup") == 0
        assert await client.set("written-after-the-restore", "kept")  # acknowledged with the replica in sync
    finally:
        await client.aclose()
    nodes = await nodes_by_role(engine, app_name, addon)
    password = engine.secrets.password_for(addon)
    primary = primary_of(nodes)
    [replica] = [n for n in nodes["data"] if not n["is_primary"]]
    assert not {n["id"] for n in nodes["data"]} & {n["id"] for n in before["data"]}
    wanted = {db: len(values) for db, values in known.items() if values}
    wanted[0] += 1  # the key written after the restore
    assert await counts(primary, password) == wanted
    assert await eventually(lambda: _same(counts(replica, password), wanted))  # replicated
    names = {c["Name"].lstrip("/") for c in await containers_of(addon)}
    assert len(names) == 7
    assert not names & {n["container"] for n in before["data"]}  # the old pair is gone
    for sentinel in nodes["sentinel"]:
        view = await engine.redis.sentinel_view(endpoint(sentinel, engine.secrets.password_for(sentinel_secret(addon))),
                                                MASTER_NAME)
        assert view["primary"] == f"{primary['address']}:{primary['port']}"
        assert (len(view["sentinels_up"]), view["replicas_up"]) == (2, [f"{replica['address']}:{replica['port']}"])


async def _same(found, wanted) -> bool:
    return await found == wanted
