"""Password rotation (engine/credentials_rotation.py) on real Docker and real Redis, under an app that
writes all along and reconnects with whatever URL its environment has at the moment it reconnects.

A failed write is a command of the app that raised (its connection closed under it, AUTH refused, an
error reply); redis-py's own retries are off, so none is hidden. The app's restart is its restart
hook: it closes its connection between two writes and opens one with the URL the hook brings, so the
restart itself fails no write, and no failed write is allowed at all. At the end the old password is
refused (AUTH fails), the new one works and is in the environment, a client still connected with the
old one has been disconnected, and the new password is in no log line, no stored event (the event
store's and the read models' file bytes), no event page and no error."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis
import structlog
from aiohttp import web
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ConnectionError as RedisConnectionError, ResponseError
from redis.retry import Retry

from domain.cluster_config import MASTER_NAME
from tests.integration.api_client import api_server, cli, module_engine, session, token, url
from tests.integration.business import business_addon, direct, eventually, nodes_by_role, primary_of
from tests.integration.conftest import running_addon

APP = f"it-rot-{secrets.token_hex(3)}"
BUSINESS_APP = f"it-rotb-{secrets.token_hex(3)}"


def client_of(url_: str) -> redis.Redis:
    """A connection as the app opens it: no retry inside redis-py, so every failure shows."""
    return redis.from_url(url_, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0),
                          decode_responses=True)


class RestartingApp:
    """INCR after INCR through REDIS_URL. Its restart hook closes its connection between two writes and
    opens one with the hook's REDIS_URL; after a failed write it reconnects with the URL the app's
    environment has then. The hook answers once the app runs on the new URL, and `hold` keeps it from
    answering until the test lets it (the rotation waits meanwhile: both passwords work)."""

    def __init__(self, engine, app: str):
        self.engine, self.app = engine, app
        self.failures: list[str] = []
        self.writes = self.restarts = 0
        self.urls: list[str] = []
        self.hold = asyncio.Event()
        self._restart_to: str | None = None
        self._restarted = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self, hooks: "Hooks") -> None:
        await self.engine.register_app(self.app, restart="hook", url=await hooks.serve(self))
        self._connect((await self.engine.environment(self.app))["REDIS_URL"])
        self._task = asyncio.create_task(self._run())
        await eventually(lambda: self.wrote(10))

    def _connect(self, to: str) -> None:
        self.client, self.url = client_of(to), to
        self.urls.append(to)

    async def _run(self) -> None:
        while not self._stopping:  # a flag, not a cancel: redis-py may take a cancel for a failed command
            if self._restart_to is not None:  # restarted: the new process connects with the hook's URL
                await self.client.aclose()
                self._connect(self._restart_to)
                self._restart_to, self.restarts = None, self.restarts + 1
                self._restarted.set()
            try:
                await self.client.incr("rotation:counter")
                self.writes += 1
            except Exception as failed:  # noqa: BLE001 - every failure counts
                self.failures.append(f"{type(failed).__name__}: {failed}")
                await self.client.aclose()
                self._connect((await self.engine.environment(self.app))["REDIS_URL"])
            await asyncio.sleep(0.005)

    async def restart(self, environment: dict) -> None:
        self._restarted.clear()
        self._restart_to = environment["REDIS_URL"]
        await self._restarted.wait()
        await self.hold.wait()

    async def wrote(self, more: int) -> bool:
        start = self.writes
        await eventually(lambda: asyncio.sleep(0, self.writes >= start + more), timeout=20, every=0.05)
        return True

    async def stop(self) -> None:
        self._stopping = True
        await self._task
        await self.client.aclose()


class Hooks:
    """Restart hooks on loopback, one per app."""

    def __init__(self):
        self.runners: list[web.AppRunner] = []

    async def serve(self, app: RestartingApp) -> str:
        async def hook(request: web.Request) -> web.Response:
            await app.restart((await request.json())["environment"])
            return web.json_response({"restarted": True})

        server = web.Application()
        server.router.add_post("/restart", hook)
        runner = web.AppRunner(server)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/restart"

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    async with module_engine(tmp_path_factory, "rotation", APP, BUSINESS_APP) as running:
        yield running


@pytest.fixture(scope="module")
async def server(engine):
    async with api_server(engine) as running:
        yield running


@pytest.fixture(scope="module")
async def hooks():
    hooks = Hooks()
    yield hooks
    await hooks.close()


@pytest.fixture(scope="module")
async def addon(engine):
    return await running_addon(engine, APP)


def rotate_path(app: str, addon: str) -> str:
    return f"/v1/apps/{app}/addons/{addon}/credentials/rotate"


async def refused(url_: str) -> bool:
    """A fresh connection with this URL's password is refused at AUTH."""
    client = client_of(url_)
    try:
        await client.ping()
        return False
    except AuthenticationError:
        return True
    finally:
        await client.aclose()


