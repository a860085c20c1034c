"""The CredentialsAdmin port (engine/credentials_ports.py) over the fake servers of tests.unit.fakes.redis.

A data node holds the hashes of the passwords its `default` user accepts (`password_hash`, and
`added_hashes` while a rotation adds one); its connections are dicts in `connections` (id, user, name,
flags, age), numbered in order from its start as Redis numbers them; a test opens them with `connect`."""

from __future__ import annotations

import hashlib

from engine.ports import EffectError, Endpoint


def digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def connect(server, user: str = "default", name: str = "", flags: str = "N") -> dict:
    """A client connection to `server` (the app's, a Sentinel's...), open until killed."""
    server.__dict__.setdefault("connections", [])
    server.__dict__["next_client_id"] = server.__dict__.get("next_client_id", 1) + 1
    connection = {"id": server.next_client_id - 1, "user": user, "name": name, "flags": flags, "age": 0, "addr": ""}
    server.connections.append(connection)
    return connection


class FakeCredentialsAdmin:
    def __init__(self, redis):
        self.redis = redis  # FakeRedisAdmin: finds the server at an endpoint, checks the password, counts the calls

    async def add_password(self, node: Endpoint, password: str) -> None:
        server, _ = self.redis._server("add_password", node)
        server.__dict__["added_hashes"] = set(getattr(server, "added_hashes", ())) | {digest(password)}

    async def only_password(self, node: Endpoint, password: str) -> None:
        server, _ = self.redis._server("only_password", node)
        server.password_hash, server.__dict__["added_hashes"] = digest(password), set()

    async def replicate_with(self, node: Endpoint, password: str) -> None:
        server, _ = self.redis._server("replicate_with", node)
        server.masterauth_hash = digest(password)

    async def sentinel_auth(self, sentinel: Endpoint, master: str, password: str) -> None:
        server, _ = self.redis._server("sentinel_auth", sentinel)
        if server.role != "sentinel":
            raise EffectError(f"{sentinel}: ERR unknown command 'SENTINEL'")
        server.primary_auth_hash = digest(password)
        server.__dict__["relinking"] = 2  # its links closed: asked twice more before they are back

    async def sentinel_reaches(self, sentinel: Endpoint, master: str) -> bool:
        server, _ = self.redis._server("sentinel_reaches", sentinel)
        if getattr(server, "relinking", 0):
            server.__dict__["relinking"] -= 1
            return False
        return True

    async def marker(self, node: Endpoint) -> dict:
        server, _ = self.redis._server("marker", node)
        connection = connect(server, name="engine")  # the engine's own, closed at once as the real one is
        server.connections.remove(connection)
        return {"run_id": str(id(server)), "next_id": connection["id"]}

    async def clients(self, node: Endpoint) -> dict:
        server, _ = self.redis._server("clients", node)
        return {"run_id": str(id(server)), "clients": [dict(c) for c in getattr(server, "connections", [])]}

    async def kill_clients(self, node: Endpoint, ids: list[int]) -> int:
        server, _ = self.redis._server("kill_clients", node, ids=tuple(ids))
        before = getattr(server, "connections", [])
        server.__dict__["connections"] = [c for c in before if c["id"] not in ids]
        return len(before) - len(server.connections)
