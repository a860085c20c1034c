"""Redis servers as the fake Docker runs them, and the RedisAdmin port that talks to them.

A server boots from its container's redis.conf (bind, ports, the password's hash, save rules) and
its volume's dump.rdb; it keeps key counts per database in memory; it saves them back to the
volume when told to, or when it stops while its save rules are on, as Redis does.

In a Business cluster (tests.unit.fakes.cluster for Sentinels and HAProxy), a server whose
redis.conf says `replicaof <address> <port>` is a replica of the server running there, in sync
while both run and its `masterauth` is that server's password; a client reaching the entry address
through an HAProxy is sent to the data node that at least QUORUM of its Sentinels name and that is
a primary itself, or refused when there is none. A failover is instant unless a test makes it last
(`failover_lasts_views`: the Sentinels report `failing_over` meanwhile) or makes one happen on the
Sentinels' own (`fail_over_on_their_own`: a primary silent for a second).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from domain.cluster_config import MASTER_NAME, QUORUM
from domain.redis_config import TLS_FILES
from engine.ports import EffectError, Endpoint, PresentedCertificate, TransientError
from tests.unit.fakes.cluster import Proxy, Sentinel, hashed, host_port, unquoted
from tests.unit.fakes.services import not_after
from tests.unit.fakes.faults import Faulty

DUMP = "dump.rdb"
DATABASES = [str(db) for db in range(5)]
BASE_MEMORY = 1_000_000  # bytes an empty server uses
BYTES_PER_KEY = 100
ADDON_LABEL = "redis-addons.addon"  # which addon a container serves


def encode_dump(keys: dict[str, int], expires: dict[str, int]) -> bytes:
    return json.dumps({"keys": keys, "expires": expires}, sort_keys=True).encode()


def decode_dump(data: bytes | None) -> tuple[dict[str, int], dict[str, int]]:
    if not data:
        return {}, {}
    saved = json.loads(data)
    return dict(saved["keys"]), dict(saved["expires"])


@dataclass
class Server:
    role: ClassVar[str] = "data"
    reuses_port: ClassVar[bool] = False

    address: str
    port: int  # 0: plaintext closed (TLS forced)
    tls_port: int | None
    password_hash: str
    config: dict[str, str]
    keys: dict[str, int] = field(default_factory=dict)
    expires: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    certificate_reloads: int = 0
    replicaof: str | None = None  # "address:port" of its primary, when it is a replica
    masterauth_hash: str | None = None  # of the password it gives its primary

    @classmethod
    def boot(cls, redis_conf: str, dump: bytes | None) -> Server:
        settings, save_rules = {}, []
        password_hash = ""
        for line in redis_conf.splitlines():
            name, _, value = line.partition(" ")
            if name == "save":
                save_rules.append("" if value == '""' else value)
            elif name == "user":
                password_hash = next(w[1:] for w in value.split() if w.startswith("#"))
            elif name:
                settings[name] = value
        keys, expires = decode_dump(dump)
        config = {"save": " ".join(r for r in save_rules if r), "appendonly": settings.get("appendonly", "no"),
                  "maxmemory": settings.get("maxmemory", "0"), "maxmemory-policy": settings.get("maxmemory-policy", ""),
                  "port": settings.get("port", "6379"), "tls-port": settings.get("tls-port", "0"),
                  "replica-priority": settings.get("replica-priority", "100"),
                  "replica-announce-port": settings.get("replica-announce-port", ""),
                  "min-replicas-to-write": settings.get("min-replicas-to-write", "0")}
        tls_port = int(settings["tls-port"]) if "tls-port" in settings else None
        server = cls(settings["bind"], int(settings.get("port", 6379)), tls_port, password_hash, config, keys, expires)
        if "replicaof" in settings:
            server.replicaof = host_port(settings["replicaof"])
        if "masterauth" in settings:
            server.masterauth_hash = hashed(unquoted(settings["masterauth"]))
        return server

    def set(self, parameters: dict[str, str]) -> None:
        """CONFIG SET: the ports open and close at once."""
        self.config.update(parameters)
        if "port" in parameters:
            self.port = int(parameters["port"])
        if "tls-port" in parameters:
            self.tls_port = int(parameters["tls-port"]) or None

    @property
    def at(self) -> str:
        """"address:port" as the cluster knows it: a node serving TLS only is known by its TLS port."""
        return f"{self.address}:{self.port or self.tls_port}"

    @property
    def announced(self) -> str:
        """"address:port" its primary lists it at (and the Sentinels learn): `replica-announce-port`, if set."""
        return f"{self.address}:{self.config.get('replica-announce-port') or self.port or self.tls_port}"

    @property
    def addresses(self) -> set[str]:
        """Where the others may reach it: a single node joining a cluster that serves TLS only is
        reached at its TLS port, beside its plaintext one."""
        return {f"{self.address}:{p}" for p in (self.port, self.tls_port) if p}

    def listens_at(self, node: Endpoint) -> bool:
        if node.address != self.address:
            return False
        return node.port == self.tls_port if node.tls else (self.port != 0 and node.port == self.port)

    def counts(self) -> dict:
        return {"keys": {db: self.keys.get(db, 0) for db in DATABASES},
                "expires": {db: self.expires.get(db, 0) for db in DATABASES}}

    def dump(self) -> bytes:
        return encode_dump(self.keys, self.expires)

    @property
    def used_memory(self) -> int:
        return BASE_MEMORY + BYTES_PER_KEY * sum(self.keys.values())

    @property
    def saves_on_shutdown(self) -> bool:
        return bool(self.config["save"]) or self.config["appendonly"] == "yes"


class FakeRedisAdmin(Faulty):
    """Reaches the servers running in the fake Docker's containers; a stopped or missing one does not answer.
    `effects` lists what changed a server beyond its data (a Sentinel reset)."""

    def __init__(self, runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.effects: list[tuple] = []

    async def close(self) -> None:
        """The real one closes the connections the stats sampler's reads keep: a fake keeps none."""

    def _server(self, call: str, node: Endpoint, **args) -> tuple[Server, object]:
        self._called(call, endpoint=str(node), address=node.address, port=node.port, **args)
        found = self.runtime.server_at(node)
        if found is None:
            raise TransientError(f"{node}: ConnectionError: connection refused")
        if found[0].role == "proxy":
            found = self._routed(found[0])
            if found is None:
                raise TransientError(f"{node}: ConnectionError: closed by HAProxy (no primary the Sentinels name)")
        server, container = found
        digest = hashlib.sha256(node.password.encode()).hexdigest()
        if digest != server.password_hash and digest not in getattr(server, "added_hashes", ()):  # a rotation's
            raise EffectError(f"{node} refused the addon's password")
        return server, container

    # -- a Business cluster ----------------------------------------------------------------

    def _listening(self) -> dict[str, tuple]:
        """"address:port" -> (process, container) of every running process (an HAProxy: at the entry)."""
        up = {}
        for c in (c for host in self.runtime.hosts.values() for c in host.containers.values() if c.running and c.server):
            up[getattr(c.server, "at", f"{c.server.address}:{c.server.port}")] = (c.server, c)
            for other in getattr(c.server, "addresses", ()):
                up.setdefault(other, (c.server, c))
        return up

    def _routed(self, proxy: Proxy) -> tuple | None:
        """Where an HAProxy sends a new connection: the data node QUORUM Sentinels name, if it is a primary."""
        up = self._listening()
        for node in proxy.data_nodes:
            server = up.get(node, (None,))[0]
            if server is None or server.role != "data" or server.replicaof is not None:
                continue
            if proxy.check_hash is not None and proxy.check_hash != server.password_hash \
                    and proxy.check_hash not in getattr(server, "added_hashes", ()):
                continue  # its check's AUTH refused: HAProxy marks the node down
            named = [s for s in proxy.sentinels if up.get(s, (None,))[0] is not None
                     and up[s][0].role == "sentinel" and up[s][0].primary == node]
            if len(named) >= QUORUM:
                return up[node]
        return None

    def _replicas(self, primary: Server, up: dict) -> list[Server]:
        """The running servers in sync with `primary`: replicas of it that gave its password."""
        found = {id(s): s for s, _ in up.values() if s.role == "data" and s.replicaof in primary.addresses
                 and s.masterauth_hash == primary.password_hash}
        return sorted(found.values(), key=lambda s: (s.address, s.port))

    def _gossip(self, addon: str | None) -> dict:
        """Every running Sentinel of `addon` that reaches its primary (with its password) learns from it
        the other Sentinels watching it (their hello messages) and its replicas (its INFO)."""
        up = self._listening()
        sentinels = [s for s, c in up.values() if s.role == "sentinel" and c.labels.get(ADDON_LABEL) == addon]
        for sentinel in sentinels:
            primary = up.get(sentinel.primary, (None,))[0]
            if primary is None or primary.role != "data" or primary.password_hash != sentinel.primary_auth_hash:
                continue
            sentinel.known_sentinels |= {o.me for o in sentinels if o is not sentinel and o.primary == sentinel.primary}
            sentinel.known_replicas |= {r.announced for r in self._replicas(primary, up)}
        return up

    def _sentinel(self, call: str, node: Endpoint, master: str) -> tuple[Sentinel, object]:
        sentinel, container = self._server(call, node, master=master)
        if sentinel.role != "sentinel":
            raise EffectError(f"{node}: ERR unknown command 'SENTINEL'")
        if master != MASTER_NAME:
            raise EffectError(f"{node}: ERR No such master with that name")
        return sentinel, container

    async def replication(self, node: Endpoint) -> dict:
        server, _ = self._server("replication", node)
        if server.role != "data":
            raise EffectError(f"{node}: ERR unknown command 'INFO replication' on a Sentinel")
        up = self._listening()
        if server.replicaof is not None:
            primary = up.get(server.replicaof, (None,))[0]
            linked = primary is not None and primary.role == "data" and primary.password_hash == server.masterauth_hash
            master_host, _, master_port = server.replicaof.partition(":")
            return {"role": "slave", "master_host": master_host, "master_port": int(master_port),
                    "master_link_status": "up" if linked else "down",
                    "slave_repl_offset": sum(primary.keys.values()) if linked else 0}
        offset = sum(server.keys.values())
        replicas = self._replicas(server, up)
        info = {"role": "master", "connected_slaves": len(replicas), "master_repl_offset": offset}
        for i, replica in enumerate(replicas):
            info[f"slave{i}"] = {"ip": replica.address, "port": int(replica.announced.rpartition(":")[2]), "state": "online", "offset": offset,
                                 "lag": 0}
        return info

    async def sentinel_view(self, node: Endpoint, master: str) -> dict:
        sentinel, container = self._sentinel("sentinel_view", node, master)
        failing_over = self._failing_over()  # a failover that ends now: this view names the new primary
        up = self._gossip(container.labels.get(ADDON_LABEL))
        return {"primary": sentinel.primary, "sentinels": len(sentinel.known_sentinels),
                "replicas": len(sentinel.known_replicas),
                "sentinels_up": sorted(a for a in sentinel.known_sentinels if up.get(a, (None,))[0] is not None
                                       and up[a][0].role == "sentinel"),
                "replicas_up": sorted(a for a in sentinel.known_replicas if up.get(a, (None,))[0] is not None
                                      and up[a][0].role == "data"),
                "replicas_electable": sorted(a for a in sentinel.known_replicas if up.get(a, (None,))[0] is not None
                                             and up[a][0].role == "data"
                                             and up[a][0].config["replica-priority"] != "0"),
                "failing_over": failing_over}

    def _failing_over(self) -> bool:
        if self.failing_over is not None and self.failover_lasts_views is not None:
            self.failover_lasts_views -= 1
            if self.failover_lasts_views <= 0:
                self.complete_failover()
        return self.failing_over is not None

    async def sentinel_reset(self, node: Endpoint, master: str) -> None:
        sentinel, container = self._sentinel("sentinel_reset", node, master)
        sentinel.reset()
        self.effects.append(("sentinel reset", container.host, container.name))

    async def sentinel_reads_often(self, node: Endpoint) -> None:
        self._sentinel("sentinel_reads_often", node, MASTER_NAME)  # the fake Sentinel sees at once already

    async def sentinel_failover(self, node: Endpoint, master: str) -> None:
        """The Sentinel promotes the first replica in sync it may elect (replica-priority not 0); every
        Sentinel of the addon names it, the old primary and the other replicas follow it: at once, or,
        `failover_lasts_views` set, once that many more views were asked (None: once a test says so)."""
        sentinel, container = self._sentinel("sentinel_failover", node, master)
        if self.failing_over is not None:
            raise TransientError(f"{node}: INPROG Failover already in progress")
        addon = container.labels.get(ADDON_LABEL)
        new = self._electable(addon, sentinel.primary)
        if new is None:
            raise TransientError(f"{node} could not start a failover: NOGOODSLAVE No suitable replica to promote")
        old_at = sentinel.primary
        self.failing_over = lambda: self._promote(addon, old_at, new, (container.host, container.name))
        if self.failover_lasts_views == 0:
            self.complete_failover()

    failover_lasts_views: int | None = 0
    failing_over = None  # what completes the failover the Sentinels are amid

    def complete_failover(self) -> None:
        promote, self.failing_over = self.failing_over, None
        promote()

    def fail_over_on_their_own(self, addon: str, to: str | None = None, old_follows: bool = True,
                               any_priority: bool = False) -> tuple[str, str] | None:
        """A failover the Sentinels decide (the primary silent for a second): to the first replica they
        may elect (`any_priority`: a Sentinel that has not read the priorities yet), or to `to`; the old
        primary follows at once or (not `old_follows`: stalled) stays a primary until it hears of it.
        From where to where, or None when no replica may be elected."""
        sentinels = [s for s, c in self._gossip(addon).values() if s.role == "sentinel"
                     and c.labels.get(ADDON_LABEL) == addon]
        old_at = sentinels[0].primary
        new = self._listening()[to][0] if to else self._electable(addon, old_at, any_priority)
        if new is None:
            return None
        self._promote(addon, old_at, new, ("unplanned", addon), old_follows)
        return old_at, new.announced

    def _electable(self, addon: str, primary_at: str, any_priority: bool = False) -> Server | None:
        up = self._gossip(addon)
        old = up.get(primary_at, (None,))[0]
        electable = [r for r in self._replicas(old, up)
                     if any_priority or r.config["replica-priority"] != "0"] if old else []
        return electable[0] if electable else None

    def _promote(self, addon: str, old_at: str, new: Server, by: tuple, old_follows: bool = True) -> None:
        up = self._gossip(addon)
        old = up.get(old_at, (None,))[0]
        new_at = new.announced
        for server, c in up.values():
            if server.role == "sentinel" and c.labels.get(ADDON_LABEL) == addon:
                server.primary = new_at
            elif server.role == "data" and server is not new and old is not None and (
                    (server is old and old_follows) or (server is not old and server.replicaof in old.addresses | {old_at})):
                server.replicaof = new_at
        new.replicaof = None
        if old is not None:
            new.keys, new.expires = dict(old.keys), dict(old.expires)  # in sync: it has the old primary's data
        self.effects.append(("failover", *by, new_at))

    async def pause_writes(self, node: Endpoint, pause_ms: int) -> None:
        self._server("pause_writes", node, pause_ms=pause_ms)[0].paused = True

    async def resume_writes(self, node: Endpoint) -> None:
        if self.failing_over is not None:
            self.effects.append(("writes resumed amid a failover", str(node)))
        self._server("resume_writes", node)[0].paused = False

    async def stand_alone(self, node: Endpoint) -> None:
        self._server("stand_alone", node)[0].replicaof = None

    async def answering(self, node: Endpoint) -> str:
        server, _ = self._server("answering", node)
        return server.at

    async def demote(self, node: Endpoint, primary_address: str, primary_port: int) -> None:
        self._server("demote", node)[0].replicaof = f"{primary_address}:{primary_port}"

    @asynccontextmanager
    async def sentinel_notices(self, node: Endpoint, channels):
        """The fake Sentinels publish nothing: the engine's polling records failovers here (the
        subscriptions are tested with their own listener, tests/unit/test_sentinel_events.py)."""
        raise TransientError(f"{node}: the fake Sentinels publish no notifications")
        yield  # an async generator, for asynccontextmanager

    async def ping(self, node: Endpoint) -> None:
        self._server("ping", node)

    async def used_memory(self, node: Endpoint) -> int:
        return self._server("used_memory", node)[0].used_memory

    async def freeze(self, node: Endpoint, pause_ms: int) -> dict:
        server, container = self._server("freeze", node)
        server.paused = True
        self.runtime.save(container)
        server.config["save"] = ""
        return server.counts()

    async def unpause(self, node: Endpoint, save_rules: str) -> None:
        server, _ = self._server("unpause", node)
        server.config["save"] = save_rules
        server.paused = False

    async def snapshot(self, node: Endpoint) -> dict:
        server, container = self._server("snapshot", node)
        server.config["save"] = ""
        self.runtime.save(container)
        return {**server.counts(), "used_memory": server.used_memory}

    async def resume_saves(self, node: Endpoint, save_rules: str) -> None:
        self._server("resume_saves", node)[0].config["save"] = save_rules

    async def configure(self, node: Endpoint, parameters: dict[str, str]) -> None:
        self._server("configure", node, parameters=dict(parameters))[0].set(parameters)

    async def configure_together(self, node: Endpoint, parameters: dict[str, str]) -> None:
        self._server("configure_together", node, parameters=dict(parameters))[0].set(parameters)

    async def configuration(self, node: Endpoint, names: list[str]) -> dict[str, str]:
        config = self._server("configuration", node)[0].config
        return {name: config.get(name, "") for name in names}

    async def keyspace(self, node: Endpoint) -> dict:
        return self._server("keyspace", node)[0].counts()

    async def disconnect_plaintext_clients(self, node: Endpoint, port: int) -> int:
        self._server("disconnect_plaintext_clients", node)
        return 0

    async def reload_certificate(self, node: Endpoint, cert_file: str, key_file: str) -> None:
        self._server("reload_certificate", node)[0].certificate_reloads += 1

    async def presented_certificate(self, node: Endpoint) -> PresentedCertificate:
        _, container = self._server("presented_certificate", node)
        certificate = next((text for path, text in container.config.items() if path.endswith(TLS_FILES["cert"])), "")
        return PresentedCertificate(hashlib.sha256(certificate.encode()).hexdigest(), not_after(certificate))

    # -- a backup taken on a replica (engine/backup_source.py) --------------------------------------------

    lagging: frozenset[str] = frozenset()  # "address:port" of replicas a test holds behind their primary

    async def snapshot_in_sync(self, replica: Endpoint, primary: Endpoint, within_s: float) -> dict:
        """In sync: a running replica of the primary, with its password, not `lagging`. Replication made it
        hold the primary's data, which the fake copies over as it saves; the offset is the primary's (as
        `replication` reports it)."""
        server, container = self._server("snapshot_in_sync", replica, primary=str(primary))
        found = self.runtime.server_at(primary)
        if found is None:
            raise TransientError(f"{primary}: ConnectionError: connection refused")
        head_server = found[0]
        head = sum(head_server.keys.values())
        if (server.replicaof != head_server.at or f"{replica.address}:{replica.port}"
                in self.lagging or server.masterauth_hash != head_server.password_hash):
            return {"in_sync": False, "offset": head - 1, "primary_offset": head}
        server.keys, server.expires = dict(head_server.keys), dict(head_server.expires)
        server.config["save"] = ""
        self.runtime.save(container)
        return {**server.counts(), "used_memory": server.used_memory, "in_sync": True, "offset": head,
                "primary_offset": head}
