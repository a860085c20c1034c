"""Docker engines in memory: hosts holding containers and volumes as dicts.

A container keeps its configuration files; its volume keeps the data files (/data). Starting a
container boots a Redis server from them (tests.unit.fakes.redis), or a Sentinel or an HAProxy
from theirs (tests.unit.fakes.cluster); stopping it shuts the server
down, saving its data when its save rules are on; removing it kills the server (no save). The
semantics are the port's: a missing container counts as stopped and as removed, `is_running`
says None for it. `effects` lists what actually changed, so a test can count each effect.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from dataclasses import dataclass, field

from engine.ports import EffectError, Endpoint, NodeSpec, NodeState, Survey, TransientError
from tests.unit.fakes.cluster import Proxy, Sentinel
from tests.unit.fakes.faults import Faulty
from tests.unit.fakes.redis import DUMP, Server, encode_dump

DATA_DIR = "/data"
ENGINE_LABEL = "redis-addons.addon"


@dataclass
class Container:
    host: str
    name: str
    image: str
    volume: str
    config_dir: str
    labels: dict[str, str]
    memory_bytes: int
    config: dict[str, str] = field(default_factory=dict)  # files under config_dir, by relative path
    running: bool = False
    server: Server | Sentinel | Proxy | None = None
    logs: list[str] = field(default_factory=list)
    crash_loops: bool = False  # its server exits at start, and Docker's restart policy starts it again
    exit_code: int = 0
    image_id: str = ""  # the image its tag named when it was made

    @property
    def state(self) -> tuple[str, str]:
        """Docker's state and status words for it."""
        if self.running:
            return "running", "Up 5 seconds"
        if self.crash_loops:
            return "restarting", "Restarting (1) 1 second ago"
        return "exited", f"Exited ({self.exit_code}) 5 seconds ago"


@dataclass
class Host:
    name: str
    containers: dict[str, Container] = field(default_factory=dict)
    volumes: dict[str, dict[str, bytes]] = field(default_factory=dict)  # volume -> data files by name
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # image -> its labels
    image_ids: dict[str, str] = field(default_factory=dict)  # tag -> the image it names now
    images_missing: set[str] = field(default_factory=set)  # tags never built on this host
    answers: bool = True


def boot(config: dict[str, str], dump: bytes | None) -> Server | Sentinel | Proxy:
    """The process a container runs, by its configuration file: a Redis server, a Sentinel or an HAProxy."""
    if "sentinel.conf" in config:
        return Sentinel.boot(config["sentinel.conf"])
    if "haproxy.cfg" in config:
        return Proxy.boot(config["haproxy.cfg"])
    return Server.boot(config["redis.conf"], dump)


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


