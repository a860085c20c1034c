"""The RedisAdmin port over redis.asyncio: talks to the nodes with the addon's password."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as redis
from cryptography import x509
from redis.backoff import NoBackoff
from redis.asyncio.connection import SSLConnection
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.driver_info import DriverInfo
from redis.retry import Retry

from adapters.redis_info import KeptClients
from engine.ports import EffectError, Endpoint, PresentedCertificate, TransientError

DATABASES = range(5)  # reference: "Each Redis® instance can use 5 databases"
SLOW_S = 600  # SAVE and SCAN of a large dataset
PAUSE_MS = 10_000  # the longest writes may wait for a backup's fork (the pause ends as soon as it has forked)
# Made once: redis-py would read its version from the package's metadata at each connection (~1 ms of CPU).
DRIVER_INFO = DriverInfo()
SENTINEL_INFO_PERIOD_MS = 1000  # how often a Sentinel reset by the engine reads its nodes' INFO (Sentinel's own: 10 s)


class TrustingOnlyTheInstallation(SSLConnection):
    """A TLS connection verified against the installation's CA alone (not the system's bundle), with
    one SSL context for every connection: redis-py would build one per connection, loading the
    system's CA bundle each time (~20 ms of CPU on the event loop)."""

    def __init__(self, *, tls_context: ssl.SSLContext, **kwargs):
        super().__init__(**kwargs)
        self.ssl_context.context = tls_context  # what RedisSSLContext.get() returns once made


# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (Python names no constant for it): the chain and the host
# name are still verified, the dates are not.
NO_CHECK_TIME = 0x200000


