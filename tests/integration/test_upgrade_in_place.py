"""A Starter addon with RDB only is upgraded on its own volume, on real Docker and real servers (issue 13's
downtime: no copy of the data): the new build starts there with no save rule, no AOF and writes refused,
so it writes nothing on the old files. Failed before publish (its verification made to fail), the new node
is removed, the volume kept, and the old build starts again on its files as they were, with its own
configuration and save rules; upgraded again, the new build keeps the volume when the old container goes,
and saves by the addon's rules again."""

from __future__ import annotations

import hashlib

import aiodocker
import redis.asyncio as redis

from engine.ports import EffectError
from tests.integration.conftest import remove_everything_of

OLD, NEW = "6.2.14", "7.0.15"
RULES = "900 1 300 10 60 10000"


async def dump_digest(engine, host: str, container: str) -> str:
    """The SHA-256 of the tar of /data/dump.rdb as the container sees it."""
    tar = b"".join([chunk async for chunk in engine.runtime.read_file(host, container, "/data/dump.rdb")])
    return hashlib.sha256(tar).hexdigest()


async def data_volume(engine, host: str, container: str) -> str:
    inspected = await (await engine.runtime.client(host).containers.get(container)).show()
    return next(m["Name"] for m in inspected["Mounts"] if m["Destination"] == "/data")


async def test_the_new_build_runs_on_the_old_volume_and_an_undo_finds_the_old_files_as_they_were(engine, app_name,
                                                                                                monkeypatch):
    try:
        requested = await engine.add_addon(app_name, "redis-starter-256", version=OLD)
        assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
        addon, url = requested["addon"], (await engine.environment(app_name))["REDIS_URL"]
        client = redis.from_url(url)
        await client.mset({f"key:{i}": i for i in range(1000)})
        await client.aclose()
        old = next(n for n in await engine.runtime.nodes(**{"redis-addons.addon": addon}))
        old_volume = await data_volume(engine, old.host, old.container)

        saga, seen = engine.coordinator._sagas["upgrade"], {}

        async def failing_verify(addon_, operation, password):
            new = await saga.new_node(addon_, operation)
            seen["volume"] = await data_volume(engine, new["host"], new["container"])
            seen["digest"] = await dump_digest(engine, new["host"], new["container"])
            async with redis.from_url(url) as new_client:
                seen["config"] = await new_client.config_get("save") | await new_client.config_get("appendonly")
            raise EffectError("verification made to fail")

        monkeypatch.setattr(saga, "verify", failing_verify)
        upgrading = await engine.database_version.upgrade(app_name, addon, NEW)
        operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
        assert operation["status"] == "failed" and operation["error"].startswith("verify: "), operation
        assert seen["volume"] == old_volume and seen["config"] == {"save": "", "appendonly": "no"}

        # The old build, on its files byte for byte, its redis.conf its own again: its save rules, writes taken.
        client = redis.from_url(url)  # a connection each time a server was stopped or started
        assert (await client.info("server"))["redis_version"] == OLD
        assert await dump_digest(engine, old.host, old.container) == seen["digest"]
        assert await client.dbsize() == 1000 and (await client.config_get("save"))["save"] == RULES
        assert await client.set("after the undo", "1")
        [node] = await engine.runtime.nodes(**{"redis-addons.addon": addon})
        assert node.container == old.container
        docker = engine.runtime.client(old.host)
        volumes = {v["Name"] for v in (await docker.volumes.list())["Volumes"] if addon in v["Name"]}
        assert volumes == {old_volume, f"{old_volume}-config"}  # the new node's removal left the volume it ran on

        monkeypatch.undo()
        upgrading = await engine.database_version.upgrade(app_name, addon, NEW)
        assert (await engine.wait_for_operation(upgrading["operation_id"], timeout=240))["status"] == "succeeded"
        await client.aclose()
        client = redis.from_url(url)
        assert (await client.info("server"))["redis_version"] == NEW
        assert await client.dbsize() == 1001 and (await client.config_get("save"))["save"] == RULES
        assert await client.set("after the upgrade", "1")
        [new] = await engine.runtime.nodes(**{"redis-addons.addon": addon})
        assert new.container != old.container and await data_volume(engine, new.host, new.container) == old_volume
        try:
            await docker.containers.get(old.container)
            raise AssertionError(f"{old.container} should be removed")
        except aiodocker.DockerError as e:
            assert e.status == 404
        await client.aclose()
    finally:
        await remove_everything_of(app_name)
