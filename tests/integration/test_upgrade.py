"""Engine upgrades of a Starter addon on real Docker and real servers (reference, "Database Upgrade"):
every allowed step of the catalogue, one after the other on one addon holding 10,000 keys of five types
in all 5 databases and keys with a TTL, through the library (the CLI and the API: test_database_version.py);
what the path does not allow is refused in the rule's words, and nothing changes."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from domain.errors import UpgradeNotAllowed
from tests.integration import data

STEPS = ["6.2.14", "7.0.15", "8.1.8", "9.1.2"]  # from 6.2.7: its patch, Redis 7, Valkey 8, Valkey 9
EXPIRING = {f"session:{i}": f"s{i}" for i in range(50)}


async def ttls(url: str) -> list[int]:
    client = redis.from_url(url, db=3)
    try:
        return [await client.ttl(name) for name in EXPIRING]
    finally:
        await client.aclose()


async def test_a_starter_addon_takes_every_step_of_the_path_with_its_data(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-starter-256", version="6.2.7")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    addon = requested["addon"]
    url = (await engine.environment(app_name))["REDIS_URL"]
    known = data.expected(10_000)
    await data.write(url, known)
    client = redis.from_url(url, db=3)
    for name, value in EXPIRING.items():
        await client.set(name, value, ex=3600)
    await client.aclose()

    with pytest.raises(UpgradeNotAllowed) as refused:  # skipping the latest patch of 6.2
        await engine.database_version.upgrade(app_name, addon, "7.0.15")
    assert refused.value.rule == "upgrade-step-by-step"
    assert "needs to be upgraded to the latest minor version before having access to the next major version" in \
        str(refused.value) and "6.2.14" in str(refused.value)

    for version in STEPS:
        upgrading = await engine.database_version.upgrade(app_name, addon)  # the next allowed step
        assert upgrading["to"] == version
        operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
        assert operation["status"] == "succeeded", operation
        assert operation["steps"][-1]["name"] == "restart_app"  # the app restarted once it is done
        assert (await engine.addon(app_name, addon))["version"] == version
        assert (await engine.environment(app_name))["REDIS_URL"] == url  # same address, port and password
        server = redis.from_url(url)
        info = await server.info("server")
        await server.aclose()
        assert info.get("valkey_version", info["redis_version"]) == version
        extra = {3: {**known[3], **EXPIRING}}
        assert await data.read(url, {**known, **extra}) == {**known, **extra}, version
        assert all(0 < ttl <= 3600 for ttl in await ttls(url)), version  # TTLs kept

    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(app_name, addon, "8.1.8")
    assert refused.value.rule == "no-downgrade"
    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(app_name, addon)
    assert refused.value.rule == "no-upgrade-available" and "latest on its upgrade path" in str(refused.value)