class RedisAdmin:
    def __init__(self, ca_file: Path | None = None):
        self.ca_file = ca_file  # the installation's CA: a node's TLS certificate is verified, name included
        self._tls_context: ssl.SSLContext | None = None
        self._any_date_context: ssl.SSLContext | None = None
        # Reading a certificate's dates sends nothing: it is read unverified, so an expired one can be renewed.
        self._reading_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA loaded at all
        self._reading_context.check_hostname, self._reading_context.verify_mode = False, ssl.CERT_NONE
        self._kept = KeptClients(lambda node: self._new_client(node, timeout=2))  # the stats sampler's INFO reads

    def _verified(self, node: Endpoint) -> ssl.SSLContext:
        if self._tls_context is None:
            if self.ca_file is None:
                raise EffectError(f"{node}: TLS asked but this engine has no CA file to verify the node with")
            # Given a CA file, the default context trusts that file only; it checks the host name too.
            self._tls_context = ssl.create_default_context(cafile=str(self.ca_file))
        return self._tls_context

    def _verified_at_any_date(self, node: Endpoint) -> ssl.SSLContext:
        """To replace an expired certificate: still our CA's, for this address, but out of date."""
        if self._any_date_context is None:
            self._verified(node)
            self._any_date_context = ssl.create_default_context(cafile=str(self.ca_file))
            self._any_date_context.verify_flags |= NO_CHECK_TIME
        return self._any_date_context

    def _new_client(self, node: Endpoint, db: int = 0, timeout: float = 5, any_date: bool = False) -> redis.Redis:
        # No retries inside redis-py: the saga retries with its own backoff and deadline.
        options = dict(host=node.address, port=node.port, db=db, username="default", password=node.password,
                       socket_connect_timeout=2, socket_timeout=timeout, retry=Retry(NoBackoff(), 0),
                       driver_info=DRIVER_INFO)
        if node.tls:
            context = self._verified_at_any_date(node) if any_date else self._verified(node)
            options.update(connection_class=TrustingOnlyTheInstallation, tls_context=context)
        return redis.Redis(connection_pool=redis.ConnectionPool(**options))

    @asynccontextmanager
    async def _client(self, node: Endpoint, db: int = 0, timeout: float = 5, any_date: bool = False):
        client = self._new_client(node, db, timeout, any_date)
        try:
            yield client
        except AuthenticationError:
            raise EffectError(f"{node} refused the addon's password") from None
        except (RedisError, OSError) as e:
            # Refused connections and LOADING answers pass while the server starts.
            raise TransientError(f"{node}: {type(e).__name__}: {e}") from None
        finally:
            await client.aclose()

    connected = _client  # a connection as every call here makes it, for adapters/redis_credentials.py

    async def ping(self, node: Endpoint) -> None:
        # Short: a server that accepts but never answers is retried, not waited on.
        async with self._client(node, timeout=2) as client:
            await client.ping()

    async def replication(self, node: Endpoint) -> dict:
        async with self._client(node, timeout=2) as client:
            return await client.info("replication")

    async def sentinel_view(self, node: Endpoint, master: str) -> dict:
        async with self._client(node, timeout=2) as client:
            primary = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)
            sentinels = await client.execute_command("SENTINEL", "SENTINELS", master)
            replicas = await client.execute_command("SENTINEL", "REPLICAS", master)
            [state] = listed_fields([await client.execute_command("SENTINEL", "MASTER", master)])
        address = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in primary or ())
        return {"primary": f"{address[0]}:{address[1]}" if address else None, "sentinels": len(sentinels),
                "replicas": len(replicas), "sentinels_up": seen_up(sentinels), "replicas_up": seen_up(replicas),
                "replicas_electable": electable(replicas),
                "failing_over": "failover_in_progress" in state.get("flags", "").split(",")}

    @asynccontextmanager
    async def sentinel_notices(self, node: Endpoint, channels):
        """Subscribed to `channels` on the Sentinel at `node` (entered once it confirmed each one), the
        (channel, message) pairs it publishes; raises when the connection is lost or falls silent."""
        channels = list(channels)
        options = dict(host=node.address, port=node.port, username="default", password=node.password,
                       decode_responses=True, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
        if node.tls:  # a Sentinel of a cluster serving TLS: over TLS, verified with the installation's CA
            options.update(connection_class=TrustingOnlyTheInstallation, tls_context=self._verified(node))
        client = redis.Redis(connection_pool=redis.ConnectionPool(**options))
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(SUBSCRIBED_WITHIN_S):
                await pubsub.subscribe(*channels)
                confirmed = 0
                while confirmed < len(channels):
                    message = await pubsub.get_message(timeout=None)
                    confirmed += bool(message and message["type"] == "subscribe")
            yield published(pubsub, node)
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def sentinel_reset(self, node: Endpoint, master: str) -> None:
        async with self._client(node, timeout=2) as client:
            # A Sentinel learns the replicas from the primary's INFO, which it reads every 10 s: reset, it
            # would not know them for up to 10 s (9 s on average here, per Sentinel reset one at a time).
            # Read every second, they are known again within one; ~3 more INFO a second per cluster.
            await client.execute_command("SENTINEL", "DEBUG", "info-period", SENTINEL_INFO_PERIOD_MS)
            await client.execute_command("SENTINEL", "RESET", master)

    async def sentinel_reads_often(self, node: Endpoint) -> None:
        async with self._client(node, timeout=2) as client:
            await client.execute_command("SENTINEL", "DEBUG", "info-period", SENTINEL_INFO_PERIOD_MS)

    async def sentinel_failover(self, node: Endpoint, master: str) -> None:
        async with self._client(node, timeout=2) as client:
            try:
                await client.execute_command("SENTINEL", "FAILOVER", master)
            except ResponseError as e:  # NOGOODSLAVE, INPROG: the Sentinel may accept it a little later
                raise TransientError(f"{node} could not start a failover: {e}") from None

    async def pause_writes(self, node: Endpoint, pause_ms: int) -> None:
        async with self._client(node, timeout=2) as client:
            await client.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")

    async def resume_writes(self, node: Endpoint) -> None:
        async with self._client(node, timeout=2) as client:
            await client.execute_command("CLIENT", "UNPAUSE")

    async def answering(self, node: Endpoint) -> str:
        async with self._client(node, timeout=1) as client:  # a new connection: HAProxy routes each one afresh
            bind = (await client.config_get("bind"))["bind"].split()[0]
            port = (await client.config_get("port"))["port"]
            if port == "0":  # a node serving TLS only is known by its TLS port
                port = (await client.config_get("tls-port"))["tls-port"]
            return f"{bind}:{port}"

    async def demote(self, node: Endpoint, primary_address: str, primary_port: int) -> None:
        async with self._client(node, timeout=2) as client:
            await client.execute_command("REPLICAOF", primary_address, primary_port)
            await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

    async def stand_alone(self, node: Endpoint) -> None:
        async with self._client(node, timeout=2) as client:
            await client.execute_command("REPLICAOF", "NO", "ONE")

    async def database_figures(self, node: Endpoint):
        return await self._kept.figures(node)

    async def close(self) -> None:
        await self._kept.close()

    async def used_memory(self, node: Endpoint) -> int:
        async with self._client(node) as client:
            return int((await client.info("memory"))["used_memory"])

    async def freeze(self, node: Endpoint, pause_ms: int) -> dict:
        async with self._client(node, timeout=SLOW_S) as client:
            # Writes wait (clients are not refused); reads go on while the data is saved and measured.
            await client.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")
            await client.save()
            counts = keyspace_counts(await client.info("keyspace"))  # writes paused: the counts of the file
            # Saved already, writes paused: the stop need not save again (in memory only; the
            # configuration file still has the save rules for any later start).
            await client.config_set("save", "")
        return counts

    async def unpause(self, node: Endpoint, save_rules: str) -> None:
        """Undo a freeze on a node that keeps running: its save rules back, writes flowing."""
        async with self._client(node) as client:
            await client.config_set("save", save_rules)
            await client.execute_command("CLIENT", "UNPAUSE")

    async def snapshot(self, node: Endpoint) -> dict:
        async with self._client(node, timeout=SLOW_S) as client:
            # The save rules could write a newer dump.rdb while the backup reads it; they come back with
            # resume_saves once the file has been read.
            await client.config_set("save", "")
            await _wait_for_background_save(client)
            # Writes wait for the instant of the fork, so that the counts are those of the file.
            await client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
            try:
                counts = keyspace_counts(await client.info("keyspace"))
                counts["used_memory"] = int((await client.info("memory"))["used_memory"])
                await client.bgsave()
            finally:
                await client.execute_command("CLIENT", "UNPAUSE")
            await _wait_for_background_save(client)
            persistence = await client.info("persistence")
            if persistence.get("rdb_last_bgsave_status") != "ok":
                raise EffectError(f"{node}: the background save failed (see the node's log)")
        return counts

    async def resume_saves(self, node: Endpoint, save_rules: str) -> None:
        async with self._client(node) as client:
            await client.config_set("save", save_rules)

    async def keyspace(self, node: Endpoint) -> dict:
        async with self._client(node) as client:
            return keyspace_counts(await client.info("keyspace"))

    async def configure(self, node: Endpoint, parameters: dict[str, str]) -> None:
        async with self._client(node, timeout=SLOW_S) as client:
            aof_was_on = "appendonly" in parameters and (await client.config_get("appendonly"))["appendonly"] == "yes"
            for name, value in parameters.items():
                await client.config_set(name, value)
            await _wait_for_background_save(client)  # turning AOF on starts a rewrite: the AOF holds nothing before
            info = await client.info("persistence")
            if parameters.get("appendonly") == "yes" and info.get("aof_last_bgrewrite_status") != "ok":
                raise EffectError(f"{node}: the AOF could not be written (see the node's log)")
            if aof_was_on and parameters["appendonly"] == "no" and parameters.get("save"):
                # From now on a restart loads dump.rdb: it must hold what the AOF held.
                await client.bgsave()
                await _wait_for_background_save(client)
                if (await client.info("persistence")).get("rdb_last_bgsave_status") != "ok":
                    raise EffectError(f"{node}: the background save failed (see the node's log)")

    async def configure_together(self, node: Endpoint, parameters: dict[str, str]) -> None:
        async with self._client(node) as client:
            try:
                await client.config_set(*(item for pair in parameters.items() for item in pair))
            except ResponseError as e:  # refused (a port taken, a file unreadable): asking again will not help
                raise EffectError(f"{node} refused the configuration: {e}") from None

    async def disconnect_plaintext_clients(self, node: Endpoint, port: int) -> int:
        async with self._client(node) as client:
            return int(await client.execute_command("CLIENT", "KILL", "LADDR", f"{node.address}:{port}", "SKIPME", "yes"))

    async def reload_certificate(self, node: Endpoint, cert_file: str, key_file: str) -> None:
        # Setting the files, even to the same paths, makes Redis load them again; open connections stay.
        async with self._client(node, any_date=True) as client:
            await client.config_set("tls-cert-file", cert_file, "tls-key-file", key_file)

    async def presented_certificate(self, node: Endpoint) -> PresentedCertificate:
        try:
            async with asyncio.timeout(5):
                _, writer = await asyncio.open_connection(node.address, node.port, ssl=self._reading_context)
        except (OSError, TimeoutError) as e:
            raise TransientError(f"{node}: reading its TLS certificate: {type(e).__name__}: {e}") from None
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        return PresentedCertificate(hashlib.sha256(der).hexdigest(), x509.load_der_x509_certificate(der).not_valid_after_utc)

    async def configuration(self, node: Endpoint, names: list[str]) -> dict[str, str]:
        async with self._client(node) as client:
            found = {}
            for name in names:
                found.update(await client.config_get(name))
            return found

    async def snapshot_in_sync(self, replica: Endpoint, primary: Endpoint, within_s: float) -> dict:
        async with self._client(primary, timeout=2) as client:
            head = int((await client.info("replication")).get("master_repl_offset", 0))
        async with self._client(replica, timeout=SLOW_S) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within_s
            while (seen := applied_offset(await client.info("replication"))) < head:
                if loop.time() >= deadline:
                    return {"in_sync": False, "offset": seen, "primary_offset": head}
                await asyncio.sleep(0.01)
            await client.config_set("save", "")  # back with resume_saves, as after snapshot
            await _wait_for_background_save(client)
            # CLIENT PAUSE WRITE on a replica holds its replication stream too (seen on Redis 7.0.15: a
            # paused replica applies nothing its primary sends until unpaused, its offset stands still),
            # so the offset and the counts read now are those of the file the fork writes; the primary's
            # clients wait for nothing.
            await client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
            try:
                offset = applied_offset(await client.info("replication"))
                counts = keyspace_counts(await client.info("keyspace"))
                counts["used_memory"] = int((await client.info("memory"))["used_memory"])
                await client.bgsave()
            finally:
                await client.execute_command("CLIENT", "UNPAUSE")
            await _wait_for_background_save(client)
            if (await client.info("persistence")).get("rdb_last_bgsave_status") != "ok":
                raise EffectError(f"{replica}: the background save failed (see the node's log)")
        return {**counts, "in_sync": True, "offset": offset, "primary_offset": head}

def _saving(info: dict) -> bool:
    """A child process writes an RDB file or rewrites the AOF (Redis refuses a BGSAVE meanwhile)."""
    return any(int(info.get(flag, 0)) for flag in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress",
                                                   "aof_rewrite_scheduled"))


