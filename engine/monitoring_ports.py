"""The ports of what watches the addons rather than acts on them: the stats history, the saga steps'
timings (/metrics), and the webhooks notifications go to (adapters implement them)."""

from __future__ import annotations

from typing import Protocol


class StatsHistory(Protocol):
    """The nodes' stats over time (engine/stats.py NodeStats), outside the event store: measurements,
    not decisions. Behind a port so a store shared by several engine processes can hold it."""

    def record(self, samples: list) -> None:
        """One sampling round's NodeStats."""

    def history(self, addon: str, since: float, node: str | None = None, step_s: float = 0) -> dict[str, list[dict]]:
        """{node: [point, ...]} oldest first, since `since` (epoch seconds); with `step_s`, one point per
        step (averages of rates, maxima of sizes). A point: engine/stats.py history_point."""

    def forget(self, addon: str) -> None:
        """The addon is gone: drop its history."""

    def addons(self) -> set[str]:
        """The addons it holds history of."""


class StepObserver(Protocol):
    """Told how long each saga step took (the coordinator calls it; /metrics keeps a histogram)."""

    def __call__(self, kind: str, step: str, outcome: str, seconds: float) -> None:
        """`outcome`: succeeded or failed. Must not raise or block: it runs on the coordinator's loop."""


class DeliveryFailed(Exception):
    """A webhook did not take a message (no answer in time, refused, not 2xx); `str()` says why, without
    the body or its headers."""


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """POST the body once, following no redirect; return on a 2xx answer, raise DeliveryFailed otherwise."""

    async def close(self) -> None: ...
