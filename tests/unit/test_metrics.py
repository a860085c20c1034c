"""/metrics' exposition (adapters/metrics): nodes' stats under redis_exporter's names and labels, the
containers' figures, and the engine's own (saga step durations, operations, projection lag, scheduler)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.app import make_app
from adapters.http.metrics import METRICS
from adapters.metrics.engine_metrics import EngineMetrics
from engine.stats import ContainerFigures, DatabaseFigures, NodeStats
from tests.unit.engine_fakes import APP, caught_up, finished

PRIMARY = DatabaseFigures(used_memory=1_234_567, maxmemory=268_435_456, connected_clients=3,
                          total_commands_processed=42, instantaneous_ops_per_sec=5, keyspace_hits=10,
                          keyspace_misses=2, evicted_keys=1, keys={0: 120, 4: 3}, role="master", connected_slaves=1,
                          master_link_up=None, repl_offset=9000, uptime_s=60, run_id="abc123")
REPLICA = DatabaseFigures(used_memory=1_000_000, maxmemory=268_435_456, connected_clients=1,
                          total_commands_processed=7, instantaneous_ops_per_sec=0, keyspace_hits=0, keyspace_misses=0,
                          evicted_keys=0, keys={0: 120}, role="slave", connected_slaves=0, master_link_up=True,
                          repl_offset=8990, lag_bytes=10, uptime_s=30, run_id="def456")
CONTAINER = ContainerFigures(cpu_percent=12.5, memory_used_bytes=5_000_000, memory_limit_bytes=268_435_456,
                             swap_allowed=False)
SAMPLES = [
    NodeStats("shop", "shop-1", "n1", "data", "host-a", 1_700_000_000.0, True, CONTAINER, PRIMARY, disk_bytes=4096,
              memory_highest_bytes=6_000_000),
    NodeStats("shop", "shop-1", "n2", "data", "host-b", 1_700_000_000.0, True, CONTAINER, REPLICA, disk_bytes=2048),
    NodeStats("shop", "shop-1", "s1", "sentinel", "host-c", 1_700_000_000.0, True,
              ContainerFigures(None, 1_000_000, 67_108_864, False)),
    NodeStats("blog", "blog-2", "n9", "data", "host-a", 1_700_000_000.0, False, None),  # its container is gone
]


def scraped(text: str) -> dict[str, dict]:
    """family name -> {"type", "samples": {(sample name, sorted labels): value}}"""
    return {f.name: {"type": f.type, "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value
                                                  for s in f.samples}}
            for f in text_string_to_metric_families(text)}


def labels(**given) -> tuple:
    return tuple(sorted(given.items()))


async def test_node_stats_are_exposed_under_redis_exporters_names_labelled_by_app_addon_node_and_role(engine):
    text = (await EngineMetrics(engine, lambda: SAMPLES).exposition())[0].decode()
    families = scraped(text)
    n1 = dict(app="shop", addon="shop-1", node="n1", role="master")
    n2 = dict(app="shop", addon="shop-1", node="n2", role="slave")
    assert families["redis_memory_used_bytes"] == {"type": "gauge", "samples": {
        ("redis_memory_used_bytes", labels(**n1)): 1_234_567, ("redis_memory_used_bytes", labels(**n2)): 1_000_000}}
    assert families["redis_commands_processed"]["type"] == "counter"
    assert families["redis_commands_processed"]["samples"][("redis_commands_processed_total", labels(**n1))] == 42
    for name, value in (("redis_memory_max_bytes", 268_435_456), ("redis_connected_clients", 3),
                        ("redis_connected_slaves", 1), ("redis_master_repl_offset", 9000),
                        ("redis_keyspace_hits_total", 10), ("redis_keyspace_misses_total", 2),
                        ("redis_evicted_keys_total", 1)):
        family = families[name.removesuffix("_total")]
        assert family["samples"][(name, labels(**n1))] == value, name
    assert families["redis_db_keys"]["samples"] == {
        ("redis_db_keys", labels(**n1, db="db0")): 120, ("redis_db_keys", labels(**n1, db="db4")): 3,
        ("redis_db_keys", labels(**n2, db="db0")): 120}
    assert families["redis_instance_info"]["samples"] == {
        ("redis_instance_info", labels(**n1, run_id="abc123")): 1, ("redis_instance_info", labels(**n2, run_id="def456")): 1}
    # A replica's link and lag; a primary has neither.
    assert families["redis_master_link_up"]["samples"] == {("redis_master_link_up", labels(**n2)): 1}
    assert families["redis_addons_replica_lag_bytes"]["samples"] == {("redis_addons_replica_lag_bytes", labels(**n2)): 10}
    # Up: the data nodes that answered; one whose container is gone is down, with no role to tell.
    assert families["redis_up"]["samples"] == {
        ("redis_up", labels(**n1)): 1, ("redis_up", labels(**n2)): 1,
        ("redis_up", labels(app="blog", addon="blog-2", node="n9", role="")): 0}


async def test_container_figures_are_under_the_projects_prefix_for_every_node_kind(engine):
    families = scraped((await EngineMetrics(engine, lambda: SAMPLES).exposition())[0].decode())
    n1 = labels(app="shop", addon="shop-1", node="n1", component="data")
    s1 = labels(app="shop", addon="shop-1", node="s1", component="sentinel")
    assert families["redis_addons_cpu_percent"]["samples"] == {  # the sentinel's first read has no CPU figure yet
        ("redis_addons_cpu_percent", n1): 12.5,
        ("redis_addons_cpu_percent", labels(app="shop", addon="shop-1", node="n2", component="data")): 12.5}
    assert families["redis_addons_memory_used_bytes"]["samples"][("redis_addons_memory_used_bytes", s1)] == 1_000_000
    assert families["redis_addons_memory_limit_bytes"]["samples"][("redis_addons_memory_limit_bytes", n1)] == 268_435_456
    assert families["redis_addons_memory_highest_bytes"]["samples"] == {("redis_addons_memory_highest_bytes", n1): 6_000_000}
    assert families["redis_addons_swap_allowed"]["samples"][("redis_addons_swap_allowed", n1)] == 0
    assert "redis_addons_swap_used_bytes" not in families  # no swap allowed: no made-up figure
    assert families["redis_addons_disk_bytes"]["samples"][("redis_addons_disk_bytes", n1)] == 4096
    assert families["redis_addons_node_up"]["samples"][
        ("redis_addons_node_up", labels(app="blog", addon="blog-2", node="n9", component="data"))] == 0


async def test_no_secret_reaches_the_exposition(world, engine):
    operation = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    own = NodeStats(APP, operation["addon"], "n1", "data", "host-a", 1_700_000_000.0, True, CONTAINER, PRIMARY)
    text = (await EngineMetrics(engine, lambda: [own, *SAMPLES]).exposition())[0].decode()
    assert f'addon="{operation["addon"]}"' in text  # the addon's own series are there, its password is not
    assert world.secrets.password_for(operation["addon"]) not in text


async def test_each_saga_step_duration_is_observed_and_the_engines_figures_are_exposed(world, engine):
    metrics = EngineMetrics(engine, lambda: [])  # before the operation: the coordinator tells it each step
    world.runtime.fail_for_good("create_node", times=1)
    failed = await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    assert failed["status"] == "failed"
    operation = await finished(engine, await engine.add_addon("other-app", "redis-starter-256"))
    assert operation["status"] == "succeeded", operation
    await caught_up(engine)
    families = scraped((await metrics.exposition())[0].decode())

    histogram = families["redis_addons_step_duration_seconds"]
    assert histogram["type"] == "histogram"
    counts = {dict(key)["step"]: value for (name, key), value in histogram["samples"].items()
              if name == "redis_addons_step_duration_seconds_count" and dict(key)["outcome"] == "succeeded"
              and dict(key)["kind"] == "provision"}
    assert counts == {step["name"]: 1 for step in operation["steps"]}
    assert histogram["samples"][("redis_addons_step_duration_seconds_count",
                                 labels(kind="provision", step="create", outcome="failed"))] == 1
    assert families["redis_addons_operations"]["samples"] == {
        ("redis_addons_operations", labels(kind="provision", status="failed")): 1,
        ("redis_addons_operations", labels(kind="provision", status="succeeded")): 1}
    assert families["redis_addons_projection_lag_events"]["samples"] == {("redis_addons_projection_lag_events", ()): 0}
    assert families["redis_addons_event_log_position"]["samples"][("redis_addons_event_log_position", ())] > 0
    await engine.scheduler.tick()
    families = scraped((await metrics.exposition())[0].decode())
    assert families["redis_addons_scheduler_runs"]["samples"] == {("redis_addons_scheduler_runs_total", ()): 1}


async def test_an_http_app_that_stopped_is_no_longer_told_the_engines_steps(world, engine):
    """Each make_app on an engine observes its steps while it runs: a stopped one must not stay behind."""
    app = make_app(engine, token="api-token", scrape_token="scrape-token")
    async with TestClient(TestServer(app)):
        running = app[METRICS]
    await finished(engine, await engine.add_addon(APP, "redis-starter-256"))
    text = (await running.exposition())[0].decode()
    assert "# TYPE redis_addons_step_duration_seconds histogram" in text
    assert "redis_addons_step_duration_seconds_count" not in text  # no step observed after the cleanup
