"""Host management: the installation's Docker hosts as facts in the log (domain/host.py).

The hosts file still seeds them: at start, a host it names that the log does not know is recorded as
added ("hosts file"), and its details as the file gives them win (an operator edits the file, as always).
Hosts added by an operator live in the log only; the runtime and the placer learn them at once, no restart.
A host being drained, or drained, takes no new node (the placer skips it from the moment the drain is
asked); the drain itself runs in engine/hosts_drain.py. Only an empty host, not draining, is removed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import structlog

from domain.host import DRAINED, DRAINING, REMOVED, Host, check_host_details
from domain.host_errors import HostNotUsable, InvalidHost, UnknownHost
from domain.host_roster import ROSTER_ID, HostRoster
from engine.host_tls import HostTLSError, host_tls
from engine.hosts_ports import HostConnections
from engine.inventory import Inventory
from engine.placing import Placing
from engine.ports import EffectError, ReadModels, TransientError
from engine.settings import DockerHost
from engine.store import AggregateNotFoundError, EventLog, IntegrityError

log = structlog.get_logger("hosts")

PROBE_TIMEOUT_S = 10.0


def as_docker_host(host: Host, tls_base: Path) -> DockerHost:
    tls = host_tls(host.name, host.docker_url, host.tls, tls_base)
    return DockerHost(host.name, host.docker_url, host.address, host.first_port, host.last_port, host.memory_mib, tls)


def details_of(host: DockerHost, tls_entry: dict | None) -> dict:
    return dict(docker_url=host.docker_url, address=host.address, first_port=host.first_port,
                last_port=host.last_port, memory_mib=host.memory_mib, tls=tls_entry)


def tls_entry_of(host: DockerHost) -> dict | None:
    """A file host's TLS files as paths (what they hold is never recorded)."""
    return None if host.tls is None else {"ca": str(host.tls.ca), "cert": str(host.tls.cert), "key": str(host.tls.key)}


