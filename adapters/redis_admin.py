"""The RedisAdmin port over redis.asyncio: talks to the nodes with the addon's password."""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager

import redis.asyncio as redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError
from redis.retry import Retry

from engine.ports import EffectError, TransientError

DATABASES = range(5)
SLOW_S = 600  # SAVE and SCAN of a large dataset  # reference: "Each Redis® instance can use 5 databases"


class RedisAdmin:
    @asynccontextmanager
    async def _client(self, address: str, port: int, password: str, db: int = 0, timeout: float = 5):
        # No retries inside redis-py: the saga retries with its own backoff and deadline.
        client = redis.Redis(host=address, port=port, db=db, username="default", password=password,
                             socket_connect_timeout=2, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))
        try:
            yield client
        except AuthenticationError:
            raise EffectError(f"{address}:{port} refused the addon's password") from None
        except (RedisError, OSError) as e:
            # Refused connections and LOADING answers pass while the server starts.
            raise TransientError(f"{address}:{port}: {type(e).__name__}: {e}") from None
        finally:
            await client.aclose()

    async def ping(self, address: str, port: int, password: str) -> None:
        # Short: a server that accepts but never answers is retried, not waited on.
        async with self._client(address, port, password, timeout=2) as client:
            await client.ping()

    async def used_memory(self, address: str, port: int, password: str) -> int:
        async with self._client(address, port, password) as client:
            return int((await client.info("memory"))["used_memory"])

    async def freeze(self, address: str, port: int, password: str, pause_ms: int) -> dict:
        async with self._client(address, port, password, timeout=SLOW_S) as client:
            # Writes wait (clients are not refused); reads go on while the data is saved and measured.
            await client.execute_command("CLIENT", "PAUSE", pause_ms, "WRITE")
            await client.save()
            fingerprint = await self.fingerprint(address, port, password)
            # Saved already, writes paused: the stop need not save again (in memory only; the
            # configuration file still has the save rules for any later start).
            await client.config_set("save", "")
        return fingerprint

    async def unpause(self, address: str, port: int, password: str, save_rules: str) -> None:
        """Undo a freeze on a node that keeps running: its save rules back, writes flowing."""
        async with self._client(address, port, password) as client:
            await client.config_set("save", save_rules)
            await client.execute_command("CLIENT", "UNPAUSE")

    async def fingerprint(self, address: str, port: int, password: str) -> dict:
        """Key counts per database and a digest of every key name. (Values travel in the data files,
        whose checksums Redis verifies as it loads them.)"""
        keys, digest = {}, hashlib.sha256()
        for db in DATABASES:
            async with self._client(address, port, password, db, timeout=SLOW_S) as client:
                names = sorted([name async for name in client.scan_iter(count=5000)])
                keys[str(db)] = len(names)
                digest.update(b"%d\0" % db + b"\0".join(names) + b"\0")
        return {"keys": keys, "digest": digest.hexdigest()}
