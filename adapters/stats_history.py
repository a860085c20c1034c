"""The StatsHistory port in memory, bounded: every sample for a day, one point a minute for a day and
one per 5 minutes for a week (rates averaged, sizes at their maximum), so that an hour, a day or a
week is read without merging thousands of points. Lost when the engine stops: stats are
measurements, rebuilt by sampling, never by `replay`.

Points are kept in arrays of doubles, a column per figure (NaN: none): 72 bytes a point, ~0.9 MB a
node in all, where a dict per point took ~4.5 MB."""

from __future__ import annotations

import bisect
import math
from array import array

from engine.stats import HISTORY_FIELDS, NodeStats, history_point, merged

DAY_S = 86_400
WEEK_S = 7 * DAY_S
# (seconds a point stands for: 0 = each sample, how long kept); finest first
TIERS = ((0, DAY_S), (60, DAY_S), (300, WEEK_S))
COLUMNS = ("at", *HISTORY_FIELDS)
FRACTIONAL = {"at", "cpu_percent", "ops_per_sec"}  # the others are counts of bytes or clients: ints again


class Series:
    """One node's points of one tier, oldest first, in a ring of `capacity`."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.columns = {name: array("d") for name in COLUMNS}
        self.next = 0  # where the next point goes once the ring is full: the oldest one

    def __len__(self) -> int:
        return len(self.columns["at"])

    def __getitem__(self, i: int) -> float:
        """The time of the i-th oldest point (what bisect searches)."""
        return self.columns["at"][(self.next + i) % len(self)]

    def append(self, point: dict) -> None:
        full = len(self) == self.capacity
        for name, column in self.columns.items():
            value = math.nan if point[name] is None else float(point[name])
            if full:
                column[self.next] = value
            else:
                column.append(value)
        if full:
            self.next = (self.next + 1) % self.capacity

    def first_at(self) -> float:
        return self[0] if len(self) else math.inf

    def points(self, since: float, before: float = math.inf) -> list[dict]:
        first, end = bisect.bisect_left(self, since), bisect.bisect_left(self, before)
        return [self._point((self.next + i) % len(self)) for i in range(first, end)]

    def _point(self, i: int) -> dict:
        point = {}
        for name, column in self.columns.items():
            value = column[i]
            point[name] = None if math.isnan(value) else value if name in FRACTIONAL else int(value)
        return point


class Tier:
    """Every node's points at one step: each sample (step 0), or one point per step merged from them."""

    def __init__(self, step_s: float, keep_s: float, interval_s: float):
        self.step_s = step_s
        # Each sample's tier: room for a day at the sampling interval (hand-driven tests: at 10 s).
        self.capacity = math.ceil(keep_s / (step_s or (interval_s if interval_s > 0 else 10)))
        self.series: dict[tuple[str, str], Series] = {}
        self._open: dict[tuple[str, str], list[dict]] = {}  # the points of the step being filled

    def record(self, key, point: dict) -> None:
        if not self.step_s:
            self.series.setdefault(key, Series(self.capacity)).append(point)
            return
        pending = self._open.setdefault(key, [])
        if pending and self._step(pending[0]["at"]) != self._step(point["at"]):
            self.series.setdefault(key, Series(self.capacity)).append(merged(pending, self._step(pending[0]["at"])))
            pending = self._open[key] = []
        pending.append(point)

    def _step(self, at: float) -> float:
        return at - at % self.step_s

    def open_point(self, key, since: float) -> list[dict]:
        """The step being filled, as far as it goes (the chart's last point is now's)."""
        pending = self._open.get(key)
        if not pending or self._step(pending[0]["at"]) < since:
            return []
        return [merged(pending, self._step(pending[0]["at"]))]

    def forget(self, addon: str) -> None:
        for table in (self.series, self._open):
            for key in [k for k in table if k[0] == addon]:
                del table[key]


class MemoryStatsHistory:
    def __init__(self, interval_s: float, tiers=TIERS):
        self.tiers = [Tier(step_s, keep_s, interval_s) for step_s, keep_s in tiers]

    def record(self, samples: list[NodeStats]) -> None:
        for sample in samples:
            point = history_point(sample)
            for tier in self.tiers:
                tier.record((sample.addon, sample.node), point)

    def history(self, addon: str, since: float, node: str | None = None, step_s: float = 0) -> dict[str, list[dict]]:
        # The coarsest tier as fine as asked, then, for what is older than its oldest point, coarser ones.
        usable = [i for i, tier in enumerate(self.tiers) if tier.step_s <= step_s] or [0]
        found = {}
        for key in list(self.tiers[0].series):
            if key[0] != addon or (node is not None and key[1] != node):
                continue
            chosen = self.tiers[usable[-1]]
            points, before = chosen.open_point(key, since) if chosen.step_s else [], math.inf
            for tier in self.tiers[usable[-1]:]:
                series = tier.series.get(key)
                if series is not None and len(series):
                    points = series.points(since, before) + points
                    before = min(before, series.first_at())
            merge = step_s > 0 and chosen.step_s < step_s
            found[key[1]] = by_step(points, step_s) if merge else points
        return found

    def forget(self, addon: str) -> None:
        for tier in self.tiers:
            tier.forget(addon)

    def addons(self) -> set[str]:
        return {addon for addon, _ in self.tiers[0].series}


def by_step(points: list[dict], step_s: float) -> list[dict]:
    """One point per step of `step_s` seconds (each at its step's start)."""
    steps: dict[float, list[dict]] = {}
    for point in points:
        steps.setdefault(point["at"] - point["at"] % step_s, []).append(point)
    return [merged(group, at) for at, group in steps.items()]
