"""A Business cluster's other processes as the fake Docker runs them: a Sentinel (its container's
sentinel.conf) and an HAProxy (its haproxy.cfg). What they see of the other processes is worked out
by the fake RedisAdmin (tests.unit.fakes.redis), which reaches them all.

A Sentinel watches the primary its file names (the fake never fails over) and remembers each other
Sentinel and each replica it has learnt of, as Redis Sentinel does: one that is gone stays listed
(flagged down) until SENTINEL RESET. An HAProxy loads its file when it starts and again on SIGUSR2,
never by itself: a file rewritten under a running one changes nothing until it is told.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import ClassVar

from engine.ports import Endpoint


def hashed(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def unquoted(value: str) -> str:
    """A value as Redis reads it from its configuration files (`"p\\"w"` is `p"w`)."""
    words = shlex.split(value, posix=True)
    return words[0] if words else ""


def host_port(text: str) -> str:
    """`127.0.1.1 30000` or `127.0.1.1:30000` as "address:port"."""
    address, _, port = text.replace(" ", ":", 1).partition(":")
    return f"{address}:{int(port)}"


@dataclass
class Sentinel:
    role: ClassVar[str] = "sentinel"
    saves_on_shutdown: ClassVar[bool] = False
    tls_port: ClassVar[None] = None
    reuses_port: ClassVar[bool] = False

    address: str
    port: int
    password_hash: str  # requirepass: what clients and the other Sentinels authenticate with
    primary: str  # "address:port" of the primary it watches
    primary_auth_hash: str  # auth-pass: the data nodes' password
    known_sentinels: set[str] = field(default_factory=set)  # "address:port" of the others it has learnt of
    known_replicas: set[str] = field(default_factory=set)
    resets: int = 0
    tls: bool = False  # its one port serves TLS only

    @classmethod
    def boot(cls, conf: str) -> Sentinel:
        settings, primary, auth = {}, "", ""
        for line in conf.splitlines():
            words = line.split(" ", 3)
            if words[:2] == ["sentinel", "monitor"]:
                primary = host_port(words[3].rsplit(" ", 1)[0])
            elif words[:2] == ["sentinel", "auth-pass"]:
                auth = unquoted(words[3])
            elif words and words[0] != "sentinel":
                settings[words[0]] = line.partition(" ")[2]
        tls = settings["port"] == "0" and "tls-port" in settings
        return cls(settings["bind"], int(settings["tls-port" if tls else "port"]), hashed(unquoted(settings["requirepass"])),
                   primary, hashed(auth), tls=tls)

    @property
    def me(self) -> str:
        return f"{self.address}:{self.port}"

    def listens_at(self, node: Endpoint) -> bool:
        return node.tls == self.tls and (node.address, node.port) == (self.address, self.port)

    def reset(self) -> None:
        """SENTINEL RESET: it forgets every replica and other Sentinel, and learns the live ones again."""
        self.known_sentinels.clear()
        self.known_replicas.clear()
        self.resets += 1


@dataclass
class Proxy:
    """An HAProxy bound to the entry address (SO_REUSEPORT: every HAProxy of a cluster binds the same)."""

    role: ClassVar[str] = "proxy"
    saves_on_shutdown: ClassVar[bool] = False
    reuses_port: ClassVar[bool] = True
    password_hash: ClassVar[None] = None  # it checks no password: the data node behind it does

    address: str
    port: int
    data_nodes: list[str]  # "address:port" of each data node it may send clients to
    sentinels: list[str]  # of each Sentinel it asks which node is the primary
    tls_port: int | None = None  # the entry's TLS port, passed through to the primary
    loads: int = 1  # how many times it read its file: once at start, once per reload
    check_hash: str | None = None  # of the password its checks give the data nodes (None: a file without AUTH)

    @classmethod
    def boot(cls, cfg: str) -> Proxy:
        address, port, data_nodes, sentinels, tls_port = cls.parse(cfg)
        return cls(address, port, data_nodes, sentinels, tls_port, check_hash=cls.checks_with(cfg))

    @staticmethod
    def checks_with(cfg: str) -> str | None:
        """The hash of the password in its data checks' `AUTH default <password>` (a node refusing it is down)."""
        for line in cfg.splitlines():
            parts = line.split("tcp-check send ", 1)[-1].split("\\r\\n")
            if line.strip().startswith("tcp-check send") and parts[2:6:2] == ["AUTH", "default"]:
                return hashed(parts[6])
        return None

    @staticmethod
    def parse(cfg: str) -> tuple[str, int, list[str], list[str], int | None]:
        """Its binds: plaintext (`frontend redis`: 0 when not bound, TLS forced) and TLS (`frontend redis_tls`)."""
        binds, frontend, data_nodes, sentinels = {}, "", [], []
        for line in cfg.splitlines():
            words = line.split()
            if words[:1] == ["frontend"]:
                frontend = words[1]
            elif words[:1] == ["bind"]:
                binds[frontend] = host_port(words[1])
            elif words[:1] == ["server"]:
                group = sentinels if words[1].startswith("sentinel") else data_nodes
                if host_port(words[2]) not in group:
                    group.append(host_port(words[2]))
        address = next(iter(binds.values())).partition(":")[0]
        port = int(binds["redis"].partition(":")[2]) if "redis" in binds else 0
        tls_port = int(binds["redis_tls"].partition(":")[2]) if "redis_tls" in binds else None
        return address, port, data_nodes, sentinels, tls_port

    def reload(self, cfg: str) -> None:
        """SIGUSR2: the file is read again (new sessions follow it)."""
        self.address, self.port, self.data_nodes, self.sentinels, self.tls_port = self.parse(cfg)
        self.check_hash = self.checks_with(cfg)
        self.loads += 1

    def listens_at(self, node: Endpoint) -> bool:
        return node.address == self.address and node.port == (self.tls_port if node.tls else self.port) != 0
