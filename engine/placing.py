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
        in_use = await self.runtime.ports_in_use()
        async with self.lock:
            yield Placer(self, in_use)


class Placer:
    def __init__(self, placing: Placing, in_use: frozenset):
        self._placing, self._in_use = placing, in_use

    def nodes(self, requests: list[NodeRequest], exclude_host: str | None = None) -> list[Placement]:
        """One placement per node asked for, nodes of a spread group on different hosts."""
        hosts = [h.as_domain() for h in self._placing.hosts]
        return place_nodes(requests, hosts, self._placing.inventory.tenants(), self._in_use, exclude_host=exclude_host)

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
        hosts = [h.as_domain() for h in self._placing.hosts]
        return place(memory_mib, hosts, self._placing.inventory.tenants(), self._in_use, exclude_host=exclude_host, tls=tls)

    def free_port(self, host_name: str) -> int:
        host = next(h.as_domain() for h in self._placing.hosts if h.name == host_name)
        return free_port(host, self._placing.inventory.tenants(), self._in_use)
