"""Security updates reaching running nodes, on real Docker and a real Redis server, through the HTTP API and
the CLI: a Starter addon made from its version's image, then that image rebuilt (the same binary, a changed
label: `docker commit`) and its tag moved; the listing and database-version show the addon outdated;
database-maintenance moves it onto the new image with its data, the URL unchanged and the app restarted;
then nothing is outdated and a second maintenance is refused. A Business addon's data nodes are replaced
one at a time onto the new image under a writer counting its acknowledged writes: none is lost.

The shared tags other tests use are never touched: the catalogue here points 7.0.15 at a tag of this
test's own (the same image at first), removed at the end with the rebuilt image."""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from dataclasses import replace

import aiodocker
import pytest
from aiohttp.test_utils import TestServer

from adapters.http.app import make_app
from domain.catalog import VersionCatalog
from engine import build
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration import data
from tests.integration.api_client import cli, session, token, url
from tests.integration.business import Writer, business_addon, eventually, nodes_by_role
from tests.integration.conftest import docker_of, remove_everything_of, settings_for

SHARED = "redis-addons/redis:7.0.15"
REPO, TAG = "redis-addons-test/redis", f"7.0.15-maintenance-{secrets.token_hex(3)}"
IMAGE = f"{REPO}:{TAG}"


def docker(host: str) -> aiodocker.Docker:
    return docker_of(next(h for h in load_hosts(HOSTS_FILE) if h.name == host))


async def rebuild(host: str) -> str:
    """The test's tag moved to a new image of the same files with one more label, as a rebuild does; its ID."""
    client = docker(host)
    try:
        made = await client.containers.create({"Image": IMAGE, "Cmd": ["/usr/local/bin/redis-server", "--version"]},
                                               name=f"rebuild-{TAG}")
        try:
            await made.commit(repository=REPO, tag=TAG, changes=f"LABEL redis-addons.test-rebuild={TAG}")
        finally:
            await made.delete(force=True)
        return (await client.images.inspect(IMAGE))["Id"]
    finally:
        await client.close()


async def running_image(host: str, container: str) -> str:
    client = docker(host)
    try:
        return (await (await client.containers.get(container)).show())["Image"]
    finally:
        await client.close()


@asynccontextmanager
async def tagged_for_the_test(hosts: list[str]):
    """The test's tag on every host (the shared image at first); at the end, the tag and the rebuilt image it
    names on the host that has one removed."""
    for host in hosts:
        client = docker(host)
        try:
            await client.images.tag(SHARED, REPO, tag=TAG)
        finally:
            await client.close()
    try:
        yield
    finally:
        for host in hosts:
            client = docker(host)
            try:
                await client.images.delete(IMAGE)
            except aiodocker.DockerError:
                pass
            finally:
                await client.close()


@pytest.fixture
async def engine(tmp_path, app_name, monkeypatch):
    """An engine whose catalogue runs 7.0.15 from this test's tag (on every host: placement picks one)."""
    async with tagged_for_the_test([h.name for h in load_hosts(HOSTS_FILE)]):
        catalogue = VersionCatalog.load()
        ours = VersionCatalog([replace(v, image=IMAGE) if v.version == "7.0.15" else v for v in catalogue],
                              catalogue.default.version)
        monkeypatch.setattr(VersionCatalog, "load", classmethod(lambda cls, *a, **k: ours))
        try:
            async with build(settings_for(tmp_path / "home")) as running:
                yield running
        finally:
            await remove_everything_of(app_name)


@pytest.fixture
async def server(engine):
    server = TestServer(make_app(engine))
    await server.start_server()
    yield server
    await server.close()


async def api(engine, server, method: str, path: str) -> tuple[int, dict]:
    async with session(engine) as http:
        async with http.request(method, url(server, path)) as response:
            return response.status, await response.json()


