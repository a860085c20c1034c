"""The stats' arithmetic: CPU % as `docker stats`, memory less the inactive file cache (cgroup v1 and
v2 answers), swap "not allowed", the highest reading since a restart, the INFO figures and a
replica's lag, the AOF manifest, and the history's bounds and downsampling."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from redis.exceptions import ConnectionError as Broken

from adapters.docker.stats import manifest_files, memory_used, reading_from
from adapters.redis_info import KeptClients, database_figures
from adapters.stats_history import MemoryStatsHistory
from engine.ports import ContainerReading, Endpoint, TransientError
from engine.stats import ContainerFigures, NodeStats
from engine.stats_readings import HighestSinceRestart, cpu_percent
from engine.stats_sampler import StatsSampler, with_lag

MIB = 1024 * 1024
INSPECTED = {"State": {"Running": True, "StartedAt": "2026-12-02T10:00:00Z"},
             "HostConfig": {"Memory": 320 * MIB, "MemorySwap": 320 * MIB}}


def reading(cpu: int, system: int, started_at: str = "t0", cpus: int = 2, running: bool = True) -> ContainerReading:
    return ContainerReading(running, started_at, cpu, system, cpus, 10 * MIB, 320 * MIB, False)


def test_cpu_percent_is_the_containers_share_of_the_hosts_time_times_its_cpus():
    # 0.5 s of CPU while the host counted 4 s over its 2 CPUs (2 s of wall time): 25 % of one core
    assert cpu_percent(reading(1_000_000_000, 10_000_000_000), reading(1_500_000_000, 14_000_000_000)) == 25.0
    assert cpu_percent(None, reading(1, 1)) is None  # a first read: nothing to compare with
    # The container restarted between the reads: its counter started again.
    assert cpu_percent(reading(9_000, 100), reading(10, 200)) is None
    assert cpu_percent(reading(5, 100, "t0"), reading(50, 200, "t1")) is None
    assert cpu_percent(reading(5, 100), reading(50, 100)) is None  # no host time passed
    assert cpu_percent(reading(5, 100), reading(5, 200, running=False)) is None


def test_memory_is_usage_less_the_inactive_file_cache_under_cgroup_v1_and_v2():
    v1 = {"usage": 100 * MIB, "limit": 320 * MIB,
          "stats": {"total_inactive_file": 30 * MIB, "inactive_file": 29 * MIB, "cache": 40 * MIB}}
    v2 = {"usage": 100 * MIB, "limit": 320 * MIB, "stats": {"inactive_file": 25 * MIB, "file": 40 * MIB}}
    assert memory_used(v1) == 70 * MIB
    assert memory_used(v2) == 75 * MIB
    assert memory_used({"usage": 5 * MIB, "stats": {"inactive_file": 9 * MIB}}) == 5 * MIB  # never below 0
    assert memory_used({}) == 0  # a stopped container answers no figures


def test_a_reading_says_no_swap_allowed_when_the_swap_limit_is_the_memory_limit():
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 7}, "system_cpu_usage": 70, "online_cpus": 2},
             "memory_stats": {"usage": 50 * MIB, "limit": 320 * MIB, "stats": {"total_inactive_file": MIB, "swap": 0}}}
    found = reading_from(stats, INSPECTED)
    assert found == ContainerReading(True, "2026-12-02T10:00:00Z", 7, 70, 2, 49 * MIB, 320 * MIB, False, None)
    swapping = {**INSPECTED, "HostConfig": {"Memory": 320 * MIB, "MemorySwap": 640 * MIB}}
    stats["memory_stats"]["stats"]["swap"] = 3 * MIB
    assert reading_from(stats, swapping).swap_allowed and reading_from(stats, swapping).swap_used_bytes == 3 * MIB
    stopped = reading_from({}, {"State": {"Running": False, "StartedAt": "x"}, "HostConfig": INSPECTED["HostConfig"]})
    assert not stopped.running and stopped.memory_used_bytes == 0 and stopped.memory_limit_bytes == 320 * MIB


def test_the_highest_memory_stays_until_the_node_restarts():
    highest = HighestSinceRestart()
    assert highest.track("n", "t0", "run-a", 10) == (10, None)
    assert highest.track("n", "t0", "run-a", 60) == (60, None)
    assert highest.track("n", "t0", "run-a", 20) == (60, None)  # keys deleted: the highest stays
    assert highest.track("n", "t0", "", 15) == (60, None)  # the server did not answer: no restart seen
    assert highest.track("n", "t1", "run-a", 12) == (12, None)  # the container restarted
    assert highest.track("n", "t1", "run-b", 11) == (11, None)  # the server restarted inside it
    assert highest.track("n", "t1", "run-b", 14, swap=3) == (14, 3)
    highest.keep_only(["other"])
    assert highest.track("n", "t1", "run-b", 5) == (5, None)  # a node gone and back starts again


def test_info_figures_and_a_replicas_lag():
    info = {"used_memory": 1024, "maxmemory": 256 * MIB, "connected_clients": 3, "total_commands_processed": 99,
            "instantaneous_ops_per_sec": 12, "keyspace_hits": 5, "keyspace_misses": 2, "evicted_keys": 0,
            "role": "master", "connected_slaves": 1, "master_repl_offset": 5000, "uptime_in_seconds": 60,
            "run_id": "abc", "db0": {"keys": 7, "expires": 0}, "db3": {"keys": 1, "expires": 1}}
    primary = database_figures(info)
    assert primary.keys == {0: 7, 3: 1} and primary.master_link_up is None and primary.repl_offset == 5000
    replica = database_figures({"role": "slave", "master_link_status": "up", "master_repl_offset": 4200})
    assert replica.master_link_up is True and replica.used_memory == 0 and replica.keys == {}

    def sample(node, figures, addon="a"):
        return NodeStats("app", addon, node, "data", "h", 1.0, True, None, figures)

    lagged = with_lag([sample("p", primary), sample("r", replica), sample("x", replica, addon="b")])
    assert [s.database.lag_bytes for s in lagged] == [None, 800, None]  # no primary read in addon b


def test_the_aof_manifest_names_its_files():
    manifest = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    assert manifest_files(manifest) == ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof"]
    assert manifest_files("") == []


def stats_at(at: float, memory: int, cpu: float, node: str = "n", addon: str = "a") -> NodeStats:
    return NodeStats("app", addon, node, "data", "h", at, True, ContainerFigures(cpu, memory, 320 * MIB, False))


def test_the_history_keeps_each_sample_then_coarser_points_longer():
    history = MemoryStatsHistory(interval_s=10, tiers=((0, 600), (300, 1800)))
    assert [tier.capacity for tier in history.tiers] == [60, 6]
    start = 1_000_200.0  # at a 5-minute step: 1_000_200 = 3334 x 300
    for i in range(400):  # 4000 s at 10 s
        history.record([stats_at(start + 10 * i, memory=i, cpu=float(i % 2))])
    points = history.history("a", since=0)["n"]
    fine = [p for p in points if p["at"] >= start + 3400]
    assert len(fine) == 60 and fine[0]["at"] == start + 3400 and fine[-1]["at"] == start + 3990
    coarse = [p for p in points if p["at"] < start + 3400]
    # The last six closed 5-minute steps are kept (from +2100 s to +3600 s), each the step's maximum memory
    # and its average CPU; those before the first point at full rate are shown.
    assert [p["at"] - start for p in coarse] == [2100, 2400, 2700, 3000, 3300]
    assert all(p["memory_used"] == (p["at"] - start) / 10 + 29 and p["cpu_percent"] == 0.5 for p in coarse)
    recent = history.history("a", since=start + 3900)["n"]
    assert [p["memory_used"] for p in recent] == list(range(390, 400))
    # At 5-minute steps: the coarse points, then the step being filled (+3900 s: 10 samples so far).
    by_five = history.history("a", since=start + 3000, step_s=300)["n"]
    assert [(p["at"] - start, p["memory_used"]) for p in by_five] == [(3000, 329), (3300, 359), (3600, 389), (3900, 399)]


def test_the_history_merges_points_by_step_and_forgets_a_removed_addon():
    history = MemoryStatsHistory(interval_s=10)
    for i in range(12):
        history.record([stats_at(600 + 10 * i, memory=i * 100, cpu=float(i)), stats_at(600 + 10 * i, 1, 1.0, addon="b")])
    [first, second] = history.history("a", since=0, step_s=60)["n"]  # the minute tier: one closed, one open
    assert (first["at"], first["memory_used"], first["cpu_percent"]) == (600, 500, 2.5)
    assert (second["at"], second["memory_used"], second["cpu_percent"]) == (660, 1100, 8.5)
    assert first["used_memory"] is None  # no database figure sampled
    [both] = history.history("a", since=0, step_s=120)["n"]  # merged from the minute points
    assert (both["at"], both["memory_used"], both["cpu_percent"]) == (600, 1100, 5.5)
    assert history.history("a", since=0, node="other") == {}
    history.forget("a")
    assert history.addons() == {"b"} and history.history("a", since=0) == {}


def test_a_sample_without_a_container_is_kept_as_down():
    down = dataclasses.replace(stats_at(5.0, 1, 1.0), up=False, container=None)
    history = MemoryStatsHistory(interval_s=10)
    history.record([down])
    [point] = history.history("a", since=0)["n"]
    assert point["memory_used"] is None and point["cpu_percent"] is None


class Views:
    def addons(self):
        return [{"name": "a", "app": "app", "status": "running"}, {"name": "gone", "app": "app", "status": "removed"}]

    def addon(self, name):
        return self.addons()[0] if name == "a" else None

    def nodes(self, addon):
        node = dict(host="h", address="127.0.1.1", port=30000, tls_port=None, role="data")
        return [{**node, "id": "n1", "container": "c1", "state": "running"},
                {**node, "id": "n2", "container": "c2", "state": "down"},
                {**node, "id": "old", "container": "c0", "state": "retired"}]


class Runtime:
    def __init__(self):
        self.reads = 0

    async def container_reading(self, host, container):
        if container == "c2":
            raise OSError("the host does not answer")
        self.reads += 1
        return ContainerReading(True, "t0", 10_000_000 * self.reads, 100_000_000 * self.reads, 2, 5 * MIB, 320 * MIB, False)

    async def stored_bytes(self, *args):
        return 4096


class Redis:
    async def close(self):
        pass

    async def database_figures(self, node):
        return database_figures({"role": "master", "used_memory": 1000, "run_id": "r"})


class Secrets:
    def peek(self, addon):
        return "secret"


async def test_the_sampler_task_samples_each_live_node_and_a_silent_one_as_down():
    history = MemoryStatsHistory(interval_s=0.01)
    sampler = StatsSampler(Views(), Runtime(), Redis(), Secrets(), history, interval_s=0.01)
    sampler.start()
    try:
        for _ in range(200):
            if len(history.history("a", since=0).get("n1", [])) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await sampler.stop()
    by_node = {s.node: s for s in sampler.latest()}
    assert set(by_node) == {"n1", "n2"}  # live nodes of live addons only
    assert by_node["n1"].up and by_node["n1"].disk_bytes == 4096 and by_node["n1"].container.cpu_percent == 20.0
    assert not by_node["n2"].up and by_node["n2"].container is None


class KeptClient:
    def __init__(self, *answers):
        self.answers, self.closed = list(answers), False

    async def info(self):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self):
        self.closed = True


async def test_a_kept_connection_that_broke_is_replaced_once_and_a_new_one_that_fails_is_transient():
    node = Endpoint("127.0.1.1", 30000, "secret")
    first, second = KeptClient({"run_id": "a"}, Broken("closed")), KeptClient({"run_id": "b"})
    third = KeptClient(Broken("refused"))
    made = [first, second, third]
    kept = KeptClients(lambda endpoint: made.pop(0))
    assert (await kept.figures(node)).run_id == "a"
    assert (await kept.figures(node)).run_id == "b"  # the kept one broke (the node restarted): a new one at once
    assert first.closed and not second.closed
    second.answers.append(Broken("closed"))
    with pytest.raises(TransientError):  # the new one fails too: the node does not answer
        await kept.figures(node)
    await kept.close()
    assert second.closed and third.closed
