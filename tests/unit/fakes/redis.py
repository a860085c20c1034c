"""Redis servers as the fake Docker runs them, and the RedisAdmin port that talks to them.

A server boots from its container's redis.conf (bind, ports, the password's hash, save rules) and
its volume's dump.rdb; it keeps key counts per database in memory; it saves them back to the
volume when told to, or when it stops while its save rules are on, as Redis does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from domain.redis_config import TLS_FILES
from engine.ports import EffectError, Endpoint, PresentedCertificate, TransientError
from tests.unit.fakes.services import not_after
from tests.unit.fakes.faults import Faulty

DUMP = "dump.rdb"
DATABASES = [str(db) for db in range(5)]
BASE_MEMORY = 1_000_000  # bytes an empty server uses
BYTES_PER_KEY = 100


def encode_dump(keys: dict[str, int], expires: dict[str, int]) -> bytes:
    return json.dumps({"keys": keys, "expires": expires}, sort_keys=True).encode()


def decode_dump(data: bytes | None) -> tuple[dict[str, int], dict[str, int]]:
    if not data:
        return {}, {}
    saved = json.loads(data)
    return dict(saved["keys"]), dict(saved["expires"])


@dataclass
class Server:
    address: str
    port: int  # 0: plaintext closed (TLS forced)
    tls_port: int | None
    password_hash: str
    config: dict[str, str]
    keys: dict[str, int] = field(default_factory=dict)
    expires: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    certificate_reloads: int = 0

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
                  "port": settings.get("port", "6379"), "tls-port": settings.get("tls-port", "0")}
        tls_port = int(settings["tls-port"]) if "tls-port" in settings else None
        return cls(settings["bind"], int(settings.get("port", 6379)), tls_port, password_hash, config, keys, expires)

    def set(self, parameters: dict[str, str]) -> None:
        """CONFIG SET: the ports open and close at once."""
        self.config.update(parameters)
        if "port" in parameters:
            self.port = int(parameters["port"])
        if "tls-port" in parameters:
            self.tls_port = int(parameters["tls-port"]) or None

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
    """Reaches the servers running in the fake Docker's containers; a stopped or missing one does not answer."""

    def __init__(self, runtime) -> None:
        super().__init__()
        self.runtime = runtime

    def _server(self, call: str, node: Endpoint, **args) -> tuple[Server, object]:
        self._called(call, endpoint=str(node), address=node.address, port=node.port, **args)
        found = self.runtime.server_at(node)
        if found is None:
            raise TransientError(f"{node}: ConnectionError: connection refused")
        server, container = found
        if hashlib.sha256(node.password.encode()).hexdigest() != server.password_hash:
            raise EffectError(f"{node} refused the addon's password")
        return server, container

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
