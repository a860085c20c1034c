"""A Starter addon upgraded while its app writes through REDIS_URL (reference, "Database Upgrade": Starter
plans "have to stop the node to upgrade it, causing an inevitable downtime"): the new build listens where the
old one did, so the app reaches it as soon as it answers; it refuses writes (NOREPLICAS) until the upgrade is
published, so no write is acknowledged by a node an undo would remove, and `verify` sees what was saved."""

from __future__ import annotations

import redis.asyncio as redis

from tests.integration import data
from tests.integration.business import Writer, eventually


async def test_a_starter_upgrade_under_writes_loses_no_acknowledged_write(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-starter-256", version="6.2.14")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    addon = requested["addon"]
    url = (await engine.environment(app_name))["REDIS_URL"]
    known = {db: keys for db, keys in data.expected(2_500).items() if db != 0}  # the writer writes to 0
    await data.write(url, known)
    writer = Writer(url).start()
    await eventually(writer.wrote_more)
    upgrading = await engine.database_version.upgrade(app_name, addon, "7.0.15")
    operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    await eventually(writer.wrote_more)  # the new build takes writes once published
    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
    assert writer.failures > 0  # the downtime the reference speaks of: refused or cut, never acknowledged
    assert await data.read(url, known) == known
    client = redis.from_url(url)
    assert (await client.info("server"))["redis_version"] == "7.0.15"
    assert (await client.config_get("min-replicas-to-write"))["min-replicas-to-write"] == "0"
    await client.aclose()
