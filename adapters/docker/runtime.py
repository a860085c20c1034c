"""The Runtime port over aiodocker: one client per Docker host, host networking only.

Every effect looks before it acts (the container and volume names are idempotency keys),
so a saga step re-run after a crash finds its own work and carries on.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import PurePosixPath

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError

from adapters.docker import stats
from adapters.docker.tar_owner import owned_by, tar_owners
from adapters.docker.tar_stream import tar_file_digests
from engine.ports import EffectError, EngineUnreachable, NodeSpec, NodeState, Survey, TransientError
from engine.settings import DockerHost


def config_archive(files: dict[str, str], owner: tuple[int, int] = (999, 999)) -> bytes:
    """A tar of these files (relative paths), as the Docker archive API wants it. Readable by their
    `owner` only, the user the server runs as (by default the engine images' redis): a TLS key is
    among them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = sorted({str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            info.uid, info.gid = owner
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.uid, info.gid = owner
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def config_volume(volume: str) -> str:
    """A node's redis.conf and certificates live on a volume of their own beside its data volume, so its
    container can be recreated at any time (they were once in the container's root filesystem, lost
    with it); a plan change still copies only the data."""
    return f"{volume}-config"


def config_volume_labels(volume: str, labels: dict[str, str]) -> dict[str, str]:
    """The node's labels (so whatever removes an app's volumes by label finds it too), but not its addon
    label: counted by addon, a node has one volume, its data."""
    kept = {key: value for key, value in labels.items() if key != "redis-addons.addon"}
    return {**kept, "redis-addons.config-of": volume}


# Least privilege for every container (README, "What runs with which privileges"): the server runs as
# its image's user, never root, from a read-only root filesystem (its data and configuration are on
# volumes), with no capability (Redis, Sentinel and HAProxy bind ports above 1024 and touch only files
# of their own user) and no way to gain privileges back (no setuid binary in the images anyway).
# Threads count against the pids limit. Redis and Sentinel run 5 (main, 3 background I/O threads,
# jemalloc's; more with io-threads) plus one child per save or AOF rewrite; HAProxy a master and a worker
# with one thread per CPU of the host, and for up to 10 s after a reload the old worker too (`docker top`:
# 5, and 1 + 2 on a 2-CPU host). 256 leaves room for a reloading HAProxy on a 120-CPU host and still
# stops a fork bomb at once.
PIDS_LIMIT = 256
NO_NEW_PRIVILEGES = "no-new-privileges:true"
DATA_DIR = "/data"
# A container made on a data volume that held files already (made by an earlier release, whose server ran
# as root): at its first start the files it finds there become its user's (start_node).
ADOPTS_LABEL = "redis-addons.adopts-volume"


def user_of(config: dict) -> tuple[int, int] | None:
    """The numeric uid:gid a container runs as (its Config.User, else the image's); None for root."""
    uid, _, gid = (config.get("User") or "0").partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return None
    return int(uid), int(gid or uid)


# aiohttp asks for gzip by default, and dockerd then compresses archives on one core at ~40 MB/s:
# the tar is ten times faster as it is (a backup compresses it once, its own way).
UNCOMPRESSED = {"Accept-Encoding": "identity"}
SURVEY_TIMEOUT_S = 5.0  # a host whose engine hangs is taken for down after this long


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


async def file_digests(docker: aiodocker.Docker, container: str, path: str) -> dict[str, tuple[int, str]]:
    """{file name: (size, sha256)} of every regular file under `path`, read as a stream."""
    async with docker._query(f"containers/{container}/archive", params={"path": path}, headers=UNCOMPRESSED) as response:
        return await tar_file_digests(response.content)


def named_under(path: str, digests: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Files of the archive of `path/.` ("./dump.rdb") named as in the archive of `path` ("data/dump.rdb")."""
    base = PurePosixPath(path).name
    return {f"{base}/{name.removeprefix('./')}": value for name, value in digests.items()}


class QueueStream:
    """The chunks a tee puts in a queue, read back as a stream (b"" at the end)."""

    def __init__(self, queue: asyncio.Queue):
        self._queue = queue

    async def read(self, _: int) -> bytes:
        return await self._queue.get()


class DockerRuntime:
    def __init__(self, hosts: tuple[DockerHost, ...]):
        self.hosts = {h.name: h for h in hosts}
        self._clients: dict[str, aiodocker.Docker] = {}

    def client(self, host: str) -> aiodocker.Docker:
        return self._docker(host)

    def _docker(self, host: str) -> aiodocker.Docker:
        if host not in self._clients:
            self._clients[host] = aiodocker.Docker(url=self.hosts[host].docker_url)
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
                container = await docker.containers.create(self._container_config(spec, adopts=existed),
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

    @staticmethod
    def _container_config(spec: NodeSpec, adopts: bool = False) -> dict:
        uid, gid = spec.files_owner
        config = {
            "Image": spec.image,
            "User": f"{uid}:{gid}",
            "Labels": {**spec.labels, **({ADOPTS_LABEL: "1"} if adopts else {})},
            "StopTimeout": 30,
            "HostConfig": {
                "NetworkMode": "host",  # bound to the host's 127.x address, never a bridge
                "Memory": spec.memory_bytes,
                "MemorySwap": spec.memory_bytes,  # the same: no swap
                "Mounts": [{"Type": "volume", "Source": spec.volume, "Target": DATA_DIR},
                           {"Type": "volume", "Source": config_volume(spec.volume), "Target": spec.config_dir}],
                "RestartPolicy": {"Name": "unless-stopped"},
                "ReadonlyRootfs": True,
                "CapDrop": ["ALL"],
                "SecurityOpt": [NO_NEW_PRIVILEGES],
                "PidsLimit": PIDS_LIMIT,
            },
        }
        if spec.command:  # none: the image's own (a component's, with its configuration file)
            config["Cmd"] = spec.command
        return config

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

    async def is_running(self, host: str, container: str) -> bool | None:
        try:
            node = await self._docker(host).containers.get(container)
            return bool((await node.show())["State"]["Running"])
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
        source, target = self._docker(from_host), self._docker(to_host)
        contents = f"{path.rstrip('/')}/."
        passing: asyncio.Queue[bytes] = asyncio.Queue()
        try:
            owner = user_of((await (await target.containers.get(to_container)).show())["Config"])
            async with source._query(f"containers/{from_container}/archive", params={"path": contents},
                                     headers=UNCOMPRESSED) as response:
                hashing = asyncio.create_task(tar_file_digests(QueueStream(passing)))

                async def tee():
                    async for chunk in response.content.iter_chunked(1 << 20):
                        passing.put_nowait(chunk)
                        yield chunk
                    passing.put_nowait(b"")

                async with target._query(
                    f"containers/{to_container}/archive", method="PUT", params={"path": path},
                    data=owned_by(tee(), *owner) if owner else tee(), headers={"Content-Type": "application/x-tar"},
                ):
                    pass
                sent = named_under(path, await hashing)
            landed = named_under(path, await file_digests(target, to_container, contents)) if read_back else sent
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"copying {path} from {from_container} on {from_host} to {to_container} on {to_host}") from None
        if sent != landed:
            differ = sorted(set(sent.items()) ^ set(landed.items()))
            raise EffectError(f"copy of {path} to {to_host} is not identical: {[name for name, _ in differ][:5]}")
        return {
            "files": len(sent),
            "bytes": sum(size for size, _ in sent.values()),
            "sha256": {name: digest for name, (_, digest) in sorted(sent.items())},
            "read_back": read_back,
        }

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
        return await self._listed([f"{k}={v}" for k, v in labels.items()] or ["redis-addons.addon"])

    async def survey(self, **labels: str) -> Survey:
        wanted = [f"{k}={v}" for k, v in labels.items()] or ["redis-addons.addon"]

        async def on(name: str) -> tuple[str, list[NodeState] | str]:
            try:
                return name, await asyncio.wait_for(self._listed(wanted, [name]), SURVEY_TIMEOUT_S)
            except (DockerError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                return name, f"{type(e).__name__} {e}".strip()

        answers = await asyncio.gather(*(on(n) for n in self.hosts))
        return Survey(nodes=[n for _, found in answers if isinstance(found, list) for n in found],
                      silent={name: found for name, found in answers if isinstance(found, str)})

    async def signal_node(self, host: str, container: str, signal: str) -> None:
        try:
            await (await self._docker(host).containers.get(container)).kill(signal=signal)
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"sending {signal} to {container} on {host}") from None

    async def containers_labelled(self, label: str) -> list[NodeState]:
        try:
            return await self._listed([label])
        except (DockerError, aiohttp.ClientError, OSError) as e:
            raise translate(e, f"listing the containers labelled {label}") from None

    async def _listed(self, wanted: list[str], hosts: list[str] | None = None) -> list[NodeState]:
        async def on(name: str) -> list[tuple[str, dict]]:
            listed = await self._docker(name).containers.list(all=True, filters={"label": wanted})
            return [(name, c._container) for c in listed]

        found, seen = [], set()
        for name, info in [pair for host in await asyncio.gather(*(on(n) for n in hosts or self.hosts)) for pair in host]:
            if info["Id"] in seen:  # two host names may share one engine (a laptop)
                continue
            seen.add(info["Id"])
            labels = info.get("Labels") or {}
            # Hosts sharing one engine list the same containers: the label says whose it is.
            owner = labels.get("redis-addons.host") if labels.get("redis-addons.host") in self.hosts else name
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