class HostBook:
    def __init__(self, events: EventLog, file_hosts, placing: Placing, runtime: HostConnections, inventory: Inventory,
                 views: ReadModels, images: list[str], tls_base: Path):
        self.events, self.file_hosts, self.placing, self.runtime = events, tuple(file_hosts), placing, runtime
        self.inventory, self.views, self.images, self.tls_base = inventory, views, images, tls_base
        self.states: dict[str, str] = {h.name: "active" for h in self.file_hosts}  # name -> Host.state
        self.on_drain = None  # set by the drainer: woken when a drain is asked
        self.drainer = None  # engine/hosts_drain.py, set by engine/hosts_setup.py
        placing.before_placing.append(self.refresh)  # a drain asked through another process closes the host here too

    # -- start: the file seeds the log, the log completes the file ---------------------------------

    async def load(self) -> None:
        roster = await self._roster()
        for host in self.file_hosts:
            await self._seed(host, roster)
        for name in [n for n in roster.names if n not in self.states]:
            await self._learn(await self.events.get(Host.id_for(name)))

    async def refresh(self) -> None:
        """What another engine process on the same store recorded since (a host added, drained, removed), learnt
        here: at each drain round and each listing."""
        for name in (await self._roster()).names:
            host: Host = await self.events.get(Host.id_for(name))
            if host.state != self.states.get(name):
                await self._learn(host)

    async def _learn(self, host: Host) -> None:
        if host.state == REMOVED:
            await self._close_for_good(host.name)
        elif self.states.get(host.name, REMOVED) == REMOVED:
            try:
                self._open(as_docker_host(host, self.tls_base))
            except HostTLSError as error:  # its TLS files are gone: it is known, and answers nothing
                log.warning("host added before cannot be reached", host=host.name, error=str(error))
                return
        self._follow(host)

    async def _roster(self) -> HostRoster:
        try:
            return await self.events.get(ROSTER_ID)
        except AggregateNotFoundError:
            return HostRoster()

    async def _seed(self, file_host: DockerHost, roster: HostRoster) -> None:
        details = details_of(file_host, tls_entry_of(file_host))
        for _ in range(3):  # another process seeds the same file at the same time: read again
            try:
                try:
                    host: Host = await self.events.get(Host.id_for(file_host.name))
                    if host.state != REMOVED:
                        host.reconfigure(**details)
                except AggregateNotFoundError:
                    host = Host(name=file_host.name, source="hosts file", **details)
                roster.enrol(file_host.name)
                await self.events.save(host, roster)
                break
            except IntegrityError:
                roster = await self._roster()
        else:
            host = await self.events.get(Host.id_for(file_host.name))
        if host.state == REMOVED:  # removed by an operator and still in the file: the log wins
            log.warning("host in the hosts file was removed: it takes no node (take it out of the file)",
                        host=host.name)
            await self._close_for_good(host.name)
        self._follow(host)

    def _open(self, docker_host: DockerHost) -> None:
        self.runtime.add_host(docker_host)
        if all(h.name != docker_host.name for h in self.placing.hosts):
            self.placing.hosts.append(docker_host)

    async def _close_for_good(self, name: str) -> None:
        self.placing.hosts[:] = [h for h in self.placing.hosts if h.name != name]
        self.placing.closed.discard(name)
        await self.runtime.forget_host(name)

    def _follow(self, host: Host) -> None:
        self.states[host.name] = host.state
        if host.state in (DRAINING, DRAINED):
            self.placing.closed.add(host.name)
        else:
            self.placing.closed.discard(host.name)

    # -- commands -------------------------------------------------------------------------------

    async def add(self, name: str, docker_url: str, address: str, first_port: int, last_port: int, memory_mib: int,
                  tls: dict | None = None) -> dict:
        """Checked before anything is recorded: the details, the Docker engine answering (over TLS with our
        certificate where it is tcp://), and every image the engine runs present there."""
        check_host_details(name, docker_url, address, first_port, last_port, memory_mib)
        if self.states.get(name, REMOVED) != REMOVED:
            raise InvalidHost(f"host {name} is known already ({self.states[name]}): choose another name")
        try:
            docker_host = DockerHost(name, docker_url, address, first_port, last_port, memory_mib,
                                     host_tls(name, docker_url, tls, self.tls_base))
        except HostTLSError as error:
            raise InvalidHost(str(error)) from None
        await self._probe(docker_host)
        try:
            host: Host = await self.events.get(Host.id_for(name))
            host.add_again(docker_url, address, first_port, last_port, memory_mib, tls)
        except AggregateNotFoundError:
            host = Host(name=name, docker_url=docker_url, address=address, first_port=first_port, last_port=last_port,
                        memory_mib=memory_mib, tls=tls)
        roster = await self._roster()
        roster.enrol(name)
        try:
            await self.events.save(host, roster)
        except IntegrityError:
            await self.runtime.forget_host(name)
            raise InvalidHost(f"host {name} was added meanwhile by another request") from None
        self._open(docker_host)
        self._follow(host)
        log.info("host added", host=name, docker_url=docker_url, address=address, ports=f"{first_port}-{last_port}",
                 memory_mib=memory_mib)
        return (await self.list(name))[0]

    async def _probe(self, docker_host: DockerHost) -> None:
        """Reachable (and, over tcp://, its certificate ours and ours accepted), with every image: else refused,
        and the connection forgotten."""
        self.runtime.add_host(docker_host)
        try:
            present = await asyncio.wait_for(asyncio.gather(*(self.runtime.image_id(docker_host.name, image)
                                                                for image in self.images)), PROBE_TIMEOUT_S)
        except (EffectError, TransientError, asyncio.TimeoutError, OSError) as error:
            await self.runtime.forget_host(docker_host.name)
            why = str(error) or f"no answer within {PROBE_TIMEOUT_S:.0f} s"
            raise HostNotUsable(f"host {docker_host.name}: its Docker engine at {docker_host.docker_url} cannot be "
                                f"used ({why}); nothing was recorded") from None
        missing = [image for image, found in zip(self.images, present) if found is None]
        if missing:
            await self.runtime.forget_host(docker_host.name)
            raise HostNotUsable(
                f"host {docker_host.name} lacks {len(missing)} image(s) the engine runs: {', '.join(missing)}; build "
                f"them there with `scripts/build-images.py --engines \"{docker_host.name}={docker_host.docker_url}\"`"
                ", then add the host again; nothing was recorded")

    async def drain(self, name: str, reason: str = "") -> dict:
        host = await self._host(name)
        host.start_drain(reason)
        await self.events.save(host)
        self._follow(host)  # from now on the placer skips it
        log.info("host drain asked", host=name)
        if self.on_drain:
            self.on_drain()
        return (await self.list(name))[0]

    async def remove(self, name: str) -> dict:
        host = await self._host(name)
        host.remove(len(await self.nodes_on(name)))
        await self.events.save(host)
        self.states[name] = REMOVED
        await self._close_for_good(name)
        log.info("host removed", host=name)
        return {"name": name, "state": REMOVED}

    async def finish_drain(self, name: str, nodes_left: int) -> None:
        host = await self._host(name)
        host.finish_drain(nodes_left)
        if host.pending_events:
            await self.events.save(host)
            log.info("host drained", host=name)
        self._follow(host)

    async def _host(self, name: str) -> Host:
        if name not in self.states:
            raise UnknownHost(f"unknown host {name!r}: `redis-addons hosts` lists them")
        return await self.events.get(Host.id_for(name))

    # -- queries --------------------------------------------------------------------------------

    @property
    def draining(self) -> list[str]:
        return sorted(name for name, state in self.states.items() if state == DRAINING)

    async def nodes_on(self, name: str) -> list[dict]:
        """Every node of every addon on the host that is not retired (a node left behind holds it too)."""
        def read() -> list[dict]:
            found = []
            for row in self.views.addons():
                found += [dict(node, addon=row["name"], plan=row["plan"]) for node in self.views.nodes(row["name"])
                          if node["host"] == name and node["state"] != "retired"]
            return found
        return await asyncio.to_thread(read)

    async def list(self, only: str | None = None) -> list[dict]:
        """Each host: where it is, its state, its capacity, the memory and ports its nodes hold, its nodes."""
        await self.refresh()
        names = [only] if only else [n for n, state in self.states.items() if state != REMOVED]
        if only and only not in self.states:
            raise UnknownHost(f"unknown host {only!r}: `redis-addons hosts` lists them")
        memory, ports = Counter(), {}
        for tenant in self.inventory.tenants():
            memory[tenant.host] += tenant.memory_mib
            ports.setdefault(tenant.host, set()).update(tenant.ports)
        rows = []
        for name in names:
            host: Host = await self.events.get(Host.id_for(name))
            nodes = await self.nodes_on(name)
            rows.append({
                "name": name, "state": host.state, "source": host.source, "docker_url": host.docker_url,
                "address": host.address, "ports": [host.first_port, host.last_port],
                "memory_mib": host.memory_mib, "used_memory_mib": memory[name],
                "used_ports": sorted(ports.get(name, ())), "tls": host.tls is not None,
                "nodes": [{"addon": n["addon"], "role": n["role"], "container": n["container"], "port": n["port"],
                           "state": n["state"]} for n in nodes],
            })
        return rows
