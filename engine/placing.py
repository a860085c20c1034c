"""Placement under one lock: it reads what the inventory holds and the save that follows
reserves it, so two placements never pick the same port. Several engine processes on one PostgreSQL store
place under one lock of the installation's too (PlacementLock), each reading the others' saves first."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, nullcontext
from typing import AsyncContextManager, Protocol

from domain.errors import NoHostWithRoom
from domain.placement import NodeRequest, Placement, free_port, place, place_nodes
from engine.inventory import Inventory
from engine.ports import Runtime


class PlacementLock(Protocol):
    """One placement at a time across the installation's processes (adapters/postgres/placement_lock.py)."""

    def held(self) -> AsyncContextManager:
        """Held until the placement's save is done; raises TransientError when it cannot be had in time."""


class SoleProcess:
    """The only process on its store: the local lock is enough."""

    def held(self) -> AsyncContextManager:
        return nullcontext()


class Placing:
    def __init__(self, hosts, inventory: Inventory, runtime: Runtime, shared_lock: PlacementLock | None = None):
        self.hosts, self.inventory, self.runtime = list(hosts), inventory, runtime  # engine/hosts.py adds to them
        self.closed: set[str] = set()  # hosts being drained (or drained): they take no new node
        # Async callables: what other engine processes recorded of hosts (added, closed) is learnt before the
        # survey, so that a host learnt then is surveyed too; their nodes (the log's latest) under the locks.
        self.before_placing = []
        self.while_held = []
        self.lock = asyncio.Lock()
        self.shared_lock = shared_lock or SoleProcess()

    @property
    def open_hosts(self) -> list:
        return [h for h in self.hosts if h.name not in self.closed]

    @asynccontextmanager
    async def held(self):
        """Hold placement until the caller has saved what it placed."""
        # Look before acting: another installation may share these hosts (read outside the lock:
        # what this engine reserves itself is in the inventory, under the lock).
        # A host whose Docker engine does not answer takes no new node: one placed there waited for its
        # engine, then failed, and could not even be undone until the engine was back.
        # One survey gives both: the ports its nodes publish (as Runtime.ports_in_use) and the silent hosts.
        for learn in self.before_placing:
            await learn()
        survey = await self.runtime.survey()
        async with self.lock, self.shared_lock.held():
            for learn in self.while_held:
                await learn()
            yield Placer(self, ports_of(survey.nodes), survey.silent)


def ports_of(nodes) -> frozenset[tuple[str, int]]:
    """(host, port) of each port these node containers publish, whoever made them."""
    return frozenset((node.labels.get("redis-addons.host", node.host), int(port)) for node in nodes
                     for port in (node.labels.get("redis-addons.port", ""), node.labels.get("redis-addons.tls-port", ""))
                     if port.isdigit())


class Placer:
    def __init__(self, placing: Placing, in_use: frozenset, silent: dict[str, str] | None = None):
        self._placing, self._in_use, self._silent = placing, in_use, silent or {}

    def _answering(self, exclude_host: str | None = None) -> list:
        hosts = [h.as_domain() for h in self._placing.open_hosts if h.name not in self._silent]
        if not [h for h in hosts if h.name != exclude_host] and self._silent:
            why = "; ".join(f"{host}: {reason}" for host, reason in sorted(self._silent.items()))
            other = f" other than {exclude_host}" if exclude_host else ""
            raise NoHostWithRoom(f"no host{other} has a Docker engine that answers ({why})")
        return hosts

    def nodes(self, requests: list[NodeRequest], exclude_host: str | None = None) -> list[Placement]:
        """One placement per node asked for, nodes of a spread group on different hosts."""
        return place_nodes(requests, self._answering(exclude_host), self._placing.inventory.tenants(), self._in_use,
                           exclude_host=exclude_host)

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self._placing.hosts]

    def replacement(self, role: str, memory_mib: int, avoid: dict[str, str]) -> Placement:
        """A node in place of a lost one, on none of the hosts in `avoid` (host -> why: it holds
        another node of the same group, or does not answer) nor on one whose engine did not answer the
        survey (a node placed there waited for its engine, then failed: a restore, a plan change or an
        upgrade of a Business cluster, which come here, did)."""
        silent = {host: f"does not answer ({why})" for host, why in self._silent.items() if host not in avoid}
        hosts = [h.as_domain() for h in self._placing.open_hosts if h.name not in avoid and h.name not in silent]
        if not hosts:
            why = "; ".join(f"{host} {reason}" for host, reason in sorted({**avoid, **silent}.items()))
            spread = f"the {role} nodes go to different hosts" + (", and a host whose Docker engine does not answer "
                                                                  "takes none" if silent else "")
            raise NoHostWithRoom(f"no host can take a {role} node: {spread} ({why})")
        try:
            return place(memory_mib, hosts, self._placing.inventory.tenants(), self._in_use)
        except NoHostWithRoom as error:
            also = "".join(f"; {host} {reason}" for host, reason in sorted(silent.items()))
            raise NoHostWithRoom(f"no host can take a {role} node: {error}{also}") from None

    def node(self, memory_mib: int, tls: bool, exclude_host: str | None = None) -> Placement:
        """A cluster of one data node: placed as a single node always was (the host with the most room)."""
        return place(memory_mib, self._answering(exclude_host), self._placing.inventory.tenants(), self._in_use,
                     exclude_host=exclude_host, tls=tls)

    def free_port(self, host_name: str) -> int:
        host = next(h.as_domain() for h in self._placing.hosts if h.name == host_name)
        return free_port(host, self._placing.inventory.tenants(), self._in_use)
