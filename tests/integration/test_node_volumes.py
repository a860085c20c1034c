"""A node's configuration and certificates live on a volume beside its data: its container can be
deleted and made again on the same volumes, and it starts serving its data with its password and
TLS certificate as before (they were once in the container's root filesystem, lost with it)."""

from __future__ import annotations

import pytest
import redis.asyncio as redis
from aiodocker.exceptions import DockerError

from adapters.docker.runtime import config_volume
from domain.addon import Addon
from engine import build
from engine.nodes import CONFIG_DIR
from engine.ports import NodeSpec
from tests.integration.conftest import remove_everything_of, running_addon, settings_for
from tests.integration.test_force_tls import answers, eventually_answers


async def volume_exists(docker, name: str) -> bool:
    try:
        await docker.volumes.get(name)
        return True
    except DockerError as e:
        assert e.status == 404
        return False


@pytest.fixture
async def unwatched(home, app_name):
    """An engine whose node watcher is off: it would make the deleted container again itself, writing
    the configuration afresh, and the test would no longer prove anything about the volume."""
    try:
        async with build(settings_for(home, watch_interval_s=0)) as running:
            yield running
    finally:
        await remove_everything_of(app_name)


async def test_a_deleted_node_container_made_again_on_its_volumes_serves_its_data_password_and_tls(
        unwatched, app_name, tmp_path):
    engine = unwatched
    addon = await running_addon(engine, app_name)
    env = await engine.environment(app_name)
    client = redis.from_url(env["REDIS_URL"], decode_responses=True)
    await client.set("kept", "on the data volume")
    await client.save()
    await client.aclose()
    node = await engine.events.get(Addon.id_for(addon))
    docker = engine.runtime.client(node.host)
    info = await (await docker.containers.get(node.container)).show()
    mounts = {m["Destination"]: m["Name"] for m in info["Mounts"]}
    assert mounts == {"/data": node.volume, CONFIG_DIR: config_volume(node.volume)}
    labels = (await (await docker.volumes.get(config_volume(node.volume))).show())["Labels"]
    assert labels["redis-addons.app"] == app_name  # found and removed with the app's volumes

    await (await docker.containers.get(node.container)).delete(force=True)  # docker rm -f
    # Made again by the runtime with no file to write: whatever it runs with comes from the volumes.
    await engine.runtime.create_node(NodeSpec(
        host=node.host, container=node.container, volume=node.volume, image=info["Config"]["Image"],
        command=info["Config"]["Cmd"], config_dir=CONFIG_DIR, files={},
        memory_bytes=info["HostConfig"]["Memory"], labels=info["Config"]["Labels"]))
    await engine.runtime.start_node(node.host, node.container)

    assert await eventually_answers(env["REDIS_URL"])  # redis.conf: its ports and its password
    client = redis.from_url(env["REDIS_URL"], decode_responses=True)
    assert await client.get("kept") == "on the data volume"
    await client.aclose()
    ca = tmp_path / "ca.pem"
    ca.write_text(engine.certificates.certificate_pem)
    assert await answers(env["REDIS_TLS_URL"], ssl_ca_certs=str(ca))  # its certificate, verified with the CA
    refused = redis.from_url(env["REDIS_URL"].replace("default:", "default:x", 1))
    with pytest.raises(redis.AuthenticationError):  # the same password, not a server left open
        await refused.ping()
    await refused.aclose()

    removal = await engine.remove_addon(app_name, addon)
    assert (await engine.wait_for_operation(removal["operation_id"], timeout=60))["status"] == "succeeded"
    assert not await volume_exists(docker, node.volume)
    assert not await volume_exists(docker, config_volume(node.volume))


async def test_a_node_made_before_configuration_volumes_is_removed(engine, app_name):
    """Its configuration was in its root filesystem: no configuration volume to remove."""
    host = engine.runtime.hosts["host-a"]
    docker = engine.runtime.client(host.name)
    name, volume = f"redis-addons-{app_name}-old", f"redis-addons-{app_name}-old-data"
    labels = {"redis-addons.app": app_name}
    await docker.volumes.create({"Name": volume, "Labels": labels})
    await docker.containers.create({
        "Image": "redis-addons/redis:7.0.15", "Cmd": ["/usr/local/bin/redis-server"], "Labels": labels,
        "HostConfig": {"NetworkMode": "host", "Mounts": [{"Type": "volume", "Source": volume, "Target": "/data"}]},
    }, name=name)
    try:
        await engine.runtime.remove_node(host.name, name, volume)
        assert not await volume_exists(docker, volume)
        with pytest.raises(DockerError):
            await docker.containers.get(name)
        await engine.runtime.remove_node(host.name, name, volume)  # again: nothing left, nothing to complain about
    finally:
        await remove_everything_of(app_name)