async def test_an_outdated_build_is_listed_and_moved_with_its_data_onto_the_current_one(
        engine, server, app_name, restart_hook, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    hook, restarts = await restart_hook(200)
    await engine.register_app(app_name, restart="hook", url=hook)
    requested = await engine.add_addon(app_name, "redis-starter-256")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    addon, [before] = requested["addon"], await engine.nodes(app_name, "redis")
    redis_url = (await engine.environment(app_name))["REDIS_URL"]
    known = data.expected(2_000)
    await data.write(redis_url, known)
    assert await api(engine, server, "GET", f"/v1/maintenance?app={app_name}") == (200, {"addons": []})

    rebuilt = await rebuild(before["host"])
    assert await running_image(before["host"], before["container"]) != rebuilt

    status, listed = await api(engine, server, "GET", f"/v1/maintenance?app={app_name}")
    assert status == 200 and [(r["addon"], r["version"], [n["build"] for n in r["nodes"]]) for r in listed["addons"]] \
        == [(addon, "7.0.15", ["outdated"])]
    assert await cli("--app", app_name, "--addon", "redis", "database-version") == 0
    shown = capsys.readouterr().out.splitlines()
    assert "       Build:     outdated" in shown
    assert shown[-1] == " !     A security update of 7.0.15 is available: run database-maintenance"

    assert await cli("--app", app_name, "--addon", "redis", "database-maintenance") == 0
    said = capsys.readouterr().out
    assert f"-----> {addon} runs the current build of 7.0.15" in said and "restart_app" in said

    [after] = [n for n in await engine.nodes(app_name, "redis") if n["state"] != "retired"]
    assert after["container"] != before["container"] and (after["host"], after["port"]) == (before["host"], before["port"])
    assert await running_image(after["host"], after["container"]) == rebuilt
    assert (await engine.environment(app_name))["REDIS_URL"] == redis_url
    assert await data.read(redis_url, known) == known  # every key, per database, in its shape
    assert [r["app"] for r in restarts] == [app_name]  # the app restarted once, at the end
    assert await api(engine, server, "GET", f"/v1/maintenance?app={app_name}") == (200, {"addons": []})
    status, refused = await api(engine, server, "POST", f"/v1/apps/{app_name}/addons/{addon}/maintenance")
    assert (status, refused["error"]["rule"]) == (409, "maintenance-needs-an-outdated-build")

    assert await cli("--app", app_name, "--addon", "redis", "database-maintenance-window", "--at", "sun 4:00 UTC") == 0
    assert capsys.readouterr().out.startswith("-----> Maintenance window: sundays at 4:00 UTC, for an hour")


async def test_a_business_addons_data_nodes_are_moved_with_no_acknowledged_write_lost(engine, app_name, restart_hook):
    hook, restarts = await restart_hook(200)
    await engine.register_app(app_name, restart="hook", url=hook)
    addon = await business_addon(engine, app_name)
    redis_url = (await engine.environment(app_name))["REDIS_URL"]
    known = {db: keys for db, keys in data.expected(1_000).items() if db != 0}  # the writer writes to 0
    await data.write(redis_url, known)
    before = (await nodes_by_role(engine, app_name, addon))["data"]
    rebuilt = {host: await rebuild(host) for host in [h.name for h in load_hosts(HOSTS_FILE)]}
    assert [n["build"] for n in (await engine.database_version.show(app_name, addon))["nodes"]] == ["outdated"] * 2
    writer = Writer(redis_url).start()
    await eventually(writer.wrote_more)

    requested = await engine.maintenance.start(app_name, addon)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=300)

    assert operation["status"] == "succeeded", operation
    assert operation["kind"] == "maintenance_cluster" and operation["steps"][-1]["name"] == "restart_app"
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []  # acknowledged writes lost: 0
    after = (await nodes_by_role(engine, app_name, addon))["data"]
    assert not {n["id"] for n in after} & {n["id"] for n in before}  # both data nodes new
    assert {n["id"]: await running_image(n["host"], n["container"]) for n in after} == \
        {n["id"]: rebuilt[n["host"]] for n in after}
    assert {n["version"] for n in after} == {"7.0.15"} and (await engine.environment(app_name))["REDIS_URL"] == redis_url
    assert await data.read(redis_url, known) == known
    assert [r["app"] for r in restarts] == [app_name]
    assert await engine.maintenance.outdated(app_name) == []
