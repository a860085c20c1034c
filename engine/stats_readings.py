"""The sampler's pure arithmetic: CPU % from two reads of a container, and the highest memory (and
swap) reading since a node's last (re)start."""

from __future__ import annotations

from dataclasses import dataclass

from engine.ports import ContainerReading


def cpu_percent(previous: ContainerReading | None, current: ContainerReading) -> float | None:
    """As `docker stats`: Δ container CPU time / Δ host CPU time × online CPUs × 100. None without a
    previous read, or across a restart (the container's counter started again)."""
    if previous is None or not current.running:
        return None
    used = current.cpu_total_ns - previous.cpu_total_ns
    elapsed = current.system_cpu_ns - previous.system_cpu_ns
    if used < 0 or elapsed <= 0 or previous.started_at != current.started_at:
        return None
    return round(used / elapsed * current.online_cpus * 100, 2)


@dataclass
class _Since:
    started_at: str
    run_id: str
    memory: int | None = None
    swap: int | None = None


class HighestSinceRestart:
    """Reference: "Highest is the maximum memory recorded since database restarted". A node restarted
    when its container's StartedAt changes, or its server's run_id does (a server restarted inside a
    running container); a read without a run_id (the server did not answer) changes nothing."""

    def __init__(self):
        self._nodes: dict[object, _Since] = {}

    def track(self, key, started_at: str, run_id: str, memory: int | None,
              swap: int | None = None) -> tuple[int | None, int | None]:
        """Returns (highest memory, highest swap) with this reading counted."""
        since = self._nodes.get(key)
        if since is None or since.started_at != started_at or (run_id and since.run_id and since.run_id != run_id):
            since = self._nodes[key] = _Since(started_at, run_id)
        since.run_id = run_id or since.run_id
        if memory is not None:
            since.memory = max(memory, since.memory or 0)
        if swap is not None:
            since.swap = max(swap, since.swap or 0)
        return since.memory, since.swap

    def keep_only(self, keys) -> None:
        """Forget the nodes not in `keys` (gone)."""
        for key in set(self._nodes) - set(keys):
            del self._nodes[key]
