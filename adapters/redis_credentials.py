"""The CredentialsAdmin port (engine/credentials_ports.py) over the RedisAdmin's connections: what a
password rotation asks of the data nodes and Sentinels."""

from __future__ import annotations

from adapters.redis_admin import listed_fields
from domain.redis_config import password_hash
from engine.ports import Endpoint


class RedisCredentials:
    def __init__(self, admin):
        self.admin = admin  # adapters.redis_admin.RedisAdmin: its TLS contexts and error mapping

    async def add_password(self, node: Endpoint, password: str) -> None:
        async with self.admin.connected(node) as client:
            # By its hash: the password itself never goes over the wire but in AUTH.
            await client.execute_command("ACL", "SETUSER", "default", f"#{password_hash(password)}")
            await client.execute_command("CONFIG", "REWRITE")

    async def only_password(self, node: Endpoint, password: str) -> None:
        async with self.admin.connected(node) as client:
            # One command: no moment when the user has no password (or none of the two).
            await client.execute_command("ACL", "SETUSER", "default", "resetpass", f"#{password_hash(password)}")
            await client.execute_command("CONFIG", "REWRITE")

    async def replicate_with(self, node: Endpoint, password: str) -> None:
        async with self.admin.connected(node) as client:
            await client.config_set("masterauth", password)
            await client.execute_command("CONFIG", "REWRITE")

    async def sentinel_auth(self, sentinel: Endpoint, master: str, password: str) -> None:
        async with self.admin.connected(sentinel, timeout=2) as client:
            await client.execute_command("SENTINEL", "SET", master, "auth-pass", password)

    async def sentinel_reaches(self, sentinel: Endpoint, master: str) -> bool:
        async with self.admin.connected(sentinel, timeout=2) as client:
            [state] = listed_fields([await client.execute_command("SENTINEL", "MASTER", master)])
        return not {"disconnected", "s_down", "o_down"} & set(state.get("flags", "").split(","))

    async def marker(self, node: Endpoint) -> dict:
        async with self.admin.connected(node, timeout=2) as client:
            next_id = int(await client.execute_command("CLIENT", "ID"))
            return {"run_id": (await client.info("server"))["run_id"], "next_id": next_id}

    async def clients(self, node: Endpoint) -> dict:
        async with self.admin.connected(node, timeout=2) as client:
            listed = await client.client_list()
            run_id = (await client.info("server"))["run_id"]
        return {"run_id": run_id, "clients": [
            {"id": int(c["id"]), "user": c.get("user", ""), "name": c.get("name", ""), "flags": c.get("flags", ""),
             "age": int(c.get("age", 0)), "addr": c.get("addr", "")} for c in listed]}

    async def kill_clients(self, node: Endpoint, ids: list[int]) -> int:
        closed = 0
        async with self.admin.connected(node, timeout=2) as client:
            for client_id in ids:  # one filter each: `CLIENT KILL ID` takes one ID (SKIPME yes by default)
                closed += int(await client.execute_command("CLIENT", "KILL", "ID", client_id))
        return closed
