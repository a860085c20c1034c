"""What a password rotation (engine/credentials_rotation.py) needs of the secret store and of the
servers, beside the ports every saga uses (engine/ports.py)."""

from __future__ import annotations

from typing import Protocol

from engine.ports import Endpoint, SecretStore


class RotatingSecrets(SecretStore, Protocol):
    """The secret store with a second password kept beside the addon's while it is rotated: a crash
    resumes with the same one, and no event ever holds it."""

    def pending_for(self, addon: str) -> str:
        """The password the rotation brings in: made once, then always the same until forgotten."""

    def peek_pending(self, addon: str) -> str | None: ...

    def publish_pending(self, addon: str) -> None:
        """The pending password becomes the addon's (peek and password_for give it from now on); it
        stays pending too until forget_pending. Done already: nothing changes."""

    def forget_pending(self, addon: str) -> None: ...


class CredentialsAdmin(Protocol):
    """The calls a rotation makes to the data nodes and Sentinels (adapters/redis_credentials.py)."""

    async def add_password(self, node: Endpoint, password: str) -> None:
        """The `default` user accepts `password` too (ACL SETUSER, by its hash), and the node's redis.conf
        says so (CONFIG REWRITE): a restart keeps it."""

    async def only_password(self, node: Endpoint, password: str) -> None:
        """The `default` user accepts `password` alone from now on, live and in redis.conf; connections
        already authenticated stay."""

    async def replicate_with(self, node: Endpoint, password: str) -> None:
        """`masterauth` (what a replica gives its primary) is `password`, live and in redis.conf."""

    async def sentinel_auth(self, sentinel: Endpoint, master: str, password: str) -> None:
        """SENTINEL SET `master` auth-pass: the Sentinel connects to the nodes with it (and writes its file).
        It closes the Sentinel's links to them: they are made again at once, with it."""

    async def sentinel_reaches(self, sentinel: Endpoint, master: str) -> bool:
        """The Sentinel's link to `master` is up and it does not see it down (SENTINEL MASTER's flags)."""

    async def marker(self, node: Endpoint) -> dict:
        """{"run_id": the server's, "next_id": the ID of a connection made now}: every connection opened
        before has a smaller ID (Redis numbers them in order, from the server's start)."""

    async def clients(self, node: Endpoint) -> dict:
        """{"run_id": the server's, "clients": CLIENT LIST as a list, each connection's id (int), user, name,
        flags, age (s) and addr}."""

    async def kill_clients(self, node: Endpoint, ids: list[int]) -> int:
        """CLIENT KILL ID of each (never the caller's own connection); returns how many were closed."""
