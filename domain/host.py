"""The Host aggregate: a Docker engine the installation places nodes on, as facts in the log.

A host is added (from the hosts file at start, or by an operator), may be drained (it takes no new node
from the moment the drain is asked, and every node it holds is moved elsewhere), is drained once it holds
none, and may then be removed. A removed host may be added again under its name.
"""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.host_errors import HostNotEmpty, HostNotUsable, InvalidHost

HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

ACTIVE, DRAINING, DRAINED, REMOVED = "active", "draining", "drained", "removed"


def check_host_details(name: str, docker_url: str, address: str, first_port: int, last_port: int,
                       memory_mib: int) -> None:
    """What any host must give: a name, a Docker URL, an address to bind, a port range and memory."""
    if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
        raise InvalidHost(f"host name {name!r}: lowercase letters, digits and dashes, 1 to 63 characters")
    if not isinstance(docker_url, str) or not docker_url.startswith(("unix://", "tcp://", "https://")):
        raise InvalidHost(f"host {name}: docker URL {docker_url!r} must be unix:///PATH or tcp://ADDRESS:PORT")
    if not isinstance(address, str) or not address:
        raise InvalidHost(f"host {name}: give the address its nodes bind to (--bind)")
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in (first_port, last_port, memory_mib)):
        raise InvalidHost(f"host {name}: ports and memory are whole numbers")
    if not 1024 <= first_port <= last_port <= 65535:
        raise InvalidHost(f"host {name}: port range {first_port}-{last_port} must be FIRST-LAST within 1024-65535")
    if memory_mib < 64:
        raise InvalidHost(f"host {name}: memory {memory_mib} MiB is too small for any node (at least 64)")


class Host(Aggregate):
    @staticmethod
    def create_id(name: str, **_) -> UUID:
        return Host.id_for(name)

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/hosts/{name}")

    @event("Added")
    def __init__(self, name: str, docker_url: str, address: str, first_port: int, last_port: int, memory_mib: int,
                 tls: dict | None = None, source: str = "operator"):
        # tls: the paths of the CA, client certificate and key (never what they hold); source: "hosts file" or "operator"
        self.name, self.source = name, source
        self._details(docker_url, address, first_port, last_port, memory_mib, tls)
        self.state = ACTIVE
        self.drain_reason: str | None = None

    def _details(self, docker_url, address, first_port, last_port, memory_mib, tls) -> None:
        self.docker_url, self.address = docker_url, address
        self.first_port, self.last_port, self.memory_mib, self.tls = first_port, last_port, memory_mib, tls

    @property
    def details(self) -> dict:
        return dict(docker_url=self.docker_url, address=self.address, first_port=self.first_port,
                    last_port=self.last_port, memory_mib=self.memory_mib, tls=self.tls)

    @property
    def takes_new_nodes(self) -> bool:
        return self.state == ACTIVE

    def reconfigure(self, **details) -> None:
        """The hosts file says otherwise than the log (an operator edited it): the file wins, as it always did."""
        if details != self.details:
            self._reconfigured(**details)

    @event("Reconfigured")
    def _reconfigured(self, docker_url, address, first_port, last_port, memory_mib, tls) -> None:
        self._details(docker_url, address, first_port, last_port, memory_mib, tls)

    def add_again(self, docker_url, address, first_port, last_port, memory_mib, tls=None, source="operator") -> None:
        if self.state != REMOVED:
            raise InvalidHost(f"host {self.name} is known already ({self.state}): choose another name")
        self._added_again(docker_url, address, first_port, last_port, memory_mib, tls, source)

    @event("AddedAgain")
    def _added_again(self, docker_url, address, first_port, last_port, memory_mib, tls, source) -> None:
        self._details(docker_url, address, first_port, last_port, memory_mib, tls)
        self.source, self.state, self.drain_reason = source, ACTIVE, None

    def start_drain(self, reason: str = "") -> None:
        """From now on the host takes no new node; the nodes it holds are moved elsewhere."""
        if self.state == REMOVED:
            raise HostNotUsable(f"host {self.name} was removed")
        if self.state == DRAINING:
            return  # asked twice: one drain
        self._drain_started(reason=reason)

    @event("DrainStarted")
    def _drain_started(self, reason: str) -> None:
        self.state, self.drain_reason = DRAINING, reason

    def finish_drain(self, nodes_left: int) -> None:
        if self.state != DRAINING:
            return
        if nodes_left:
            raise HostNotEmpty(f"host {self.name} still holds {nodes_left} node(s): the drain goes on")
        self._drained()

    @event("Drained")
    def _drained(self) -> None:
        self.state = DRAINED

    def remove(self, nodes_held: int) -> None:
        """Only an empty host leaves the installation: one still holding nodes, or being drained, is refused."""
        if self.state == REMOVED:
            raise HostNotUsable(f"host {self.name} was removed already")
        if self.state == DRAINING:
            raise HostNotEmpty(f"host {self.name} is being drained: it can be removed once the drain is done "
                               f"(`redis-addons hosts` shows it drained)")
        if nodes_held:
            raise HostNotEmpty(f"host {self.name} holds {nodes_held} node(s): drain it first "
                               f"(`redis-addons hosts drain {self.name}`), then remove it")
        self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.state = REMOVED