async def _wait_for_background_save(client) -> None:
    """Poll, never block: the event loop serves everyone else while the child process writes."""
    delay = 0.01
    while _saving(await client.info("persistence")):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def applied_offset(info: dict) -> int:
    """A replica's offset: how far into its primary's stream it has applied (INFO replication on the
    replica itself, fresher than what the primary last heard); -1 while its link is down."""
    if info.get("role") != "slave" or info.get("master_link_status") != "up":
        return -1
    return int(info.get("slave_repl_offset", -1))


def keyspace_counts(info: dict) -> dict:
    """INFO keyspace (`db0: {keys, expires, avg_ttl}`) as {"keys": {"0": n}, "expires": {"0": n}}."""
    keys, expires = {}, {}
    for db in DATABASES:
        entry = info.get(f"db{db}") or {}
        keys[str(db)], expires[str(db)] = int(entry.get("keys", 0)), int(entry.get("expires", 0))
    return {"keys": keys, "expires": expires}


def listed_fields(listed) -> list[dict]:
    """What a Sentinel lists (SENTINEL SENTINELS / REPLICAS), each instance as a dict of str."""
    def fields(item) -> dict:
        pairs = item.items() if isinstance(item, dict) else zip(item[::2], item[1::2])
        return {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
                for k, v in pairs}

    return [fields(item) for item in listed or ()]


