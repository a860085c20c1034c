"""A data node's figures from its server's INFO (RedisAdmin delegates here)."""

from __future__ import annotations

import hashlib
import time

from redis.exceptions import AuthenticationError, RedisError

from engine.ports import EffectError, Endpoint, TransientError
from engine.stats import DatabaseFigures

IDLE_S = 120.0  # a node not read for this long is gone (or the sampler stopped): its connection is closed


def database_figures(info: dict) -> DatabaseFigures:
    """From INFO as redis-py parses it (numbers as ints, `db0` as a dict); a field an older server does
    not report counts 0."""

    def number(name: str) -> int:
        value = info.get(name, 0)
        return int(value) if isinstance(value, (int, float)) or str(value).lstrip("-").isdigit() else 0

    keys = {int(name[2:]): int(value.get("keys", 0)) for name, value in info.items()
            if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict)}
    replica = info.get("role") == "slave"
    return DatabaseFigures(
        used_memory=number("used_memory"),
        maxmemory=number("maxmemory"),
        connected_clients=number("connected_clients"),
        total_commands_processed=number("total_commands_processed"),
        instantaneous_ops_per_sec=number("instantaneous_ops_per_sec"),
        keyspace_hits=number("keyspace_hits"),
        keyspace_misses=number("keyspace_misses"),
        evicted_keys=number("evicted_keys"),
        keys=dict(sorted(keys.items())),
        role=str(info.get("role", "")),
        connected_slaves=number("connected_slaves"),
        master_link_up=(info.get("master_link_status") == "up") if replica else None,
        # A replica's master_repl_offset is the primary's stream it has processed: its own offset.
        repl_offset=number("master_repl_offset"),
        uptime_s=number("uptime_in_seconds"),
        run_id=str(info.get("run_id", "")),
    )


class KeptClients:
    """One connection per node kept open between the sampler's INFO reads: opening one every interval
    (TCP, a TLS handshake, AUTH) cost ~4 ms of CPU a node, most of a round's. The server counts it
    among its connected_clients. A kept connection that broke (the node restarted, or closed it idle)
    is replaced once at once; one unused for IDLE_S (its node gone) is closed."""

    def __init__(self, new_client):
        self._new_client = new_client  # Endpoint -> a redis.asyncio.Redis
        self._kept: dict[tuple, list] = {}  # (address, port, tls, password's digest) -> [client, last used]

    async def figures(self, node: Endpoint) -> DatabaseFigures:
        await self._close_idle()
        key = (node.address, node.port, node.tls, hashlib.sha256(node.password.encode()).digest())
        while True:
            kept = self._kept.get(key)
            fresh = kept is None
            if fresh:
                kept = self._kept[key] = [self._new_client(node), 0.0]
            kept[1] = time.monotonic()
            try:
                # INFO with no section: the default ones (server, clients, memory, stats, replication, keyspace...)
                return database_figures(await kept[0].info())
            except AuthenticationError:
                await self._drop(key)
                raise EffectError(f"{node} refused the addon's password") from None
            except (RedisError, OSError) as e:
                await self._drop(key)
                if fresh:
                    raise TransientError(f"{node}: {type(e).__name__}: {e}") from None

    async def _drop(self, key) -> None:
        kept = self._kept.pop(key, None)  # None: dropped meanwhile by a read beside this one
        if kept is not None:
            await kept[0].aclose()

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, used) in self._kept.items() if now - used > IDLE_S]:
            await self._drop(key)

    async def close(self) -> None:
        for key in list(self._kept):
            await self._drop(key)
