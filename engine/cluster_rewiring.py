"""Telling a Business cluster's HAProxy and Sentinels that its data nodes changed: what a node
replacement and a plan change both do once a node joins or leaves."""

from __future__ import annotations

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from domain.addon import Addon
from domain.catalog import Component
from domain.cluster_config import MASTER_NAME
from engine.cluster_nodes import address, proxy_spec
from engine.cluster_provisioning import knows_whole_cluster
from engine.nodes import endpoint
from engine.ports import RedisAdmin, Runtime, TransientError

SENTINEL_SEES_ALL_WITHIN_S = 30.0  # hello messages every 2 s; the replicas from the primary's INFO


async def route_proxies(runtime: Runtime, component: Component, addon: Addon, proxies: list[dict], data_nodes: list[dict],
                        sentinels: list[dict], operation, password: str, sentinel_password: str,
                        settings: dict | None = None) -> list[str]:
    """Each of `proxies` gets its file rewritten with these data nodes and Sentinels (and the addon's
    settings, or `settings`: whether TLS is forced at the entry), and reloads it (SIGUSR2: new
    sessions follow the new file, open ones go on until the old process ends them)."""
    entry = address({"address": addon.address, "port": addon.port})
    for proxy in proxies:
        # Its container is there: create_node writes the file again.
        await runtime.create_node(proxy_spec(addon, proxy, entry, data_nodes, sentinels, component, operation, password,
                                             sentinel_password, settings=settings))
        await runtime.signal_node(proxy["host"], proxy["container"], "SIGUSR2")
    return [p["container"] for p in proxies]


async def reset_sentinels(redis: RedisAdmin, sentinels: list[dict], sentinel_password: str, primary: dict,
                          others_seen: int, replicas: int) -> None:
    """Each Sentinel forgets the nodes it knew (SENTINEL RESET: a dead Sentinel would still count toward
    the majority a failover needs, a dead replica would stay listed), one at a time, each waited for until
    it names `primary` and sees `others_seen` other Sentinels and `replicas` replicas up again."""
    for sentinel in sentinels:
        await redis.sentinel_reset(endpoint(sentinel, sentinel_password), MASTER_NAME)
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError),
                                           stop=stop_after_delay(SENTINEL_SEES_ALL_WITHIN_S),
                                           wait=wait_exponential(multiplier=0.1, max=1.0), reraise=True):
            with attempt:
                await knows_whole_cluster(redis, sentinel, sentinel_password, primary, sentinels=others_seen,
                                          replicas=replicas)
