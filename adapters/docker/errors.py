"""Docker's failures as the engine's errors, which say whether a step may be tried again."""

from __future__ import annotations

import aiohttp
from aiodocker.exceptions import DockerError

from engine.ports import EffectError, EngineUnreachable, TransientError


def translate(error: Exception, doing: str) -> Exception:
    """Docker's answers become the engine's: 5xx and broken connections may pass, 4xx will not."""
    if isinstance(error, DockerError) and error.status == 900 or isinstance(error, aiohttp.ClientConnectionError):
        # aiodocker's 900: it could not connect (no socket, connection refused), not an answer of Docker's
        reason = error.message if isinstance(error, DockerError) else f"{type(error).__name__}: {error}"
        return EngineUnreachable(f"{doing}: the Docker engine does not answer ({reason})")
    if isinstance(error, DockerError):
        if error.status >= 500:
            return TransientError(f"{doing}: Docker answered {error.status}: {error.message}")
        return EffectError(f"{doing}: Docker refused ({error.status}): {error.message}")
    return TransientError(f"{doing}: {type(error).__name__}: {error}")
