"""Restart through an HTTP hook on loopback: POST the app's new environment."""

from __future__ import annotations

import aiohttp

from engine.ports import EffectError, TransientError


async def call_hook(url: str, app: str, environment: dict[str, str]) -> str:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            # No redirects: the environment holds the password and must not leave loopback.
            async with session.post(url, json={"app": app, "environment": environment}, allow_redirects=False) as response:
                if response.status >= 500:
                    raise TransientError(f"restart hook answered {response.status}")
                if response.status >= 300:
                    raise EffectError(f"restart hook answered {response.status}: a 2xx is expected (redirects are not followed)")
                return f"restart hook answered {response.status}"
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise TransientError(f"restart hook unreachable: {type(e).__name__}") from None
