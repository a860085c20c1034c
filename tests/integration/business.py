"""What the Business cluster tests share: a provisioned cluster, a writer through REDIS_URL that
counts the writes acknowledged to it, and watcher rounds driven by the test (tests set no interval)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis.asyncio as redis


async def eventually(check, timeout: float = 20.0, every: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if result := await check():
            return result
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(every)


async def business_addon(engine, app: str, plan: str = "redis-business-256") -> str:
    requested = await engine.add_addon(app, plan)
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=240)
    assert operation["status"] == "succeeded", operation
    return requested["addon"]


async def watcher_round(engine) -> list[dict]:
    """What the engine's watcher does every 2 s: follow the Sentinels, then heal; read models caught up."""
    seen = await engine.watcher.failovers.look()
    seen += await engine.watcher.healer.look()
    await engine.follower.wait_until(await engine.events.max_position())
    return seen


async def nodes_by_role(engine, app: str, addon: str) -> dict[str, list[dict]]:
    nodes = [n for n in await engine.nodes(app, addon) if n["state"] not in ("retired", "left")]
    return {role: [n for n in nodes if n["role"] == role] for role in ("data", "sentinel", "proxy")}


def primary_of(nodes: dict[str, list[dict]]) -> dict:
    return next(n for n in nodes["data"] if n["is_primary"])


def over_tls(node: dict) -> dict:
    """How a client reaches a node of a cluster that serves TLS only: over TLS (these tests do not
    verify its certificate; tests/integration/test_business_force_tls.py does)."""
    return {"ssl": True, "ssl_cert_reqs": "none"} if node.get("tls_port") and node["tls_port"] == node["port"] else {}


def direct(node: dict, password: str) -> redis.Redis:
    return redis.Redis(host=node["address"], port=node["port"], username="default", password=password, **over_tls(node),
                       decode_responses=True, socket_timeout=2, socket_connect_timeout=2)


async def container(engine, node: dict):
    return await engine.runtime.client(node["host"]).containers.get(node["container"])


@dataclass
class Writer:
    """Writes through REDIS_URL as an app does: INCR of a counter and SET of a unique key, one after
    the other; a write counts as acknowledged only once its reply came back."""

    url: str
    acknowledged: list[int] = field(default_factory=list)
    failures: int = 0
    refused: set[str] = field(default_factory=set)  # the first word of each error reply (NOREPLICAS, ...)
    first: int = 0  # its keys are w:<first + 1>, ...: two writers (an app's old and new instances) never share one
    _task: asyncio.Task | None = None

    @property
    def password(self) -> str:
        return urlsplit(self.url).password

    def start(self) -> Writer:
        self._task = asyncio.create_task(self._write())
        return self

    async def _write(self) -> None:
        client = redis.from_url(self.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
        n = self.first
        try:
            while True:
                n += 1
                try:
                    await client.incr("writes")
                    await client.set(f"w:{n}", n)
                    self.acknowledged.append(n)
                except redis.ResponseError as error:
                    self.failures += 1
                    self.refused.add(str(error).split()[0])
                    await asyncio.sleep(0.05)
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    self.failures += 1
                    await client.aclose()
                    client = redis.from_url(self.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.005)
        finally:
            await client.aclose()

    async def wrote_more(self, than: int | None = None) -> bool:
        start = len(self.acknowledged) if than is None else than
        await asyncio.sleep(0.3)
        return len(self.acknowledged) > start + 5

    async def stop(self) -> None:
        """Cancelled again until it ends: on Python 3.11 a cancellation arriving as an inner
        asyncio.wait_for completes is lost (redis-py sends commands under one)."""
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task], timeout=1)
        await asyncio.gather(self._task, return_exceptions=True)

    async def lost(self) -> list[int]:
        """The acknowledged writes the database does not have, read back through REDIS_URL."""
        client = redis.from_url(self.url, decode_responses=True)
        try:
            present = []
            for start in range(0, len(self.acknowledged), 1000):
                batch = self.acknowledged[start:start + 1000]
                present += await client.mget([f"w:{n}" for n in batch])
            missing = [n for n, value in zip(self.acknowledged, present) if value is None]
            counter = int(await client.get("writes") or 0)
        finally:
            await client.aclose()
        return missing + (["writes"] if counter < len(self.acknowledged) else [])
