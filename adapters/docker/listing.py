"""The engine's containers as listed by the Docker engines: by label, across every host, and the
survey that tells a host that does not answer from one that has none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from engine.ports import NodeState, Survey

SURVEY_TIMEOUT_S = 5.0  # a host whose engine hangs is taken for down after this long


async def listed(docker: Callable[[str], aiodocker.Docker], known: Collection[str], wanted: list[str],
                 hosts: Collection[str] | None = None) -> list[NodeState]:
    """The containers with the `wanted` label filters on `hosts` (every `known` host by default)."""
    async def on(name: str) -> list[tuple[str, dict]]:
        containers = await docker(name).containers.list(all=True, filters={"label": wanted})
        return [(name, c._container) for c in containers]

    found, seen = [], set()
    for name, info in [pair for host in await asyncio.gather(*(on(n) for n in hosts or known)) for pair in host]:
        if info["Id"] in seen:  # two host names may share one engine (a laptop)
            continue
        seen.add(info["Id"])
        labels = info.get("Labels") or {}
        # Hosts sharing one engine list the same containers: the label says whose it is.
        owner = labels.get("redis-addons.host") if labels.get("redis-addons.host") in known else name
        found.append(
            NodeState(
                host=owner,
                container=info["Names"][0].lstrip("/"),
                running=info["State"] == "running",
                labels=info.get("Labels", {}),
                state=info["State"],
                status=info.get("Status", ""),
            )
        )
    return found


async def survey(docker: Callable[[str], aiodocker.Docker], known: Collection[str], wanted: list[str]) -> Survey:
    """Each host listed on its own: one that fails or hangs is named silent, the others still count."""
    async def on(name: str) -> tuple[str, list[NodeState] | str]:
        try:
            return name, await asyncio.wait_for(listed(docker, known, wanted, [name]), SURVEY_TIMEOUT_S)
        except (DockerError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            return name, f"{type(e).__name__} {e}".strip()

    answers = await asyncio.gather(*(on(n) for n in known))
    return Survey(nodes=[n for _, found in answers if isinstance(found, list) for n in found],
                  silent={name: found for name, found in answers if isinstance(found, str)})
