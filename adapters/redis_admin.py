"""The RedisAdmin port over redis.asyncio: talks to the nodes with the addon's password."""

from __future__ import annotations

import redis.asyncio as redis
from redis.exceptions import AuthenticationError, RedisError

from engine.ports import EffectError, TransientError


class RedisAdmin:
    async def ping(self, address: str, port: int, password: str) -> None:
        client = redis.Redis(host=address, port=port, username="default", password=password,
                             socket_connect_timeout=2, socket_timeout=5)
        try:
            await client.ping()
        except AuthenticationError:
            raise EffectError(f"{address}:{port} refused the addon's password") from None
        except (RedisError, OSError) as e:
            # Refused connections and LOADING answers pass while the server starts.
            raise TransientError(f"{address}:{port} does not answer PING yet: {type(e).__name__}") from None
        finally:
            await client.aclose()
