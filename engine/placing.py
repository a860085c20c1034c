"""Placement under one lock: it reads what the inventory holds and the save that follows
reserves it, so two placements never pick the same port."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from domain.errors import NoHostWithRoom
from domain.placement import NodeRequest, Placement, free_port, place, place_nodes
from engine.inventory import Inventory
from engine.ports import Runtime


class Placing:
    def __init__(self, hosts, inventory: Inventory, runtime: Runtime):
        self.hosts, self.inventory, self.runtime = hosts, inventory, runtime
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def held(self):
        """Hold placement until the caller has saved what it placed."""
        # Look before acting: another installation may share these hosts (read outside the lock:
        # what this engine reserves itself is in the inventory, under the lock).
        # A host whose Docker engine does not answer takes no new node: one placed there waited for its
        # engine, then failed, and could not even be undone until the engine was back.
        in_use, survey = await asyncio.gather(self.runtime.ports_in_use(), self.runtime.survey())
        async with self.lock:
            yield Placer(self, in_use, survey.silent)


class Placer:
    def __init__(self, placing: Placing, in_use: frozenset, silent: dict[str, str] | None = None):
        self._placing, self._in_use, self._silent = placing, in_use, silent or {}

    def _answering(self, exclude_host: str | None = None) -> list:
        hosts = [h.as_domain() for h in self._placing.hosts if h.name not in self._silent]
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
        another node of the same group, or does not answer)."""
        hosts = [h.as_domain() for h in self._placing.hosts if h.name not in avoid]
        if not hosts:
            why = "; ".join(f"{host} {reason}" for host, reason in sorted(avoid.items()))
            raise NoHostWithRoom(f"no host can take a {role} node: the {role} nodes go to different hosts ({why})")
        try:
            return place(memory_mib, hosts, self._placing.inventory.tenants(), self._in_use)
        except NoHostWithRoom as error:
            raise NoHostWithRoom(f"no host can take a {role} node: {error}") from None

    def node(self, memory_mib: int, tls: bool, exclude_host: str | None = None) -> Placement:
        """A cluster of one data node: placed as a single node always was (the host with the most room)."""
        return place(memory_mib, self._answering(exclude_host), self._placing.inventory.tenants(), self._in_use,
                     exclude_host=exclude_host, tls=tls)

    def free_port(self, host_name: str) -> int:
        host = next(h.as_domain() for h in self._placing.hosts if h.name == host_name)
        return free_port(host, self._placing.inventory.tenants(), self._in_use)
