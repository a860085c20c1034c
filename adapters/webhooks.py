"""The WebhookSender port over aiohttp: one POST, with a timeout, following no redirect (a redirect could
lead off loopback, or from https to http). The notifier retries (engine/notifier.py)."""

from __future__ import annotations

import asyncio

import aiohttp

from engine.monitoring_ports import DeliveryFailed

TIMEOUT_S = 10.0


class HttpWebhookSender:
    def __init__(self, timeout_s: float = TIMEOUT_S):
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # made in the engine's loop, on first use
            # trust_env off: no proxy from the environment ever carries a message elsewhere
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as answer:
                if not 200 <= answer.status < 300:
                    raise DeliveryFailed(f"HTTP {answer.status} {answer.reason or ''}".strip())
                answer.release()  # the body is not read: a receiver sending a huge one costs nothing
        except asyncio.TimeoutError:
            raise DeliveryFailed(f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as e:
            raise DeliveryFailed(f"{type(e).__name__}: {e}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
