"""Existing installations keep working across releases (issue 10): a data directory written by the
release a79d645 (run from a git worktree of that commit) is taken over by the current code, which
finishes the operation the release left unfinished, shows every addon, variable, setting and
backup as the release did, and goes on operating addons it did not make."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile

import pytest
import redis.asyncio as redis

from engine import build
from tests.integration.conftest import containers_of, remove_everything_of, settings_for, volumes_of
from tests.integration.old_release import (ROLES, ReleaseMissing, check_release_present, make_old_data_directory,
                                           release_worktree)
from tests.integration.old_release_driver import known_data, read_data

# What `addons` shows of an addon, and where it runs.
SHOWN = ("name", "app", "plan", "version", "status", "host", "address", "port", "tls_port", "failure")
SETTINGS = ("rdb", "aof", "cache_mode", "force_tls", "tls_port")


def shown(rows: list[dict]) -> list[dict]:
    return [{k: r[k] for k in SHOWN} for r in rows]


async def data_at(url: str, addon: str, ca_file: str) -> dict:
    return await asyncio.to_thread(read_data, url, addon, ca_file)


async def answers(url: str, **tls) -> bool:
    client = redis.from_url(url, socket_connect_timeout=2, **tls)
    try:
        return await client.ping()
    except (redis.ConnectionError, OSError):
        return False
    finally:
        await client.aclose()


async def test_the_current_engine_takes_over_a_data_directory_of_the_last_release(tmp_path, app_name):
    home = tmp_path / "home"
    try:
        try:
            check_release_present()
        except ReleaseMissing as missing:
            pytest.fail(str(missing))  # not a skip: without the release, nothing guards old installations
        with release_worktree(tmp_path) as tree:
            made = make_old_data_directory(tree, home, app_name)
        old, ca = made["addons"], made["ca_file"]

        async with build(settings_for(home)) as engine:
            # The release's plan change, killed after start_new, is finished at start.
            crashed = old["crash"]
            finished = await engine.wait_for_operation(crashed["change"]["operation_id"], timeout=30)
            assert finished["status"] == "succeeded", finished
            assert [s["status"] for s in finished["steps"]] == ["succeeded"] * 7, finished
            [row] = await engine.addons(crashed["app"])
            assert (row["plan"], row["status"]) == ("redis-starter-256", "running")
            assert row["host"] != crashed["rows"][0]["host"]
            assert len(await containers_of(crashed["addon"])) == 1
            url = (await engine.environment(crashed["app"]))["REDIS_URL"]
            assert await data_at(url, crashed["addon"], ca) == known_data(crashed["addon"])

            # Every other addon as the release showed it: listing, variables, settings, data.
            for role in ROLES:
                if role == "crash":
                    continue
                before = old[role]
                assert shown(await engine.addons(before["app"])) == shown(before["rows"]), role
                environment = await engine.environment(before["app"])
                assert environment == before["environment"], role
                if role == "removed":
                    assert before["rows"][0]["status"] == "removed" and environment == {}
                    continue
                settings = await engine.database.show(before["app"], before["addon"])
                assert {k: settings[k] for k in SETTINGS} == {k: before["settings"][k] for k in SETTINGS}, role
                assert await data_at(environment["REDIS_URL"], before["addon"], ca) == known_data(before["addon"]), role
            assert old["moved"]["rows"][0]["plan"] == "redis-starter-256"
            assert (await engine.app(old["moved"]["app"]))["restart"] == {"kind": "none"}
            assert old["backed"]["settings"]["aof"] and old["pretls"]["environment"]["REDIS_TLS_URL"]

            # The backup: listed, downloadable, the very archive the release recorded.
            backed = old["backed"]
            backup = backed["backup"]
            [listed] = await engine.backups.list(backed["app"], backed["addon"])
            assert (listed["id"], listed["status"], listed["kind"]) == (backup["id"], "done", "manual")
            row = await engine.backups.downloadable(backed["app"], backed["addon"], backup["id"])
            archive = b"".join([chunk async for chunk in engine.backups.read_archive(row)])
            assert len(archive) == backup["size"] and hashlib.sha256(archive).hexdigest() == backup["sha256"]
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                assert tar.getnames() == ["dump.rdb"]
            schedule = await engine.backups.schedule(backed["app"], backed["addon"])
            assert (schedule["hour"], schedule["minute"], schedule["zone"]) == (4, 0, "UTC")

            # Force TLS is still on: the plaintext port refuses, the rediss:// URL answers.
            forced = old["forced"]
            assert forced["environment"]["REDIS_URL"].startswith("rediss://")
            assert not await answers(forced["plaintext_url"])
            assert await answers(forced["environment"]["REDIS_URL"], ssl_ca_certs=ca)

            # A plan change of an addon the release made, data intact.
            running = old["running"]
            change = await engine.change_plan(running["app"], running["addon"], "redis-starter-256")
            assert (await engine.wait_for_operation(change["operation_id"], timeout=30))["status"] == "succeeded"
            [row] = await engine.addons(running["app"])
            assert (row["plan"], row["status"]) == ("redis-starter-256", "running")
            url = (await engine.environment(running["app"]))["REDIS_URL"]
            assert url != running["environment"]["REDIS_URL"]
            assert await data_at(url, running["addon"], ca) == known_data(running["addon"])

            # The read models the release built, then this code extended, are what this code rebuilds from the log.
            replayed = await engine.replay()
            assert replayed["matches"], replayed

            for role in ROLES:
                if role != "removed":
                    removal = await engine.remove_addon(old[role]["app"], old[role]["addon"])
                    assert (await engine.wait_for_operation(removal["operation_id"], timeout=30))["status"] == "succeeded", role
        for before in old.values():
            assert await containers_of(before["addon"]) == [] and await volumes_of(before["addon"]) == []
    finally:
        for role in ROLES:
            await remove_everything_of(f"{app_name}-{role}")
