"""The Lease aggregate: which engine process drives something for now, and until when.

Several engine processes on one event store (PostgreSQL) each follow the whole log; exactly one of
them must drive each operation, and one run the installation's duties (the scheduler, the node
watcher, webhook sending). A lease names its holder (a process identity) and an instant it holds
until; it is taken when free (never held, or its time passed) or when its holder takes it again (a
process restarted under the same identity), and renewed by its holder only.

Exclusive because it is an aggregate: two processes taking it at once both decide on the same
version, and the event store keeps one of the two saves (the other meets an integrity error). The
holder saves each record of what it drives together with a renewal of its lease, so a holder that
lost its lease to another cannot record anything more of it: that save is refused the same way.

Times are seconds since the epoch, passed in (the domain reads no clock).
"""

from __future__ import annotations

from uuid import UUID, uuid5, NAMESPACE_URL

from eventsourcing.domain import Aggregate, event


class LeaseHeld(Exception):
    """Another process holds the lease, and its time has not passed."""


class LeaseLost(Exception):
    """This process no longer holds the lease (another took it once it expired): it stops what it drove."""


DUTIES = "duties"  # the lease of the installation's once-per-installation work


def operation_lease(operation_id: UUID) -> str:
    return f"operation:{operation_id}"


class Lease(Aggregate):
    @staticmethod
    def create_id(name: str, **_) -> UUID:
        return Lease.id_for(name)

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/leases/{name}")

    class Taken(Aggregate.Created):
        name: str
        holder: str
        until: float

    @event(Taken)
    def __init__(self, name: str, holder: str, until: float):
        self.name, self.holder, self.until = name, holder, until

    def is_free_for(self, holder: str, now: float) -> bool:
        """Never held by another, or its time has passed, or `holder` holds it (restarted under its identity)."""
        return self.holder == holder or self.until <= now

    def take(self, holder: str, now: float, until: float) -> None:
        if not self.is_free_for(holder, now):
            raise LeaseHeld(f"lease {self.name} is held by {self.holder} for {self.until - now:.1f} s more")
        self._taken_over(holder=holder, until=until)

    @event("TakenOver")
    def _taken_over(self, holder: str, until: float) -> None:
        self.holder, self.until = holder, until

    def renew(self, holder: str, until: float) -> None:
        """Only by its holder. An expired lease nobody took yet may still be renewed: anyone who took it
        meanwhile made this aggregate newer, and the renewal's save is refused."""
        if self.holder != holder:
            raise LeaseLost(f"lease {self.name} is held by {self.holder} now")
        self._renewed(until=until)

    @event("Renewed")
    def _renewed(self, until: float) -> None:
        self.until = until
