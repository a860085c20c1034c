"""One engine's metrics: a registry of its own (never prometheus_client's global one: several engines may
run in one process), the saga steps' durations as a histogram, and at scrape time the nodes' last stats
(node_figures.py) and the engine's own figures: operations by kind and status, how far the read models
are behind the event log, the scheduler's rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from adapters.metrics.node_figures import node_families
from engine.app import Engine
from engine.stats import NodeStats

# Steps run from milliseconds (a configuration) to minutes (a copy of a large dataset).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass(frozen=True)
class EngineFigures:
    """What the engine's collector shows, read (with I/O) before the registry is collected."""

    operations: list[dict] = field(default_factory=list)  # [{kind, status, n}]
    log_position: int = 0
    read_models_position: int = 0
    scheduler_ticks: int = 0
    scheduler_failures: dict[str, int] = field(default_factory=dict)


class EngineMetrics:
    def __init__(self, engine: Engine, latest: Callable[[], list[NodeStats]] | None = None):
        """`latest`: each node's last sample, with no I/O (by default the engine's stats sampler's)."""
        self._engine = engine
        self._latest = latest or (lambda: engine.stats_sampler.latest())
        self.registry = CollectorRegistry()
        self._steps = Histogram("redis_addons_step_duration_seconds", "How long each saga step ran, by outcome",
                                ["kind", "step", "outcome"], buckets=STEP_BUCKETS, registry=self.registry)
        self._figures = EngineFigures()
        self.registry.register(_Collector(self))
        engine.coordinator.observe_steps(self.observe_step)

    def close(self) -> None:
        """No more step durations: the engine may outlive this registry (another HTTP app on it)."""
        self._engine.coordinator.unobserve_steps(self.observe_step)

    def observe_step(self, kind: str, step: str, outcome: str, seconds: float) -> None:
        self._steps.labels(kind, step, outcome).observe(seconds)

    async def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The text Prometheus asked for (its `Accept`: OpenMetrics or the text format) and its content type."""
        self._figures = await self.read_figures()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type  # no await between reading and collecting

    async def read_figures(self) -> EngineFigures:
        engine = self._engine
        views = engine.views
        operations, read_models = await asyncio.gather(asyncio.to_thread(views.operation_counts),
                                                       asyncio.to_thread(views.position))
        return EngineFigures(operations, await engine.events.max_position(), read_models,
                             engine.scheduler.ticks, dict(engine.scheduler.failures))

    def samples(self) -> list[NodeStats]:
        return self._latest()

    def collect_engine(self) -> list[Metric]:
        f = self._figures
        operations = GaugeMetricFamily("redis_addons_operations", "Operations recorded, by kind and status",
                                       labels=["kind", "status"])
        for row in f.operations:
            operations.add_metric([row["kind"], row["status"]], row["n"])
        lag = GaugeMetricFamily("redis_addons_projection_lag_events",
                                "Events recorded that the read models have not applied yet",
                                value=max(0, f.log_position - f.read_models_position))
        position = GaugeMetricFamily("redis_addons_event_log_position", "The event log's last position",
                                     value=f.log_position)
        ticks = CounterMetricFamily("redis_addons_scheduler_runs", "Scheduler rounds run since the engine started",
                                    value=f.scheduler_ticks)
        failures = CounterMetricFamily("redis_addons_scheduler_failures",
                                       "Parts of scheduler rounds that failed (retried the next round), by part",
                                       labels=["part"])
        for part, n in sorted(f.scheduler_failures.items()):
            failures.add_metric([part], n)
        return [operations, lag, position, ticks, failures]


class _Collector:
    """prometheus_client's custom collector protocol: `collect` runs at each scrape, with no I/O."""

    def __init__(self, metrics: EngineMetrics):
        self._metrics = metrics

    def collect(self):
        yield from node_families(self._metrics.samples())
        yield from self._metrics.collect_engine()
