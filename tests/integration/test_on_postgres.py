"""The engine on PostgreSQL (a database of its own, tests/postgres_server.py) through every kind of operation
it knows, provisioning to removal, on the real Docker hosts: a Starter addon's whole life and a Business
addon's, walked side by side (one engine places them both; the sweeps that look at every addon, TLS where
missing and certificate renewal, run between the walks), plus a Sandbox addon recorded as before TLS was
served. Each step checks what a user sees: the data kept, the URL answering, the plan and version shown.
The events are PostgreSQL's rows; an engine started again on the same database, its read models made anew
from there, lists every addon and removes them. The same operations on SQLite: the other integration tests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from domain.addon import Addon
from engine import build
from engine.settings import load_hosts, store_env
from tests.conftest import HOSTS_FILE
from tests.integration import data
from tests.integration.business import eventually, nodes_by_role, primary_of, watcher_round
from tests.integration.conftest import containers_of, remove_everything_of, settings_for
from tests.integration.test_backups import backup_now
from tests.integration.test_business_self_healing import container, replaced
from tests.integration.test_force_tls import answers
from tests.integration.test_maintenance import IMAGE, rebuild, tagged_for_the_test
from tests.integration.test_tls_serving import an_addon_made_before_tls

TABLE = "redisaddons_events"
KNOWN = data.expected(500)


async def done(engine, requested: dict, kind: str, timeout: float = 240) -> dict:
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=timeout)
    assert (operation["kind"], operation["status"]) == (kind, "succeeded"), operation
    return operation


async def done_or_asked_again(engine, ask, kind: str, timeout: float = 300) -> dict:
    """As `done`; once more, as its error says to, when a backup taken on a replica was overwritten by a full
    resynchronisation as it was read (the operation then undone whole: the cluster as it was)."""
    requested = await ask()
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=timeout)
    if operation["status"] != "succeeded" and "take the backup again" in str(operation):
        requested = await ask()
    return await done(engine, requested, kind, timeout)


async def url_of(engine, app: str) -> str:
    return (await engine.environment(app))["REDIS_URL"]


async def data_kept(engine, app: str) -> str:
    url = await url_of(engine, app)
    for attempt in (1, 2):  # HAProxy reloaded by the last step may cut a connection it held once
        try:
            assert await data.read(url, KNOWN) == KNOWN
            return url
        except redis.ConnectionError:
            if attempt == 2:
                raise
    return url


async def shown(engine, app: str, addon: str) -> tuple[str, str, str]:
    row = await engine.addon(app, addon)
    return row["plan"], row["version"], row["status"]


class Barrier:
    """The two walks meet here: `sweep`, over every addon, runs while neither is in the middle of an operation."""

    def __init__(self, sweep, parties: int = 2):
        self.sweep, self.parties, self.arrived, self.passed = sweep, parties, 0, asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == self.parties:
            await self.sweep()
            self.passed.set()
        await self.passed.wait()


async def starter_life(engine, app: str, meet: list[Barrier], ca, hook: str) -> str:
    await engine.register_app(app, restart="hook", url=hook)  # a rotation restarts the app onto the new password
    requested = await engine.add_addon(app, "redis-starter-256")
    addon = requested["addon"]
    await done(engine, requested, "provision", timeout=120)
    await data.write(await url_of(engine, app), KNOWN)
    await meet[0].wait()  # TLS served where missing; the image of 7.0.15 rebuilt

    await done(engine, await engine.maintenance.start(app, addon), "maintenance")
    url = await data_kept(engine, app)
    await done(engine, await engine.database.change(app, addon, "aof", True), "change_settings")
    made = await backup_now(engine, app, addon)
    assert made["operation"]["status"] == "succeeded" and made["backup"]["status"] == "done", made
    await data.write(url, {0: {"after-the-backup": "gone once restored"}})
    await done(engine, await engine.backups.restore(app, addon, made["backup"]["id"]), "restore")
    await data_kept(engine, app)
    await done(engine, await engine.change_plan(app, addon, "redis-starter-512"), "change_plan")
    assert await shown(engine, app, addon) == ("redis-starter-512", "7.0.15", "running")
    url = await data_kept(engine, app)
    await done(engine, await engine.database.change(app, addon, "force-tls", True), "enable_force_tls")
    tls_url = (await engine.environment(app))["REDIS_TLS_URL"]
    assert not await answers(url) and await answers(tls_url, ssl_ca_certs=ca)  # plaintext refused
    await meet[1].wait()  # certificates renewed

    assert await answers(tls_url, ssl_ca_certs=ca)  # the renewed certificate verifies with the CA
    await done(engine, await engine.database.change(app, addon, "force-tls", False), "disable_force_tls")
    old_password = urlsplit(await data_kept(engine, app)).password
    await done(engine, await engine.credentials.rotate(app, addon), "rotate_credentials")
    url = await data_kept(engine, app)
    assert urlsplit(url).password != old_password and not await answers(url.replace(urlsplit(url).password,
                                                                                     old_password))
    await done(engine, await engine.change_plan(app, addon, "redis-business-256"), "change_to_business", timeout=300)
    assert {role: len(n) for role, n in (await nodes_by_role(engine, app, addon)).items()} == \
        {"data": 2, "sentinel": 3, "proxy": 2}
    await data_kept(engine, app)
    await done(engine, await engine.change_plan(app, addon, "redis-starter-256"), "change_to_starter", timeout=300)
    assert await shown(engine, app, addon) == ("redis-starter-256", "7.0.15", "running")
    await data_kept(engine, app)
    upgrading = await engine.database_version.upgrade(app, addon, "8.0.2")
    await done(engine, upgrading, "upgrade")
    assert await shown(engine, app, addon) == ("redis-starter-256", "8.0.2", "running")
    await data_kept(engine, app)
    return addon


async def business_life(engine, app: str, meet: list[Barrier]) -> str:
    requested = await engine.add_addon(app, "redis-business-256", version="6.2.14")
    addon = requested["addon"]
    await done(engine, requested, "provision_cluster")
    await data.write(await url_of(engine, app), KNOWN)
    # 7.0.15 does not follow 6.2 as a replica in this engine's catalogue: the data moves through a safety backup.
    await done_or_asked_again(engine, lambda: engine.database_version.upgrade(app, addon, "7.0.15"),
                              "upgrade_cluster_stopped")
    assert await shown(engine, app, addon) == ("redis-business-256", "7.0.15", "running")
    await data_kept(engine, app)
    await meet[0].wait()

    await done(engine, await engine.maintenance.start(app, addon), "maintenance_cluster", timeout=300)
    await data_kept(engine, app)
    nodes = await nodes_by_role(engine, app, addon)
    replica = next(n for n in nodes["data"] if not n["is_primary"])
    await (await container(engine, replica)).delete(force=True)  # lost: the watcher's rounds replace it
    await replaced(engine, app, addon, replica, timeout=180)
    await eventually(lambda: running(engine, app, addon), timeout=60)
    await done(engine, await engine.change_plan(app, addon, "redis-business-512"), "change_cluster_plan", 300)
    assert await shown(engine, app, addon) == ("redis-business-512", "7.0.15", "running")
    url = await data_kept(engine, app)
    made = await done_or_asked_again(engine, lambda: engine.backups.create(app, addon), "backup")
    [backup] = [b for b in await engine.backups.list(app, addon) if b["status"] == "done" and b["kind"] == "manual"]
    await data.write(url, {0: {"after-the-backup": "gone once restored"}})
    # A backup read on the replica may have cost it a resynchronisation, the cluster told degraded meanwhile:
    # a restore waits for it to be redundant again (the watcher's rounds are this test's to run).
    await eventually(lambda: running(engine, app, addon), timeout=60)
    await done(engine, await engine.backups.restore(app, addon, backup["id"]), "restore_cluster", 300)
    await data_kept(engine, app)
    await meet[1].wait()

    await done_or_asked_again(engine, lambda: engine.database_version.upgrade(app, addon, "8.0.2"), "upgrade_cluster")
    assert await shown(engine, app, addon) == ("redis-business-512", "8.0.2", "running")
    assert {n["version"] for n in (await nodes_by_role(engine, app, addon))["data"]} == {"8.0.2"}
    assert primary_of(await nodes_by_role(engine, app, addon))["state"] == "running"
    await data_kept(engine, app)
    return addon


async def running(engine, app: str, addon: str) -> bool:
    await watcher_round(engine)
    return (await engine.addon(app, addon))["status"] == "running"


@pytest.fixture
async def test_image():
    """7.0.15 run from a tag of this test's own (the shared image at first), rebuilt mid-test for maintenance."""
    hosts = [h.name for h in load_hosts(HOSTS_FILE)]
    async with tagged_for_the_test(hosts):
        yield hosts