async def nowhere_stored_or_served(engine, server, password: str) -> None:
    for path in engine.settings.home.glob("*.sqlite*"):  # the event store, the read models, their WAL files
        assert password.encode() not in path.read_bytes(), path
    async with session(engine) as http:
        after = 0
        while True:
            async with http.get(url(server, f"/v1/events?after={after}&limit=500")) as answer:
                page = await answer.json()
            assert password not in await answer.text()
            if not page["events"]:
                break
            after = page["next"]
        async with http.get(url(server, "/v1/operations")) as answer:
            assert password not in await answer.text()


async def test_bad_requests_are_refused(engine, server, addon):
    async with session(engine) as http:
        for path, status, rule in ((rotate_path(APP, "redis-nope"), 404, "unknown-addon"),
                                   (rotate_path("it-no-such-app", "redis"), 404, None)):
            async with http.post(url(server, path)) as answer:
                body = await answer.json()
                assert answer.status == status, body
                assert rule is None or body["error"]["rule"] == rule, body


async def test_a_starter_rotation_under_writes(engine, server, hooks, addon):
    app = RestartingApp(engine, APP)
    await app.start(hooks)
    old_url = app.url
    old = urlsplit(old_url).password
    stale = client_of(old_url)  # a client that never restarts: still on the old password at the end
    stale_id = await stale.client_id()

    with structlog.testing.capture_logs() as logs:
        async with session(engine) as http:
            async with http.post(url(server, rotate_path(APP, "redis"))) as answer:
                assert answer.status == 202, await answer.text()
                operation_id = (await answer.json())["operation"]["id"]
            await eventually(lambda: asyncio.sleep(0, app.restarts == 1))  # the hook holds the app's restart
            async with http.post(url(server, rotate_path(APP, addon))) as busy:
                assert busy.status == 409 and (await busy.json())["error"]["rule"] == "one-operation-per-addon"
            new_url = (await engine.environment(APP))["REDIS_URL"]
            assert app.url == new_url != old_url
            assert not await refused(old_url) and not await refused(new_url)  # both work while the app restarts
            await app.wrote(20)
            app.hold.set()
            operation = await engine.wait_for_operation(operation_id, timeout=60)
        await app.wrote(20)  # the app writes on after the old connections are closed
    await app.stop()

    assert operation["status"] == "succeeded", operation
    assert app.failures == [] and app.restarts == 1, app.failures
    new = urlsplit(new_url).password
    assert (await engine.environment(APP))["REDIS_URL"] == new_url and new != old
    assert await refused(old_url) and not await refused(new_url)
    with pytest.raises(RedisConnectionError):  # disconnected: it opened before the publication
        await stale.ping()
    await stale.aclose()
    checker = client_of(new_url)
    assert stale_id not in [int(c["id"]) for c in await checker.client_list()]
    # The node's redis.conf has the new password alone: restarted, it still refuses the old one.
    node = await engine.runtime.client((await engine.addon(APP, addon))["host"]).containers.get(
        [n for n in await engine.nodes(APP, addon) if n["role"] == "data"][0]["container"])
    await checker.aclose()
    await node.restart(timeout=10)
    await eventually(lambda: answers(new_url))
    assert await refused(old_url)
    checker = client_of(new_url)
    assert int(await checker.get("rotation:counter")) >= app.writes  # every acknowledged write kept
    await checker.aclose()
    assert new not in repr(logs) and new not in repr(operation)
    await nowhere_stored_or_served(engine, server, new)


class AnsweringHook:
    """An app's restart hook that answers at once (its app is the test's own connections)."""

    async def restart(self, environment: dict) -> None:
        pass


async def test_the_cli_rotates_and_follows_the_steps(engine, server, hooks, addon, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    await engine.register_app(APP, restart="none")
    before = (await engine.environment(APP))["REDIS_URL"]
    # Nothing would restart the app onto the new password before the old one is refused: refused at once.
    assert await cli("--app", APP, "rotate-credentials") == 1
    assert capsys.readouterr().err.startswith(f"error: app {APP} has no restart method: a rotation would cut it off")
    assert (await engine.environment(APP))["REDIS_URL"] == before and await answers(before)
    await engine.register_app(APP, restart="hook", url=await hooks.serve(AnsweringHook()))  # the app before is gone

    assert await cli("--app", APP, "rotate-credentials") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"-----> Rotating the password of {addon}: ")
    assert [line.split()[:2] for line in lines[1:-1]] == [[step, "done"] for step in (
        "add_password", "publish", "restart_app", "remove_old", "disconnect_old")]
    assert lines[-1] == f"-----> {addon} accepts the new password only: see it with `redis-addons --app {APP} env`"
    after = (await engine.environment(APP))["REDIS_URL"]
    assert after != before and await refused(before) and await answers(after)
    assert await cli("--app", APP, "--addon", f"{APP}-0000", "rotate-credentials") == 1
    assert capsys.readouterr().err.startswith(f"error: app '{APP}' has no addon '{APP}-0000'")


