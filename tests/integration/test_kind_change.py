"""Starter -> Business and back, with the data (issue 12; real Docker, Redis, Sentinel and HAProxy): a
Starter addon holding 10,000 keys of five types in all 5 databases, an app writing through REDIS_URL
and counting the writes acknowledged to it. The app's restart hook starts its new instance on the new
URL (the old one writes on until its node goes): no acknowledged write of either is lost."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as redis
from aiohttp import web

from domain.addon import Addon
from domain.cluster_config import MASTER_NAME
from engine.cluster_provisioning import sentinel_secret
from engine.nodes import endpoint
from tests.integration.business import Writer, direct, eventually, nodes_by_role, over_tls, primary_of
from tests.integration.conftest import containers_of, running_addon, volumes_of
from tests.integration.data import expected, read, write


class App:
    """An app whose restart hook starts a new instance (a writer) on the environment it is given."""

    def __init__(self):
        self.writers: list[Writer] = []
        self.urls: list[str] = []
        self.runner: web.AppRunner | None = None

    def start_instance(self, url: str) -> Writer:
        self.urls.append(url)
        self.writers.append(Writer(url, first=1_000_000 * len(self.writers)).start())
        return self.writers[-1]

    async def serve(self) -> str:
        async def hook(request):
            self.start_instance((await request.json())["environment"]["REDIS_URL"])
            return web.json_response({"status": 200})

        server = web.Application()
        server.router.add_post("/restart", hook)
        self.runner = web.AppRunner(server)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/restart"

    async def stopped_losing_nothing(self, url: str) -> None:
        """Every instance stopped; each write acknowledged to any of them is read back at `url`, then
        the writes are deleted (the known data is compared whole)."""
        for writer in self.writers:
            await writer.stop()
        client = redis.from_url(url, decode_responses=True)
        try:
            for writer in self.writers:
                writer.url = url
                assert await writer.lost() == [], writer.url  # acknowledged writes lost: 0
            assert int(await client.get("writes")) >= sum(len(w.acknowledged) for w in self.writers)
            assert sum(len(w.acknowledged) for w in self.writers[1:]) > 0  # the new instance wrote too
            async for key in client.scan_iter("w:*", count=1000):
                await client.unlink(key)
            await client.unlink("writes")
        finally:
            await client.aclose()
        self.writers.clear()


async def answered(call):
    try:
        return await call
    except (redis.ConnectionError, redis.BusyLoadingError):
        return None


def url_of(node: dict, password: str) -> str:
    if over_tls(node):  # a Business data node serves TLS only
        return f"rediss://default:{password}@{node['address']}:{node['port']}?ssl_cert_reqs=none"
    return f"redis://default:{password}@{node['address']}:{node['port']}"


async def changed(engine, app: str, addon: str, plan: str) -> dict:
    requested = await engine.change_plan(app, addon, plan)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=300)
    assert operation["status"] == "succeeded", operation
    return operation


async def test_starter_to_business_and_back_keeps_10000_keys_in_5_databases_and_every_acknowledged_write(engine,
                                                                                                          app_name):
    addon = await running_addon(engine, app_name, "redis-starter-256")
    starter_url = (await engine.environment(app_name))["REDIS_URL"]
    password = urlsplit(starter_url).password
    data = expected(10_000)
    await write(starter_url, data)
    app = App()
    await engine.register_app(app_name, restart="hook", url=await app.serve())
    try:
        await eventually(app.start_instance(starter_url).wrote_more)

        # Starter -> Business: the app restarted onto the entry while the starter node still served.
        operation = await changed(engine, app_name, addon, "redis-business-256")
        entry_url = (await engine.environment(app_name))["REDIS_URL"]
        assert entry_url != starter_url and app.urls == [starter_url, entry_url]
        assert "the app was restarted onto the new URL" in operation["steps"][-1]["detail"]
        await eventually(app.writers[-1].wrote_more)
        nodes = await nodes_by_role(engine, app_name, addon)
        assert {role: len(n) for role, n in nodes.items()} == {"data": 2, "sentinel": 3, "proxy": 2}
        assert all(len({n["host"] for n in group}) == len(group) for group in nodes.values())
        await app.stopped_losing_nothing(entry_url)
        for node in nodes["data"]:
            assert await read(url_of(node, password), data) == data  # on both data nodes
        primary = direct(primary_of(nodes), password)
        info = await primary.info("replication")
        assert (info["role"], info["connected_slaves"], info["slave0"]["state"]) == ("master", 1, "online")
        await primary.aclose()
        sentinel_password = engine.secrets.password_for(sentinel_secret(addon))
        named = [(await engine.redis.sentinel_view(endpoint(s, sentinel_password), MASTER_NAME))["primary"]
                 for s in nodes["sentinel"]]
        assert named == [f"{primary_of(nodes)['address']}:{primary_of(nodes)['port']}"] * 3
        assert len(await containers_of(addon)) == 7

        # Business -> Starter: the app restarted onto the single node while the entry routed to it.
        await eventually(app.start_instance(entry_url).wrote_more)
        await changed(engine, app_name, addon, "redis-starter-256")
        node_url = (await engine.environment(app_name))["REDIS_URL"]
        assert node_url != entry_url and app.urls[-1] == node_url  # (the starter node's port may be free again)
        await eventually(app.writers[-1].wrote_more)
        await app.stopped_losing_nothing(node_url)
        assert await read(node_url, data) == data
        client = redis.from_url(node_url, decode_responses=True)
        info = await client.info("replication")  # running as it was left: a primary of its own
        await client.aclose()
        assert (info["role"], info["connected_slaves"]) == ("master", 0)
        # A single node's own file: restarted, it is a primary with the data, replicating nothing.
        current = await engine.events.get(Addon.id_for(addon))
        await engine.runtime.stop_node(current.host, current.container, 30)
        await engine.runtime.start_node(current.host, current.container)
        client = redis.from_url(node_url, decode_responses=True)
        info = await eventually(lambda: answered(client.info("replication")))
        await client.aclose()
        assert (info["role"], info["connected_slaves"]) == ("master", 0)
        assert await read(node_url, data) == data
        [node] = await containers_of(addon)
        assert node["Config"]["Labels"]["redis-addons.role"] == "data"
        assert len(await volumes_of(addon)) == 1
        shown = await engine.addon(app_name, addon)
        assert (shown["plan"], shown["status"]) == ("redis-starter-256", "running")
    finally:
        for writer in app.writers:
            await writer.stop()
        await app.runner.cleanup()
