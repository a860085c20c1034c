"""host-d, the Docker engine the fault tests stop and start (scripts/engines.sh, by the pid in its pid
file; the same data root, so its images stay): what they need to stop it mid-operation and to check
that nothing is left half-made when it is back. No other test places a node on it (it is not in
hosts.json but in fault-hosts.json)."""

from __future__ import annotations

import asyncio
import subprocess

import aiodocker

from engine.settings import DockerHost, load_hosts
from tests.conftest import HOSTS_FILE, REPO
from tests.integration.conftest import remove_everything_of, settings_for

FAULT_HOSTS_FILE = HOSTS_FILE.with_name("fault-hosts.json")
ENGINES = REPO / "scripts" / "engines.sh"


def host_d() -> DockerHost:
    [host] = load_hosts(FAULT_HOSTS_FILE)
    return host


def host_a() -> DockerHost:
    return next(h for h in load_hosts(HOSTS_FILE) if h.name == "host-a")


def fault_settings(home, *hosts: DockerHost, **overrides):
    return settings_for(home, hosts=hosts, **overrides)


def engine_d(command: str) -> None:
    """`scripts/engines.sh stop|start host-d`: stopped with SIGTERM by its pid file (dockerd then stops
    its containers, as on a host's shutdown), started again on the same data root."""
    done = subprocess.run([str(ENGINES), command, "host-d"], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr


class StopHostD:
    """A step observer (Coordinator.observe_steps) that stops host-d as soon as `kind.step` has ended,
    before the next step begins, and starts it again `down_s` seconds later (None: the test does)."""

    def __init__(self, kind: str, step: str, down_s: float | None):
        self.kind, self.step, self.down_s = kind, step, down_s
        self.stopped = asyncio.Event()
        self.restarted: asyncio.Task | None = None

    def __call__(self, kind: str, step: str, outcome: str, _seconds: float) -> None:
        if (kind, step, outcome) != (self.kind, self.step, "succeeded") or self.stopped.is_set():
            return
        engine_d("stop")  # blocks the loop a second or two: nothing of the operation runs meanwhile
        self.stopped.set()
        if self.down_s is not None:
            self.restarted = asyncio.create_task(self._start_later())

    async def _start_later(self) -> None:
        await asyncio.sleep(self.down_s)
        await asyncio.to_thread(engine_d, "start")


async def on_host_d(app: str) -> tuple[list[dict], list[str]]:
    """The app's containers (as `docker inspect` shows them) and volumes on host-d."""
    docker = aiodocker.Docker(url=host_d().docker_url)
    try:
        containers = [await c.show() for c in
                      await docker.containers.list(all=True, filters={"label": [f"redis-addons.app={app}"]})]
        volumes = await docker.volumes.list(filters={"label": [f"redis-addons.app={app}"]})
        return containers, sorted(v["Name"] for v in volumes.get("Volumes") or [])
    finally:
        await docker.close()


async def remove_everything_of_app(app: str) -> None:
    """host-d up again (a test that failed may have left it down), then the app's nodes everywhere."""
    await asyncio.to_thread(engine_d, "start")
    await remove_everything_of(app)
    docker = aiodocker.Docker(url=host_d().docker_url)
    try:
        for container in await docker.containers.list(all=True, filters={"label": [f"redis-addons.app={app}"]}):
            await container.delete(force=True, v=True)
        for volume in (await docker.volumes.list(filters={"label": [f"redis-addons.app={app}"]})).get("Volumes") or []:
            await (await docker.volumes.get(volume["Name"])).delete()
    finally:
        await docker.close()