async def writes(url_: str) -> bool:
    client = client_of(url_)
    try:
        return await client.set("rotation:probe", "1")
    except (RedisConnectionError, OSError, ResponseError):
        return False
    finally:
        await client.aclose()


async def answers(url_: str) -> bool:
    client = client_of(url_)
    try:
        return await client.ping()
    except (RedisConnectionError, OSError, ResponseError):
        return False
    finally:
        await client.aclose()


async def test_a_business_rotation_under_writes_then_a_failover(engine, hooks):
    async with asyncio.timeout(150):
        addon = await business_addon(engine, BUSINESS_APP)
    app = RestartingApp(engine, BUSINESS_APP)
    async with asyncio.timeout(30):
        await app.start(hooks)
    old_url = app.url
    app.hold.set()

    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(60):
            started = await engine.credentials.rotate(BUSINESS_APP, addon)
            operation = await engine.wait_for_operation(started["operation_id"], timeout=50)
        async with asyncio.timeout(30):
            await app.wrote(20)
    async with asyncio.timeout(20):
        await app.stop()

    assert operation["status"] == "succeeded", operation
    assert app.failures == [] and app.restarts == 1, (app.failures, app.restarts, operation["steps"])
    new_url = (await engine.environment(BUSINESS_APP))["REDIS_URL"]
    new = urlsplit(new_url).password
    assert app.url == new_url != old_url and new not in repr(logs)
    async with asyncio.timeout(30):
        assert await refused(old_url) and not await refused(new_url)  # through HAProxy
    async with asyncio.timeout(90):  # every call below has its own timeout; this says which one never ended
        await then_the_cluster_uses_it(engine, addon, old_url, new_url, new)


async def then_the_cluster_uses_it(engine, addon: str, old_url: str, new_url: str, new: str) -> None:
    nodes = await nodes_by_role(engine, BUSINESS_APP, addon)
    for node in nodes["data"]:  # each data node refuses the old password
        client = direct(node, urlsplit(old_url).password)
        with pytest.raises(AuthenticationError):
            await client.ping()
        await client.aclose()
    primary = primary_of(nodes)
    [replica] = [n for n in nodes["data"] if n is not primary]
    # The replica's link broken on purpose: it connects again with the new masterauth.
    on_primary = direct(primary, new)
    await on_primary.execute_command("CLIENT", "KILL", "TYPE", "replica")
    on_replica = direct(replica, new)

    async def replicating() -> bool:
        return (await on_replica.info("replication")).get("master_link_status") == "up"

    await eventually(replicating, timeout=20, every=0.2)
    # The Sentinels reach the nodes with the new auth-pass: a quorum, and a failover that completes.
    sentinel_password = engine.secrets.password_for(f"{addon}-sentinels")
    sentinels = [direct(s, sentinel_password) for s in nodes["sentinel"]]
    for sentinel in sentinels:
        assert "OK" in await sentinel.execute_command("SENTINEL", "CKQUORUM", MASTER_NAME)
    asked_at = 0.0

    async def failed_over() -> bool:  # a new connection each time: a Sentinel promoting a node closes its clients
        nonlocal asked_at
        promoted = direct(replica, new)
        try:
            if (await promoted.info("replication")).get("role") == "master":
                return await writes(new_url)
        except RedisConnectionError:
            return False
        finally:
            await promoted.aclose()
        # Asked again every few seconds: a Sentinel whose last INFO of the replica still saw the link this test
        # broke finds no good replica and drops that failover; one in progress answers INPROG.
        if asyncio.get_running_loop().time() - asked_at > 5:
            asked_at = asyncio.get_running_loop().time()
            try:
                await sentinels[0].execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            except ResponseError as refused:
                assert "INPROG" in str(refused) or "NOGOODSLAVE" in str(refused), refused
        return False

    await eventually(failed_over, timeout=30, every=0.2)
    through_entry = client_of(new_url)
    assert await through_entry.set("after-failover", "1")  # the entry routes to the new primary
    for client in (through_entry, on_primary, on_replica, *sentinels):
        await client.aclose()
