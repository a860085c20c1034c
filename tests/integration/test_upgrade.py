"""Engine upgrades of a Starter addon on real Docker and real servers (reference, "Database Upgrade"):
every allowed step of the catalogue, one after the other on one addon holding 10,000 keys of five types
in all 5 databases and keys with a TTL, through the library (the CLI and the API: test_database_version.py);
what the path does not allow is refused in the rule's words, and nothing changes. The steps onto Debian's
builds each on an addon of its own: Redis 7 -> the Redis 8 branch, an addon forcing TLS onto Valkey 8.1 with
TLS (then, TLS no longer forced, onto the latest 8.1 patch), and bookworm-backports' Valkey 8.0 (retired)
onto Valkey 8.1."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import pytest
import redis.asyncio as redis

from domain.catalog import VersionCatalog
from domain.errors import UpgradeNotAllowed, VersionRetired
from domain.upgrade_path import upgrades
from engine import build
from tests.integration import data
from tests.integration.conftest import remove_everything_of, settings_for
from tests.integration.test_force_tls import answers

STEPS = ["6.2.14", "7.0.15", "8.1.8", "9.1.2"]  # from 6.2.7: its patch, Redis 7, Valkey 8, Valkey 9
EXPIRING = {f"session:{i}": f"s{i}" for i in range(50)}


async def ttls(url: str) -> list[int]:
    client = redis.from_url(url, db=3)
    try:
        return [await client.ttl(name) for name in EXPIRING]
    finally:
        await client.aclose()


async def test_a_starter_addon_takes_every_step_of_the_path_with_its_data(engine, app_name, restart_hook):
    hook, restarts = await restart_hook(200)
    await engine.register_app(app_name, restart="hook", url=hook)
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
        assert restarts[-1] == {"app": app_name, "environment": await engine.environment(app_name)}
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


async def a_starter_addon_with_data(engine, app: str, keys: int, version: str | None = None) -> tuple[str, str, dict]:
    """A Starter addon (7.0.15, the default, or `version`) holding `keys` keys of five types in all 5 databases:
    (addon, url, data)."""
    requested = await engine.add_addon(app, "redis-starter-256", version=version)
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    url = (await engine.environment(app))["REDIS_URL"]
    known = data.expected(keys)
    await data.write(url, known)
    return requested["addon"], url, known


async def upgraded(engine, app: str, addon: str, version: str | None = None) -> dict:
    upgrading = await engine.database_version.upgrade(app, addon, version)
    operation = await engine.wait_for_operation(upgrading["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    return upgrading


async def server_version(url: str) -> str:
    server = redis.from_url(url)
    try:
        info = await server.info("server")
    finally:
        await server.aclose()
    return info.get("valkey_version", info["redis_version"])


async def test_redis_7_takes_the_redis_8_branch_with_its_data_and_is_never_offered_valkey_again(engine, app_name):
    """Debian trixie's Redis 8.0: RDB 12, which no Valkey reads; the step says so (the CLI asks to confirm it:
    tests/integration/test_database_version.py)."""
    addon, url, known = await a_starter_addon_with_data(engine, app_name, 2_000)
    offered = (await engine.database_version.show(app_name, addon))["upgrades"]
    assert [(u["version"], u["engine"], u["tls"]) for u in offered] == [("8.1.8", "valkey", False),
                                                                         ("8.1.1", "valkey", True), ("8.0.2", "redis", True)]
    assert "writes RDB format 12, which Valkey cannot read" in offered[2]["note"]

    upgrading = await upgraded(engine, app_name, addon, "8.0.2")
    assert (upgrading["to"], upgrading["engine"], upgrading["kind"]) == ("8.0.2", "redis", "major")
    assert upgrading["note"] == offered[2]["note"]
    assert (await engine.addon(app_name, addon))["version"] == "8.0.2"
    assert (await engine.environment(app_name))["REDIS_URL"] == url
    assert await server_version(url) == "8.0.2"
    assert await data.read(url, known) == known

    shown = await engine.database_version.show(app_name, addon)
    assert shown["upgrades"] == [] and shown["tls"] is True
    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(app_name, addon, "8.1.8")
    assert refused.value.rule == "upgrade-within-engine" and "redis 8.0.2 is not moved to valkey" in str(refused.value)


async def test_an_addon_forcing_tls_goes_onto_debians_valkey_8_1_then_off_tls_onto_the_latest_patch(engine, app_name,
                                                                                                   tmp_path):
    """Forcing TLS, Redis 7.0.15's next step is Debian trixie's Valkey 8.1.1 (TLS), not the later wheel 8.1.8
    (no TLS): a TLS client verified with the installation's CA reads the data on it. Once TLS is no longer
    forced, 8.1.1 takes 8.1.8, the latest of its major."""
    addon, plain_url, known = await a_starter_addon_with_data(engine, app_name, 2_000)
    forced = await engine.database.change(app_name, addon, "force-tls", True)
    assert (await engine.wait_for_operation(forced["operation_id"], timeout=120))["status"] == "succeeded"
    assert [u["version"] for u in (await engine.database_version.show(app_name, addon))["upgrades"]] == ["8.1.1", "8.0.2"]
    with pytest.raises(UpgradeNotAllowed) as refused:
        await engine.database_version.upgrade(app_name, addon, "8.1.8")
    assert refused.value.rule == "upgrade-keeps-tls"

    assert (await upgraded(engine, app_name, addon))["to"] == "8.1.1"  # the next allowed step
    ca = tmp_path / "ca.pem"
    ca.write_text(engine.certificates.certificate_pem)
    tls_url = (await engine.environment(app_name))["REDIS_URL"]
    assert tls_url.startswith("rediss://") and "?" not in tls_url
    verified = f"{tls_url}?ssl_ca_certs={quote(str(ca))}&ssl_check_hostname=true"  # redis-py reads them from the URL
    assert await server_version(verified) == "8.1.1"
    assert await data.read(verified, known) == known
    assert not await answers(plain_url)  # plaintext still refused on the new build

    unforced = await engine.database.change(app_name, addon, "force-tls", False)
    assert (await engine.wait_for_operation(unforced["operation_id"], timeout=120))["status"] == "succeeded"
    assert (await upgraded(engine, app_name, addon))["to"] == "8.1.8"  # a patch: Debian's 8.1 is the lower one
    plain_url = (await engine.environment(app_name))["REDIS_URL"]
    assert await server_version(plain_url) == "8.1.8"
    assert await data.read(plain_url, known) == known


async def test_an_addon_on_the_retired_valkey_8_0_takes_valkey_8_1_with_its_data(home, app_name, monkeypatch):
    """Valkey 8.0.1 from bookworm-backports is retired (no update there since, known vulnerabilities): no new
    addon runs it. One made before it was retired (an engine whose catalogue still offers it) is offered the
    latest 8.1 and takes it with its data."""
    shipped = VersionCatalog.load()
    with pytest.raises(VersionRetired):
        shipped.provisionable("8.0.1")
    offered = VersionCatalog([replace(v, retired=False) for v in shipped], shipped.default.version)
    monkeypatch.setattr(VersionCatalog, "load", classmethod(lambda cls, *args: offered))
    apps = {app_name: ("8.1.8",), f"{app_name}-b": ("8.1.1", "8.1.8")}  # its latest 8.1, or Debian's 8.1 (TLS) first
    try:
        async with build(settings_for(home)) as engine:
            for app, path in apps.items():
                requested = await engine.add_addon(app, "redis-starter-256", version="8.0.1")
                assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
                addon, url = requested["addon"], (await engine.environment(app))["REDIS_URL"]
                known = data.expected(2_000)
                await data.write(url, known)
                assert await server_version(url) == "8.0.1"
                assert [(u["version"], u["kind"]) for u in (await engine.database_version.show(app, addon))["upgrades"]] \
                    == [("8.1.8", "minor"), ("8.1.1", "minor")]  # the latest, or the latest with TLS
                for version in path:
                    assert (await upgraded(engine, app, addon, version))["to"] == version
                    assert await server_version(url) == version
                    assert await data.read(url, known) == known
    finally:
        for app in apps:
            await remove_everything_of(app)


async def test_valkey_9_0_takes_its_latest_minor_with_its_data(engine, app_name):
    addon, url, known = await a_starter_addon_with_data(engine, app_name, 2_000, version="9.0.0")
    assert (await upgraded(engine, app_name, addon))["to"] == "9.1.2"
    assert await server_version(url) == "9.1.2"
    assert await data.read(url, known) == known


# The steps the tests above take, from each version: every step the shipped catalogue allows is among them.
TAKEN = {"6.2.7": {"6.2.14"}, "6.2.14": {"7.0.15"}, "7.0.15": {"8.1.8", "8.1.1", "8.0.2"}, "8.0.1": {"8.1.8", "8.1.1"},
         "8.1.1": {"8.1.8"}, "8.1.8": {"9.1.2"}, "9.0.0": {"9.1.2"}}


def test_every_step_the_catalogue_allows_is_taken_by_a_test_above():
    shipped = VersionCatalog.load()
    for build in shipped:
        for force_tls in (False, True) if build.tls else (False,):  # no addon forces TLS on a build without
            for step in upgrades(build, shipped, force_tls):
                assert step.version in TAKEN.get(build.version, set()), f"{build.version} -> {step.version}"
