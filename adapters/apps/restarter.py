"""The AppRestarter port: picks the way the app was registered with."""

from __future__ import annotations

from adapters.apps.docker_app import DockerAppRestarter
from adapters.apps.hook import call_hook


class AppRestarter:
    def __init__(self, docker: DockerAppRestarter):
        self.docker = docker

    async def restart(self, app: str, method: dict, environment: dict[str, str]) -> str:
        kind = method.get("kind")
        if kind == "docker":
            return await self.docker.restart(method["label"], environment)
        if kind == "hook":
            return await call_hook(method["url"], app, environment)
        if kind == "none":
            return f"app {app} is registered with no restart method: nothing to restart"
        return f"app {app} has no restart method registered: nothing to restart"
