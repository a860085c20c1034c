"""Host placement: the host with the most free memory, the lowest free port on it (and the next
free one for TLS, on engine builds that serve it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import NoHostWithRoom


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # the 127.x address its containers bind to
    first_port: int
    last_port: int
    memory_mib: int


@dataclass(frozen=True)
class Placement:
    host: str
    address: str
    port: int
    tls_port: int | None = None  # TLS served beside plaintext; None on builds without TLS


@dataclass(frozen=True)
class Tenant:
    """Something already placed on a host: it holds memory and a port (two with TLS)."""

    host: str
    port: int
    memory_mib: int
    tls_port: int | None = None

    @property
    def ports(self) -> set[int]:
        return {self.port} if self.tls_port is None else {self.port, self.tls_port}


def free_port(host: Host, tenants: Iterable[Tenant], unusable_ports: frozenset[tuple[str, int]] = frozenset()) -> int:
    """The lowest port of `host` that nothing holds: for a node that starts serving TLS where it is."""
    taken = set().union(*(t.ports for t in tenants if t.host == host.name))
    taken |= {p for h, p in unusable_ports if h == host.name}
    port = next((p for p in range(host.first_port, host.last_port + 1) if p not in taken), None)
    if port is None:
        raise NoHostWithRoom(f"{host.name} has no free port left in {host.first_port}-{host.last_port} for TLS")
    return port


def place(
    memory_mib: int,
    hosts: Iterable[Host],
    tenants: Iterable[Tenant],
    unusable_ports: frozenset[tuple[str, int]] = frozenset(),
    exclude_host: str | None = None,
    tls: bool = False,
) -> Placement:
    """Choose where a node of `memory_mib` goes, with a second port when it serves `tls`; refuse
    when no host has room.

    `unusable_ports` holds (host, port) pairs seen busy outside our records.
    """
    hosts = list(hosts)
    if exclude_host is not None:
        others = [h for h in hosts if h.name != exclude_host]
        if not others:
            raise NoHostWithRoom(f"no host other than {exclude_host} is configured: a plan change needs another host")
        hosts = others
    tenants = list(tenants)
    needed = 2 if tls else 1
    candidates, room = [], []
    for host in hosts:
        free = host.memory_mib - sum(t.memory_mib for t in tenants if t.host == host.name)
        taken = set().union(*(t.ports for t in tenants if t.host == host.name))
        taken |= {p for h, p in unusable_ports if h == host.name}
        free_ports = [p for p in range(host.first_port, host.last_port + 1) if p not in taken][:needed]
        if free >= memory_mib and len(free_ports) == needed:
            candidates.append((free, host, free_ports))
        short = "" if len(free_ports) == needed else f", {len(free_ports) or 'no'} free port{'s' * (len(free_ports) != 1)}"
        room.append(f"{host.name} {free} MiB free{short}")
    if not candidates:
        raise NoHostWithRoom(
            f"no host has room for {memory_mib} MiB{' and two free ports (plaintext and TLS)' if tls else ''} "
            f"({', '.join(room) or 'no host configured'})"
        )
    # Most free memory first; ties go to the first host listed, for a stable choice.
    free, host, ports = max(candidates, key=lambda c: c[0])
    return Placement(host=host.name, address=host.address, port=ports[0], tls_port=ports[1] if tls else None)


@dataclass(frozen=True)
class NodeRequest:
    """One node of a cluster to place. Nodes of one `spread` group go to different hosts (two data
    nodes, three Sentinels, two HAProxy: losing a host must not take two of them)."""

    role: str
    memory_mib: int
    tls: bool = False
    spread: str | None = None


def place_nodes(
    requests: Iterable[NodeRequest],
    hosts: Iterable[Host],
    tenants: Iterable[Tenant],
    unusable_ports: frozenset[tuple[str, int]] = frozenset(),
    exclude_host: str | None = None,
) -> list[Placement]:
    """One placement per node, in the order asked; each node counts as a tenant for the next ones.
    Refused whole (nothing placed) when one node finds no host with room, or no host its spread
    group has not used yet."""
    hosts, held, used = list(hosts), list(tenants), {}
    placements = []
    for request in requests:
        taken = used.setdefault(request.spread, set()) if request.spread else set()
        allowed = [h for h in hosts if h.name not in taken and h.name != exclude_host]
        if not allowed:
            raise NoHostWithRoom(
                f"the {request.spread} nodes go to different hosts and {len(taken)} of "
                f"{len([h for h in hosts if h.name != exclude_host])} usable hosts are used already: "
                f"add a host, or choose a plan with fewer nodes")
        try:
            where = place(request.memory_mib, allowed, held, unusable_ports, tls=request.tls)
        except NoHostWithRoom as error:
            spread = f" on a host other than {', '.join(sorted(taken))} (they hold its {request.spread} group)" if taken else ""
            raise NoHostWithRoom(f"{request.role} node{spread}: {error}") from None
        placements.append(where)
        held.append(Tenant(where.host, where.port, request.memory_mib, where.tls_port))
        taken.add(where.host)
    return placements


# What a Sentinel and an HAProxy hold on their host: a few MiB of memory, one port.
SENTINEL_MEMORY_MIB = 32
HAPROXY_MEMORY_MIB = 32


def cluster_requests(data_nodes: int, sentinels: int, proxies: int, memory_mib: int, tls: bool) -> list[NodeRequest]:
    """The nodes of a plan's cluster, each group spread over different hosts (reference, "Cluster
    Setup": data nodes, a couple of HAProxy, three Sentinels): losing a host loses one of each."""
    return ([NodeRequest("data", memory_mib, tls=tls, spread="data") for _ in range(data_nodes)]
            + [NodeRequest("sentinel", SENTINEL_MEMORY_MIB, spread="sentinel") for _ in range(sentinels)]
            + [NodeRequest("proxy", HAPROXY_MEMORY_MIB, spread="proxy") for _ in range(proxies)])
