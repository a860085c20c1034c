"""The StatsHistory port in memory, bounded: every sample for a day, then one point per 5 minutes
(rates averaged, sizes at their maximum) for a week. Lost when the engine stops: stats are
measurements, rebuilt by sampling, never by `replay`."""

from __future__ import annotations

import math
from collections import deque

from engine.stats import NodeStats, history_point, merged

DAY_S = 86_400
COARSE_STEP_S = 300
WEEK_S = 7 * DAY_S


class MemoryStatsHistory:
    def __init__(self, interval_s: float, fine_s: float = DAY_S, coarse_step_s: float = COARSE_STEP_S,
                 coarse_s: float = WEEK_S):
        # A day at the sampling interval (sampled every 10 s: 8,640 points a node); tests sampling by
        # hand (interval 0) get the room of a 10 s interval.
        self.fine_points = math.ceil(fine_s / (interval_s if interval_s > 0 else 10))
        self.coarse_step_s = coarse_step_s
        self.coarse_points = math.ceil(coarse_s / coarse_step_s)
        self._fine: dict[tuple[str, str], deque] = {}
        self._coarse: dict[tuple[str, str], deque] = {}
        self._open: dict[tuple[str, str], list[dict]] = {}  # the coarse step being filled

    def record(self, samples: list[NodeStats]) -> None:
        for sample in samples:
            key = (sample.addon, sample.node)
            point = history_point(sample)
            fine = self._fine.setdefault(key, deque(maxlen=self.fine_points))
            fine.append(point)
            pending = self._open.setdefault(key, [])
            if pending and self._step(pending[0]["at"]) != self._step(point["at"]):
                self._close(key)
            self._open[key].append(point)

    def _step(self, at: float) -> float:
        return at - at % self.coarse_step_s

    def _close(self, key) -> None:
        pending = self._open.pop(key, [])
        if pending:
            coarse = self._coarse.setdefault(key, deque(maxlen=self.coarse_points))
            coarse.append(merged(pending, self._step(pending[0]["at"])))
        self._open[key] = []

    def history(self, addon: str, since: float, node: str | None = None, step_s: float = 0) -> dict[str, list[dict]]:
        found = {}
        for (owner, name), fine in list(self._fine.items()):
            if owner != addon or (node is not None and name != node):
                continue
            recent = [p for p in fine if p["at"] >= since]
            oldest_fine = fine[0]["at"] if fine else math.inf
            # Older than the day kept at full rate: the 5-minute points before it.
            older = [p for p in self._coarse.get((owner, name), ()) if since <= p["at"] < oldest_fine]
            points = older + recent
            found[name] = by_step(points, step_s) if step_s > 0 else points
        return found

    def forget(self, addon: str) -> None:
        for table in (self._fine, self._coarse, self._open):
            for key in [k for k in table if k[0] == addon]:
                del table[key]

    def addons(self) -> set[str]:
        return {addon for addon, _ in self._fine}


def by_step(points: list[dict], step_s: float) -> list[dict]:
    """One point per step of `step_s` seconds (each at its step's start)."""
    steps: dict[float, list[dict]] = {}
    for point in points:
        steps.setdefault(point["at"] - point["at"] % step_s, []).append(point)
    return [merged(group, at) for at, group in steps.items()]
