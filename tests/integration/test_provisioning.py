"""Provisioning and removal of a starter addon on the real local Docker engines."""

from __future__ import annotations

import json
import re

import pytest
import redis.asyncio as redis
from redis.exceptions import AuthenticationError, ResponseError

from tests.integration.conftest import containers_of, volumes_of

MiB = 1024 * 1024


async def provision(engine, app, plan="redis-starter-1024", **kwargs):
    requested = await engine.add_addon(app, plan, **kwargs)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=90)
    assert operation["status"] == "succeeded", operation
    return requested["addon"]


async def test_a_starter_addon_answers_at_its_published_url_with_the_reference_configuration(engine, app_name):
    addon = await provision(engine, app_name)

    env = await engine.environment(app_name)
    assert env["REDIS_URL"] == env["SCALINGO_REDIS_URL"]
    client = redis.from_url(env["REDIS_URL"], decode_responses=True)
    try:
        assert await client.set("greeting", "hello")
        assert await client.get("greeting") == "hello"
        config = await client.config_get("*")
        assert config["databases"] == "5"
        assert config["timeout"] == "150"
        assert config["save"] == "900 1 300 10 60 10000"
        assert int(config["maxmemory"]) == 1024 * MiB
        assert config["maxmemory-policy"] == "noeviction"
        acl = await client.acl_list()
        assert len(acl) == 1 and acl[0].startswith("user default on ")
        assert "~*" in acl[0] and "&*" in acl[0] and "+@all" in acl[0]
        await client.select(4)
        with pytest.raises(ResponseError):
            await client.select(5)
    finally:
        await client.aclose()

    [row] = await engine.addons(app_name)
    assert (row["addon"] if "addon" in row else row["name"]) == addon
    assert row["plan"] == "redis-starter-1024" and row["status"] == "running"


async def test_the_password_is_long_url_safe_and_a_wrong_one_is_refused(engine, app_name):
    await provision(engine, app_name, plan="redis-starter-256")
    url = (await engine.environment(app_name))["REDIS_URL"]
    password = re.match(r"redis://default:([^@]+)@", url).group(1)
    assert len(password) >= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", password)

    wrong = redis.from_url(url.replace(password, password[:-4] + "AAAA"))
    with pytest.raises(AuthenticationError):
        await wrong.ping()
    await wrong.aclose()
    anonymous = redis.from_url(re.sub(r"default:[^@]+@", "", url))
    with pytest.raises((AuthenticationError, ResponseError)):
        await anonymous.get("k")
    await anonymous.aclose()


async def test_the_password_never_appears_in_events_or_in_the_container_definition(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    url = (await engine.environment(app_name))["REDIS_URL"]
    password = re.match(r"redis://default:([^@]+)@", url).group(1)

    events = json.dumps(await engine.event_page(0, 1000))
    assert password not in events
    [container] = await containers_of(addon)
    assert password not in json.dumps(container)


async def test_the_container_has_the_plan_memory_limit_host_networking_and_labels(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-512")
    [container] = await containers_of(addon)
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["HostConfig"]["Memory"] >= 512 * MiB
    labels = container["Config"]["Labels"]
    assert labels["redis-addons.addon"] == addon and labels["redis-addons.app"] == app_name
    assert labels["redis-addons.operation"]
    row = await engine.addon(app_name, addon)
    assert row["address"].startswith("127.")


async def test_removal_leaves_no_container_volume_or_variable(engine, app_name):
    addon = await provision(engine, app_name, plan="redis-starter-256")
    assert await containers_of(addon) and await volumes_of(addon)

    removal = await engine.remove_addon(app_name, addon)
    operation = await engine.wait_for_operation(removal["operation_id"], timeout=60)

    assert operation["status"] == "succeeded"
    assert await containers_of(addon) == []
    assert await volumes_of(addon) == []
    assert await engine.environment(app_name) == {}
    [row] = await engine.addons(app_name)
    assert row["status"] == "removed"


async def test_addons_go_to_the_host_with_the_most_free_memory_on_distinct_ports(engine, app_name):
    first = await provision(engine, app_name, plan="redis-starter-1024")
    second = await provision(engine, app_name, plan="redis-starter-256")
    a, b = await engine.addon(app_name, first), await engine.addon(app_name, second)
    assert a["host"] != b["host"], "the second addon should go to the host with more free memory"
    assert (a["address"], a["port"]) != (b["address"], b["port"])


async def test_ports_stay_distinct_across_an_engine_restart(home, app_name):
    from engine import build
    from tests.integration.conftest import remove_everything_of, settings_for

    try:
        async with build(settings_for(home)) as engine:
            first = await provision(engine, app_name, plan="redis-starter-256")
            before = await engine.addon(app_name, first)
        async with build(settings_for(home)) as engine:
            second = await provision(engine, app_name, plan="redis-starter-256")
            third = await provision(engine, app_name, plan="redis-starter-256")
            placed = [await engine.addon(app_name, name) for name in (first, second, third)]
        assert placed[0] == before
        assert len({(p["host"], p["port"]) for p in placed}) == 3
    finally:
        await remove_everything_of(app_name)


async def test_a_port_taken_by_another_installation_on_the_same_host_is_skipped(tmp_path, app_name):
    from engine import build
    from tests.integration.conftest import remove_everything_of, settings_for

    try:
        async with build(settings_for(tmp_path / "one")) as one, build(settings_for(tmp_path / "two")) as two:
            first = await one.addon(app_name, await provision(one, app_name, plan="redis-starter-256"))
            second = await two.addon(app_name, await provision(two, app_name, plan="redis-starter-256"))
        assert (first["host"], first["port"]) != (second["host"], second["port"])
    finally:
        await remove_everything_of(app_name)
