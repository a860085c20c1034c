"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade"), over the
in-memory ports: the next allowed upgrade first, none onto a build without TLS while the addon forces
TLS (saying so), a line naming the upgrade a retired build must take, and a Business addon's data nodes
each with the build it runs."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from adapters.cli.database_version import database_version
from domain.catalog import VersionCatalog
from domain.errors import UnknownAddon
from engine.clusters import cluster_of
from engine.database_version import version_block
from tests.unit.engine_fakes import APP, THREE_HOSTS, World, a_running_addon, finished, shut_down, started_engine

VALKEY_8 = {"version": "8.1.8", "engine": "valkey", "kind": "major", "tls": False,
            "note": "Valkey 8.1.8 is built without TLS: the addon stops serving TLS and its TLS URL goes away"}
VALKEY_8_TLS = {"version": "8.1.1", "engine": "valkey", "kind": "major", "tls": True, "note": ""}
REDIS_8 = {"version": "8.0.2", "engine": "redis", "kind": "major", "tls": True,
           "note": "Redis 8.0.2 writes RDB format 12, which Valkey cannot read: once on it, the addon is never offered "
                   "a Valkey version"}


async def test_a_redis_7_addon_is_offered_valkey_8_and_shows_its_node(world, engine):
    addon = await a_running_addon(world, engine)
    shown = await engine.database_version.show(APP, "redis")
    assert shown["addon"] == addon.name
    assert (shown["engine"], shown["version"], shown["tls"], shown["retired"]) == ("redis", "7.0.15", True, False)
    assert shown["upgrades"] == [VALKEY_8, VALKEY_8_TLS, REDIS_8] and shown["advice"] is None
    assert shown["nodes"] == [{"id": addon.container, "version": "7.0.15", "is_primary": True, "build": "current"}]
    assert shown["build_outdated"] is False and shown["maintenance"] is None


async def test_forcing_tls_offers_the_builds_with_tls_only(world, engine):
    addon = await a_running_addon(world, engine)
    assert (await finished(engine, await engine.database.change(APP, addon.name, "force-tls", True)))["status"] == "succeeded"
    shown = await engine.database_version.show(APP, addon.name)
    assert shown["force_tls"] is True and shown["upgrades"] == [VALKEY_8_TLS, REDIS_8] and shown["advice"] is None


def test_forcing_tls_holds_back_the_upgrade_built_without_tls_and_says_why():
    shown = version_block("8.1.1", VersionCatalog.load(), "the addon forces TLS")
    assert shown["upgrades"] == []
    assert shown["advice"] == ("no upgrade available: the addon forces TLS, and the upgrade otherwise available "
                               "(8.1.8) is built without TLS")


async def test_an_older_patch_goes_to_the_latest_of_its_major_first(world, engine):
    await finished(engine, await engine.add_addon(APP, "redis-starter-256", version="6.2.7"))
    shown = await engine.database_version.show(APP, "redis")
    assert [(u["version"], u["engine"], u["kind"]) for u in shown["upgrades"]] == [("6.2.14", "redis", "patch")]


async def test_an_unknown_addon_is_named(world, engine):
    await a_running_addon(world, engine)
    with pytest.raises(UnknownAddon, match="has no addon 'my-app-0000'"):
        await engine.database_version.show(APP, "my-app-0000")


def with_retired(*retired: str) -> VersionCatalog:
    catalogue = VersionCatalog.load()
    return VersionCatalog([replace(v, retired=v.version in retired) for v in catalogue], catalogue.default.version)


def test_a_retired_build_is_told_which_upgrade_to_take():
    shown = version_block("6.2.7", with_retired("6.2.7"), "")
    assert shown["retired"] is True and [u["version"] for u in shown["upgrades"]] == ["6.2.14"]
    assert shown["advice"] == "redis 6.2.7 is retired: upgrade to 6.2.14"


def test_a_retired_build_with_no_upgrade_says_so():
    shown = version_block("9.1.2", with_retired("9.1.2"), "")
    assert shown["upgrades"] == []
    assert shown["advice"] == "valkey 9.1.2 is retired and no upgrade is available: valkey 9.1.2 is the latest on its upgrade path"


async def test_a_business_addons_data_nodes_show_the_build_each_runs():
    world = World(hosts=THREE_HOSTS)
    try:
        engine = await started_engine(world)
        started = await engine.add_addon(APP, "redis-business-256")
        assert (await finished(engine, started))["status"] == "succeeded"
        cluster = await cluster_of(world.events, started["addon"])
        replica = next(n for n in cluster.live_nodes if n["role"] == "data" and n["id"] != cluster.primary)
        cluster.change_node_version(replica["id"], "8.1.8")  # as an upgrade's first step will
        await world.events.save(cluster)
        shown = await engine.database_version.show(APP, started["addon"])
        assert sorted((n["version"], n["is_primary"]) for n in shown["nodes"]) == [("7.0.15", True), ("8.1.8", False)]
        # Its nodes talk TLS to each other: a node of a build without TLS could not join them.
        assert shown["version"] == "7.0.15" and shown["upgrades"] == [VALKEY_8_TLS, REDIS_8]
    finally:
        await shut_down(world)


class Answering:
    """The API client, answering `database-version`'s one GET with `shown`."""

    def __init__(self, shown: dict):
        self.shown = shown

    def get(self, path: str) -> dict:
        assert path == "/v1/apps/my-app/addons/redis/version"
        return {"version": self.shown}


def test_the_cli_shows_each_data_node_the_redis_8_note_and_a_retired_builds_upgrade(capsys):
    block = version_block("6.2.7", with_retired("6.2.7"), "")
    block["upgrades"][0]["note"] = "Redis 8.2.1 writes RDB format 12, which Valkey cannot read"
    nodes = [{"id": "n0", "version": "6.2.7", "is_primary": True}, {"id": "n1", "version": "6.2.14", "is_primary": False}]
    assert database_version(Answering({"addon": "my-app-3030", **block, "force_tls": False, "nodes": nodes}),
                            SimpleNamespace(app="my-app", addon="redis")) == 0
    assert capsys.readouterr().out.splitlines() == [
        "-----> my-app-3030 runs Redis 6.2.7", "       TLS:       no", "       Retired:   yes",
        "       Data nodes:", "         n0  6.2.7 (primary)", "         n1  6.2.14",
        "       Upgrades available, the next one first:",
        "+---------+--------+-------+-----+", "| VERSION | ENGINE |  KIND | TLS |", "+---------+--------+-------+-----+",
        "| 6.2.14  | redis  | patch | no  |", "+---------+--------+-------+-----+",
        " !     6.2.14: Redis 8.2.1 writes RDB format 12, which Valkey cannot read",
        " !     Redis 6.2.7 is retired: upgrade to 6.2.14"]