class FakeRuntime(Faulty):
    def __init__(self, hosts: list[str], images: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.hosts = {name: Host(name, images={image: {} for image in images}) for name in hosts}
        self.effects: list[tuple] = []
        self.broken_rules: list[str] = []  # the port's preconditions a caller did not meet
        self.lose_data_in_copies = False  # a copy that lands empty (a disk that lies)
        self.closed = False

    # -- hosts learnt or forgotten while the engine runs (engine/hosts_ports.py) -------------

    def add_host(self, host) -> None:
        """A machine a test made beforehand (in `hosts`) is reached; any other one does not answer."""
        self.hosts.setdefault(host.name, Host(host.name, answers=False))

    async def forget_host(self, name: str) -> None:
        self.hosts.pop(name, None)

    # -- looking --------------------------------------------------------------------------

    def _host(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None or not host.answers:
            raise EffectError(f"Docker is unreachable on {name}")
        return host

    def container(self, host: str, name: str) -> Container | None:
        return self.hosts[host].containers.get(name)

    def _existing(self, host: str, name: str, doing: str) -> Container:
        container = self._host(host).containers.get(name)
        if container is None:
            raise EffectError(f"{doing} {name} on {host}: Docker refused (404): no such container")
        return container

    def server_at(self, node: Endpoint) -> tuple[Server, Container] | None:
        for host in self.hosts.values():
            for container in host.containers.values():
                if container.running and container.server and container.server.listens_at(node):
                    return container.server, container
        return None

    def server(self, host: str, name: str) -> Server | None:
        container = self.container(host, name)
        return container.server if container and container.running else None

    def containers(self) -> list[tuple[str, str]]:
        return sorted((h.name, c) for h in self.hosts.values() for c in h.containers)

    def volumes(self) -> list[tuple[str, str]]:
        return sorted((h.name, v) for h in self.hosts.values() for v in h.volumes)

    def run_foreign_server(self, host: str, name: str, address: str, port: int) -> None:
        """A Redis server the engine did not make (no label of its own), holding `port`."""
        conf = f"bind {address}\nport {port}\nuser default on #{'0' * 64}\n"
        container = Container(host, name, "redis:foreign", f"{name}-data", "/etc/redis", {}, 0, {"redis.conf": conf})
        self.hosts[host].volumes[container.volume] = {}
        self.hosts[host].containers[name] = container
        container.running, container.server = True, Server.boot(conf, None)

    def kill(self, host: str, name: str) -> None:
        """The container is killed behind the engine's back (SIGKILL: nothing saved); Docker does not restart it."""
        container = self.hosts[host].containers[name]
        container.running, container.server, container.exit_code = False, None, 137

    def lose_host(self, name: str) -> None:
        """The host's machine is gone: its Docker does not answer and its containers' processes are dead
        (nothing saved). `hosts[name].answers = True` brings it back, its containers exited."""
        self.hosts[name].answers = False
        for container in self.hosts[name].containers.values():
            container.running, container.server, container.exit_code = False, None, 137

    def save(self, container: Container) -> None:
        """The server writes its data file into its volume."""
        self.hosts[container.host].volumes[container.volume][DUMP] = container.server.dump()

    # -- the port -------------------------------------------------------------------------

    async def check(self) -> None:
        self._called("check")
        silent = [name for name, host in self.hosts.items() if not host.answers]
        if silent:
            raise EffectError("Docker is unreachable on " + ", ".join(silent))

    async def create_node(self, spec: NodeSpec) -> None:
        await self._passing("create_node", host=spec.host, container=spec.container)
        await asyncio.sleep(0)
        host = self._host(spec.host)
        container = host.containers.get(spec.container)
        if container is None:
            if spec.volume not in host.volumes:
                host.volumes[spec.volume] = {}
                self.effects.append(("volume created", spec.host, spec.volume))
            container = host.containers[spec.container] = Container(
                spec.host, spec.container, spec.image, spec.volume, spec.config_dir, dict(spec.labels), spec.memory_bytes,
                image_id=host.image_ids.setdefault(spec.image, f"{spec.image}@build-1"))
            # Its configuration volume is named after its data volume: a container on another's data shares it.
            container.config = next((c.config for c in host.containers.values() if c.volume == spec.volume), {})
            self.effects.append(("created", spec.host, spec.container))
        container.config.update(spec.files)

    async def start_node(self, host: str, container: str) -> None:
        await self._passing("start_node", host=host, container=container)
        await asyncio.sleep(0)
        node = self._existing(host, container, "starting")
        if node.running:
            return
        self.effects.append(("started", host, container))
        if [c for c in self.hosts[host].containers.values() if c.running and c.volume == node.volume]:
            self.broken_rules.append(f"{container} started on a volume another running server uses")
        server = boot(node.config, self.hosts[host].volumes[node.volume].get(DUMP))
        # One machine's addresses (every host's engine binds a loopback address of the same kernel): an
        # HAProxy on one host binds the entry address of another, and holds it there.
        taken = [c.name for h in self.hosts.values() for c in h.containers.values() if c.running and c.server
                 and not (c.server.reuses_port and server.reuses_port)  # HAProxy beside HAProxy: SO_REUSEPORT
                 and c.server.address == server.address and {c.server.port, c.server.tls_port} & {server.port, server.tls_port} - {0, None}]
        if taken:  # the server exits at once, as Redis does when it cannot bind, and Docker starts it again
            node.logs.append(f"Could not create server TCP listening socket {server.address}:{server.port}: "
                             "bind: Address already in use")
            node.crash_loops, node.exit_code = True, 1
            return
        node.running, node.server = True, server
        node.logs.append("Ready to accept connections tcp")

    async def is_running(self, host: str, container: str, steadily: bool = False) -> bool | None:
        self._called("is_running", host=host, container=container)
        node = self._host(host).containers.get(container)
        return None if node is None else node.running

    async def copy_data(self, from_host: str, from_container: str, to_host: str, to_container: str, path: str,
                        read_back: bool = False) -> dict:
        await self._passing("copy_data", from_host=from_host, from_container=from_container, to_host=to_host,
                     to_container=to_container)
        await asyncio.sleep(0)
        source = self._existing(from_host, from_container, "copying from")
        target = self._existing(to_host, to_container, "copying to")
        if source.running:
            self.broken_rules.append(f"copy_data from {from_container} while it runs")
        if target.running:
            self.broken_rules.append(f"copy_data into {to_container} while it runs")
        files = dict(self.hosts[from_host].volumes[source.volume])
        if self.lose_data_in_copies:
            files = {name: encode_dump({}, {}) if name == DUMP else data for name, data in files.items()}
        self.hosts[to_host].volumes[target.volume].update(files)
        self.effects.append(("copied", from_host, from_container, to_host, to_container))
        return {"files": len(files), "bytes": sum(len(d) for d in files.values()),
                "sha256": {name: hashlib.sha256(d).hexdigest() for name, d in sorted(files.items())},
                "read_back": read_back}

    async def read_file(self, host: str, container: str, path: str):
        self._called("read_file", host=host, container=container, path=path)
        node = self._existing(host, container, "reading from")
        directory, _, name = path.rpartition("/")
        if directory != DATA_DIR or name not in self.hosts[host].volumes[node.volume]:
            raise EffectError(f"reading {path} of {container} on {host}: Docker refused (404): no such file")
        data = tar_of({name: self.hosts[host].volumes[node.volume][name]})
        for start in range(0, len(data), 4096):
            await asyncio.sleep(0)
            yield data[start:start + 4096]

    async def put_files(self, host: str, container: str, path: str, tar) -> None:
        await self._passing("put_files", host=host, container=container, path=path)
        node = self._existing(host, container, "writing into")
        files = untar(b"".join([chunk async for chunk in tar]))
        if path.rstrip("/") == DATA_DIR:
            self.hosts[host].volumes[node.volume].update(files)
        else:
            node.config.update(files)
        self.effects.append(("files put", host, container, path))

    async def stop_node(self, host: str, container: str, timeout_s: int) -> None:
        await self._passing("stop_node", host=host, container=container)
        await asyncio.sleep(0)
        node = self._host(host).containers.get(container)
        if node is None or not node.running:
            if node is not None:
                node.crash_loops = False
            return
        if node.server.saves_on_shutdown:
            self.save(node)
        node.running, node.server, node.exit_code = False, None, 0
        self.effects.append(("stopped", host, container))

    async def remove_node(self, host: str, container: str, volume: str | None) -> None:
        await self._passing("remove_node", host=host, container=container, volume=volume)
        await asyncio.sleep(0)
        place = self._host(host)
        if place.containers.pop(container, None) is not None:
            self.effects.append(("removed", host, container))
        if volume is not None and [c for c in place.containers.values() if c.volume == volume]:
            raise EffectError(f"removing {container} on {host}: Docker refused (409): volume {volume} is in use")
        if volume is not None and place.volumes.pop(volume, None) is not None:
            self.effects.append(("volume removed", host, volume))

    async def node_logs(self, host: str, container: str, lines: int = 20) -> str:
        node = self.hosts.get(host) and self.hosts[host].containers.get(container)
        return "\n".join(node.logs[-lines:]) + "\n" if node and node.logs else ""

    async def nodes(self, **labels: str) -> list[NodeState]:
        self._called("nodes", **labels)
        if silent := [h.name for h in self.hosts.values() if not h.answers]:  # as aiodocker's list: no partial answer
            raise TransientError(f"listing the nodes: Docker is unreachable on {', '.join(silent)}")
        wanted = [f"{k}={v}" for k, v in labels.items()] or [ENGINE_LABEL]
        return self._listed(wanted)

    async def survey(self, **labels: str) -> Survey:
        self._called("survey", **labels)
        wanted = [f"{k}={v}" for k, v in labels.items()] or [ENGINE_LABEL]
        return Survey(self._listed(wanted), {h.name: "Docker is unreachable" for h in self.hosts.values() if not h.answers})

    async def signal_node(self, host: str, container: str, signal: str) -> None:
        self._called("signal_node", host=host, container=container, signal=signal)
        node = self._existing(host, container, f"signalling {container}")
        if node.running:
            self.effects.append(("signalled", host, container, signal))
            if signal == "SIGUSR2" and node.server.role == "proxy":  # HAProxy reads its file again
                node.server.reload(node.config["haproxy.cfg"])

    async def containers_labelled(self, label: str) -> list[NodeState]:
        self._called("containers_labelled", label=label)
        return self._listed([label])

    def _listed(self, wanted: list[str]) -> list[NodeState]:
        def carries(labels: dict[str, str], label: str) -> bool:
            key, equals, value = label.partition("=")
            return key in labels and (not equals or labels[key] == value)

        return [NodeState(host.name, c.name, c.running, dict(c.labels), *c.state)
                for host in self.hosts.values() if host.answers for c in host.containers.values()
                if all(carries(c.labels, label) for label in wanted)]

    async def ports_in_use(self) -> frozenset[tuple[str, int]]:
        self._called("ports_in_use")
        taken = set()
        for node in (await self.survey()).nodes:
            for label in ("redis-addons.port", "redis-addons.tls-port"):
                port = node.labels.get(label, "")
                if port.isdigit():
                    taken.add((node.labels.get("redis-addons.host", node.host), int(port)))
        return frozenset(taken)

    async def image_labels(self, host: str, image: str) -> dict[str, str] | None:
        self._called("image_labels", host=host, image=image)
        found = self._host(host).images.get(image)
        return None if found is None else dict(found)

    async def image_id(self, host: str, image: str) -> str | None:
        self._called("image_id", host=host, image=image)
        if image in self._host(host).images_missing:
            return None
        return self._host(host).image_ids.setdefault(image, f"{image}@build-1")  # built there, as creating assumes

    async def container_image_id(self, host: str, container: str) -> str | None:
        self._called("container_image_id", host=host, container=container)
        node = self._host(host).containers.get(container)
        return None if node is None else node.image_id

    def rebuild_image(self, image: str) -> None:
        """A security update: the tag names a new image on every host; the containers keep theirs."""
        for host in self.hosts.values():
            builds = int(host.image_ids.get(image, "@build-0").rsplit("@build-", 1)[1])
            host.image_ids[image] = f"{image}@build-{builds + 1}"

    async def close(self) -> None:
        self.closed = True
