"""What host management needs of the runtime beyond engine/ports.py's Runtime: learning a host while the
engine runs, and forgetting one (adapters/docker/runtime.py DockerRuntime has both)."""

from __future__ import annotations

from typing import Protocol


class HostConnections(Protocol):
    def add_host(self, host) -> None:
        """Reach `host` (an engine.settings.DockerHost) from now on."""

    async def forget_host(self, name: str) -> None:
        """Stop reaching the host: no longer surveyed, its connection closed."""

    async def image_id(self, host: str, image: str) -> str | None:
        """As Runtime.image_id: None when the host has no such image; raises when the host does not answer."""
