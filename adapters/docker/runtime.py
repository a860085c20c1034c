"""The Runtime port over aiodocker: one client per Docker host, host networking only.

Every effect looks before it acts (the container and volume names are idempotency keys),
so a saga step re-run after a crash finds its own work and carries on.
"""

from __future__ import annotations

import asyncio

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError

from adapters.docker import data_copy, listing, stats
from adapters.docker.connection import docker_client
from adapters.docker.container_config import (
    ADOPTS_LABEL, DATA_DIR, config_archive, config_volume, config_volume_labels, container_config, user_of,
)
from adapters.docker.data_copy import UNCOMPRESSED
from adapters.docker.errors import translate
from adapters.docker.tar_owner import owned_by, tar_owners
from engine.ports import EffectError, NodeSpec, NodeState, Survey
from engine.settings import DockerHost


class DockerRuntime:
    def __init__(self, hosts: tuple[DockerHost, ...]):
        self.hosts = {h.name: h for h in hosts}
        self._clients: dict[str, aiodocker.Docker] = {}

    def client(self, host: str) -> aiodocker.Docker:
        return self._docker(host)

    def add_host(self, host: DockerHost) -> None:
        """A host added while the engine runs (engine/hosts.py): reached from now on, no restart needed."""
        self.hosts[host.name] = host

    async def forget_host(self, name: str) -> None:
        """A host removed (or refused when added): no longer surveyed, its connection closed."""
        self.hosts.pop(name, None)
        if (client := self._clients.pop(name, None)) is not None:
            await client.close()

    def _docker(self, host: str) -> aiodocker.Docker:
        if host not in self._clients:
            self._clients[host] = docker_client(self.hosts[host])
        return self._clients[host]

    async def check(self) -> None:
        async def answers(name: str) -> str | None:
            try:
                await asyncio.wait_for(self._docker(name).version(), 5)
                return None
            except (DockerError, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
                return f"{name} ({self.hosts[name].docker_url}): {type(e).__name__} {e}".strip()

        silent = [r for r in await asyncio.gather(*(answers(n) for n in self.hosts)) if r]
        if silent:
            raise EffectError("Docker is unreachable on " + "; ".join(silent) + " — is `make setup` done and are the engines running?")

    async def create_node(self, spec: NodeSpec) -> None:
        docker = self._docker(spec.host)
        try:
            try:
                container = await docker.containers.get(spec.container)
            except DockerError as e:
                if e.status != 404:
                    raise
                existed = await self._ensure_volume(docker, spec.volume, spec.labels)
                await self._ensure_volume(docker, config_volume(spec.volume),
                                          config_volume_labels(spec.volume, spec.labels))
                container = await docker.containers.create(container_config(spec, adopts=existed),
                                                           name=spec.container)
            if spec.files:  # none: a container recreated on volumes that hold its configuration already
                await container.put_archive(spec.config_dir, config_archive(spec.files, spec.files_owner))
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"creating {spec.container} on {spec.host}") from None

    async def _ensure_volume(self, docker: aiodocker.Docker, name: str, labels: dict[str, str]) -> bool:
        """Made unless there; True when it was there already."""
        try:
            await docker.volumes.get(name)
            return True
        except DockerError as e:
            if e.status != 404:
                raise
            await docker.volumes.create({"Name": name, "Labels": labels})
            return False

    async def start_node(self, host: str, container: str) -> None:
        try:
            node = await self._docker(host).containers.get(container)
            shown = await node.show()
            if not shown["State"]["Running"]:
                if shown["Config"]["Labels"].get(ADOPTS_LABEL) and shown["State"]["StartedAt"].startswith("0001-"):
                    await self._adopt_data(host, container, user_of(shown["Config"]))
                await node.start()
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"starting {container} on {host}") from None

    async def _adopt_data(self, host: str, container: str, user: tuple[int, int] | None) -> None:
        """Before a container made on a volume that held data first starts, the files there that are not
        its user's (written by a server that ran as root) become its user's: written again in place,
        through the archive API (Docker has no chown), with the same bytes. Looked for in one read of the
        directory; nothing is written when every file is the user's already (any volume this release made)."""
        if user is None:
            return
        docker = self._docker(host)
        async with docker._query(f"containers/{container}/archive", params={"path": f"{DATA_DIR}/."},
                                 headers=UNCOMPRESSED) as response:
            owners = await tar_owners(response.content)
        if owners <= {user}:
            return
        async with docker._query(f"containers/{container}/archive", params={"path": f"{DATA_DIR}/."},
                                 headers=UNCOMPRESSED) as response:
            await self.put_files(host, container, DATA_DIR, response.content.iter_chunked(1 << 20))

    async def is_running(self, host: str, container: str, steadily: bool = False) -> bool | None:
        try:
            node = await self._docker(host).containers.get(container)
            state = (await node.show())["State"]
            # Docker says Running (and Restarting) between a crash-looping server's attempts.
            return bool(state["Running"]) and not (steadily and state.get("Restarting"))
        except DockerError as e:
            if e.status == 404:
                return None
            raise translate(e, f"inspecting {container} on {host}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise translate(e, f"inspecting {container} on {host}") from None

    async def copy_data(
        self, from_host: str, from_container: str, to_host: str, to_container: str, path: str, read_back: bool = False
    ) -> dict:
        """Stream the directory from one engine to the other through the archive API, hashing every
        file as it passes; with `read_back`, read the target again and compare every file's SHA-256.
        The files land owned by the user the target's server runs as, whoever owned them at the source.
        The directory's content is what moves (`path/.`): the target's root filesystem is read-only, so
        only its volume, `path` itself, takes an archive."""
        return await data_copy.copy_data(self._docker, from_host, from_container, to_host, to_container, path, read_back)

    async def read_file(self, host: str, container: str, path: str):
        try:
            async with self._docker(host)._query(f"containers/{container}/archive", params={"path": path},
                                                 headers=UNCOMPRESSED) as response:
                async for chunk in response.content.iter_chunked(1 << 20):
                    yield chunk
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"reading {path} of {container} on {host}") from None

    async def put_files(self, host: str, container: str, path: str, tar) -> None:
        """Extract the tar stream at `path` (on a volume: the root filesystem is read-only), every file
        owned by the user the container's server runs as (a backup of a node that ran as root holds
        root's files)."""
        try:
            node = await self._docker(host).containers.get(container)
            owner = user_of((await node.show())["Config"])
            async with self._docker(host)._query(
                f"containers/{container}/archive", method="PUT", params={"path": path},
                data=owned_by(tar, *owner) if owner else tar, headers={"Content-Type": "application/x-tar"},
            ):
                pass
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"writing into {path} of {container} on {host}") from None

    async def stop_node(self, host: str, container: str, timeout_s: int) -> None:
        try:
            node = await self._docker(host).containers.get(container)
            if (await node.show())["State"]["Running"]:
                await node.stop(t=timeout_s)
        except DockerError as e:
            if e.status == 404:
                return
            raise translate(e, f"stopping {container} on {host}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise translate(e, f"stopping {container} on {host}") from None

    async def remove_node(self, host: str, container: str, volume: str | None) -> None:
        docker = self._docker(host)
        try:
            try:
                node = await docker.containers.get(container)
                await node.delete(force=True, v=True)
            except DockerError as e:
                if e.status != 404:
                    raise
            for name in (volume, config_volume(volume)) if volume else ():
                try:  # a node made before configuration volumes has none: missing counts as removed
                    await (await docker.volumes.get(name)).delete()
                except DockerError as e:
                    if e.status != 404:
                        raise
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"removing {container} on {host}") from None

    async def node_logs(self, host: str, container: str, lines: int = 20) -> str:
        try:
            node = await self._docker(host).containers.get(container)
            return "".join(await node.log(stdout=True, stderr=True, tail=lines))
        except (DockerError, aiohttp.ClientError, OSError):
            return ""

    async def nodes(self, **labels: str) -> list[NodeState]:
        wanted = [f"{k}={v}" for k, v in labels.items()] or ["redis-addons.addon"]
        return await listing.listed(self._docker, self.hosts, wanted)

    async def survey(self, **labels: str) -> Survey:
        wanted = [f"{k}={v}" for k, v in labels.items()] or ["redis-addons.addon"]
        return await listing.survey(self._docker, self.hosts, wanted)

    async def signal_node(self, host: str, container: str, signal: str) -> None:
        try:
            await (await self._docker(host).containers.get(container)).kill(signal=signal)
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"sending {signal} to {container} on {host}") from None

    async def containers_labelled(self, label: str) -> list[NodeState]:
        try:
            return await listing.listed(self._docker, self.hosts, [label])
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"listing the containers labelled {label}") from None

    async def ports_in_use(self) -> frozenset[tuple[str, int]]:
        taken = set()
        for node in (await self.survey()).nodes:  # a host down takes no new node: its ports do not matter
            for label in ("redis-addons.port", "redis-addons.tls-port"):
                port = node.labels.get(label, "")
                if port.isdigit():
                    taken.add((node.labels.get("redis-addons.host", node.host), int(port)))
        return frozenset(taken)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients.values()), return_exceptions=True)
        self._clients.clear()

    async def image_labels(self, host: str, image: str) -> dict[str, str] | None:
        try:
            info = await self._docker(host).images.inspect(image)
        except DockerError as e:
            if e.status == 404:
                return None
            raise translate(e, f"inspecting image {image} on {host}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise translate(e, f"inspecting image {image} on {host}") from None
        return dict((info.get("Config") or {}).get("Labels") or {})

    async def image_id(self, host: str, image: str) -> str | None:
        try:
            return (await self._docker(host).images.inspect(image))["Id"]
        except DockerError as e:
            if e.status == 404:
                return None
            raise translate(e, f"inspecting image {image} on {host}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise translate(e, f"inspecting image {image} on {host}") from None

    async def container_image_id(self, host: str, container: str) -> str | None:
        try:
            node: DockerContainer = await self._docker(host).containers.get(container)
            return (await node.show())["Image"]
        except DockerError as e:
            if e.status == 404:
                return None
            raise translate(e, f"inspecting {container} on {host}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise translate(e, f"inspecting {container} on {host}") from None

    async def container_reading(self, host: str, container: str):
        try:
            return await stats.container_reading(self._docker(host), container)
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"reading the stats of {container} on {host}") from None

    async def stored_bytes(self, host: str, container: str, directory: str, rdb: str, aof_dir: str, aof_file: str) -> int:
        try:
            return await stats.stored_bytes(self._docker(host), container, directory, rdb, aof_dir, aof_file)
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"reading the data files' size of {container} on {host}") from None