def seen_up(listed) -> list[str]:
    """The "address:port" of each instance a Sentinel lists without a down or disconnected flag."""
    return sorted(f"{seen.get('ip')}:{seen.get('port')}" for seen in listed_fields(listed)
                  if not {"s_down", "o_down", "disconnected"} & set(seen.get("flags", "").split(",")))


def electable(listed) -> list[str]:
    """The replicas up that the Sentinel may elect: their priority, as it last read it, is not 0."""
    up = set(seen_up(listed))
    return sorted(f"{seen.get('ip')}:{seen.get('port')}" for seen in listed_fields(listed)
                  if f"{seen.get('ip')}:{seen.get('port')}" in up and seen.get("slave-priority", "100") != "0")


SUBSCRIBED_WITHIN_S = 3.0  # a Sentinel confirms its subscriptions within this, or is taken for unreachable
PING_EVERY_S = 5.0
SILENT_AFTER_S = 15.0  # no answer to PING for this long: the Sentinel is gone (or its machine is)


async def published(pubsub, node: Endpoint):
    """The (channel, message) pairs a subscribed Sentinel publishes, pinging it while it is quiet."""
    loop = asyncio.get_running_loop()
    heard = loop.time()
    while True:
        message = await pubsub.get_message(timeout=PING_EVERY_S)
        if message is not None:
            heard = loop.time()
            if message["type"] == "message":
                yield message["channel"], message["data"]
        elif loop.time() - heard > SILENT_AFTER_S:
            raise TimeoutError(f"the Sentinel at {node.address}:{node.port} stopped answering")
        else:
            await pubsub.ping()