@pytest.mark.timeout(900)  # about 3 minutes alone; more with other tests on the two cores
async def test_every_kind_of_operation_on_postgresql_then_an_engine_started_again_sees_every_addon(
        postgres, tmp_path, app_name, test_image, restart_hook):
    env = postgres.new_database("every_kind")
    dbname, home = env["REDIS_ADDONS_POSTGRES_DBNAME"], tmp_path / "home"
    settings = settings_for(home, store_env=store_env(env, home))
    apps = {"starter": f"{app_name}-s", "business": f"{app_name}-b", "sandbox": f"{app_name}-t"}
    ca = tmp_path / "ca.pem"
    hook, restarts = await restart_hook(200)
    try:
        async with build(settings) as engine:
            kinds = set(engine.coordinator._sagas)
            catalogue = engine.versions._versions  # this engine's: 7.0.15 on the test's tag, not rolling from 6.2
            catalogue["7.0.15"] = replace(catalogue["7.0.15"], image=IMAGE, rolling_from=())
            ca.write_text(engine.certificates.certificate_pem)
            sandbox = await an_addon_made_before_tls(engine, apps["sandbox"])

            async def tls_where_missing_and_a_rebuilt_image():
                assert await engine.missing_tls.serve_where_missing() == [sandbox]
                [serving] = [o for o in await engine.operations(sandbox) if o["kind"] == "serve_tls"]
                await done(engine, {"operation_id": serving["id"]}, "serve_tls")
                assert (await engine.environment(apps["sandbox"]))["REDIS_TLS_URL"].startswith("rediss://")
                for host in test_image:
                    await rebuild(host)

            async def renewals():
                later = datetime.now(timezone.utc) + timedelta(days=810)  # 825-day certificates: due
                renewing = await engine.certificate_renewals.renew_due(later, force_check=True)
                assert set(renewing) >= {sandbox} and len(renewing) >= 2, renewing
                for name in renewing:
                    [renewal] = [o for o in await engine.operations(name) if o["kind"] == "renew_certificate"]
                    await done(engine, {"operation_id": renewal["id"]}, "renew_certificate")

            meet = [Barrier(tls_where_missing_and_a_rebuilt_image), Barrier(renewals)]
            async with asyncio.TaskGroup() as walks:  # one failing cancels the other
                starter = walks.create_task(starter_life(engine, apps["starter"], meet, str(ca), hook))
                business = walks.create_task(business_life(engine, apps["business"], meet))
            starter, business = starter.result(), business.result()
            ran = {o["kind"] for o in await engine.operations()}
            assert restarts and {r["app"] for r in restarts} == {apps["starter"]}  # told of each new URL
            count = int(postgres.psql(f"SELECT count(*) FROM {TABLE}", dbname))
            assert int(postgres.psql(f"SELECT max(notification_id) FROM {TABLE}", dbname)) == \
                await engine.events.max_position()
        assert ran >= kinds - {"remove"}, kinds - ran
        for name in (starter, business, sandbox):
            assert int(postgres.psql(f"SELECT count(*) FROM {TABLE} WHERE originator_id = "
                                     f"'{Addon.id_for(name)}'", dbname)) > 3
        assert count > 200

        (home / "read-models.sqlite").unlink()  # made anew from PostgreSQL's log
        async with build(settings) as again:
            assert await shown(again, apps["starter"], starter) == ("redis-starter-256", "8.0.2", "running")
            assert await shown(again, apps["business"], business) == ("redis-business-512", "8.0.2", "running")
            assert (await shown(again, apps["sandbox"], sandbox))[2] == "running"
            assert await data_kept(again, apps["starter"]) and await data_kept(again, apps["business"])
            removals = [await again.remove_addon(apps[kind], name)
                        for kind, name in (("starter", starter), ("business", business), ("sandbox", sandbox))]
            for requested in removals:
                await done(again, requested, "remove")
            ran = {o["kind"] for o in await again.operations()}
        assert ran == kinds, kinds ^ ran  # every kind the engine knows, each on PostgreSQL
        for name in (starter, business, sandbox):
            assert await containers_of(name) == []
        assert int(postgres.psql(f"SELECT count(*) FROM {TABLE}", dbname)) > count
    finally:
        for app in apps.values():
            await remove_everything_of(app)
