"""Benchmark: how long the engine takes to know its inventory at start, as the history grows
(issue 10: the inventory is a read model with its tracking position, not rebuilt from the whole
log at every start).

    .venv/bin/python bench/startup.py [--addons 200,2000] [--n 5]

For each history size, an event store (SQLite, as the engine's) holds that many addons, each
provisioned and plan-changed (Addon, Cluster and Operation events, about 25 per addon). Measured in
the same run, each N times:
  raw           open the store and read the whole notification log, decoded (the floor of any
                rebuild from the log)
  full          the inventory built from the whole log (what every start did before)
  checkpointed  the inventory read back from its checkpoint, then caught up with the 25 events of
                one more addon saved after the checkpoint (what a start does now)
No Docker: only the event store and the inventory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from common import REPO, RESULTS_DIR, machine, p50, p95, ratio, run_bench  # noqa: F401 (REPO: sys.path)

from adapters.checkpoints import FileCheckpoints
from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.catalog import PlanCatalog
from domain.operation import STEPS, Operation
from domain.placement import Placement
from engine.clusters import data_node, new_cluster, promote
from engine.inventory import Inventory
from engine.inventory_keeper import InventoryKeeper
from engine.settings import store_env
from engine.store import EventLog

RESULTS = RESULTS_DIR / "startup.json"


def an_addon_history(number: int) -> list:
    """The aggregates of one addon provisioned then moved by a plan change, as the engine saves them."""
    name, app = f"bench-{number:05d}-{number % 10000:04d}", f"bench-{number:05d}"
    provision = Operation(kind="provision", addon=name, app=app)
    addon = Addon(name=name, app=app, plan="redis-starter-256", memory_mib=256, redis_version="7.0.15",
                  host="host-a", address="127.0.1.1", port=30000 + number % 90, container=f"c-{number}-a",
                  volume=f"c-{number}-a-data", operation_id=provision.id, settings=DEFAULT_SETTINGS, tls_port=None)
    cluster = new_cluster(addon, provision.id)
    for step in STEPS["provision"]:
        provision.start_step(step)
        provision.succeed_step(step)
    provision.mark_succeeded()
    addon.mark_provisioned(operation_id=provision.id)
    promote(cluster, addon.container, "provisioned")
    move = Operation(kind="change_plan", addon=name, app=app)
    plan = PlanCatalog.load().get("redis-starter-512")
    addon.request_plan_change(plan, Placement("host-b", "127.0.2.1", 30000 + number % 90), f"c-{number}-b",
                              f"c-{number}-b-data", move.id, 0)
    cluster.place_node(data_node(addon, addon.target, move.id))
    for step in STEPS["change_plan"]:
        move.start_step(step)
        move.succeed_step(step)
    move.mark_succeeded()
    addon.mark_plan_changed(operation_id=move.id)
    promote(cluster, f"c-{number}-b", "plan change")
    cluster.retire_node(f"c-{number}-a")
    return [addon, cluster, provision, move]


async def a_store(home: Path, addons: int) -> int:
    events = EventLog(store_env({}, home))
    await events.open()
    for number in range(addons):
        await events.save(*an_addon_history(number))
    count = await events.max_position()
    await events.close()
    return count


async def timed(fn) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def one_size(addons: int, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        home, checkpoints = Path(tmp) / "home", FileCheckpoints(Path(tmp) / "checkpoints")
        home.mkdir()
        events_count = await a_store(home, addons)

        async def raw():
            events = EventLog(store_env({}, home))
            await events.open()
            position = 0
            while batch := await events.select(position, 1000):
                position = batch[-1][0]
            await events.close()

        async def load(with_checkpoint: bool):
            events = EventLog(store_env({}, home))
            await events.open()
            await InventoryKeeper(events, Inventory(), checkpoints if with_checkpoint else None).load()
            await events.close()

        # The checkpoint a running engine would have written, then one more addon saved after it.
        events = EventLog(store_env({}, home))
        await events.open()
        keeper = InventoryKeeper(events, Inventory(), checkpoints)
        await keeper.load()
        await keeper.checkpoint()
        await events.save(*an_addon_history(addons + 1))
        await events.close()

        samples = {"raw": [], "full": [], "checkpointed": []}
        for _ in range(n):  # interleaved, so a noisy moment hits every case alike
            samples["raw"].append(await timed(raw))
            samples["full"].append(await timed(lambda: load(False)))
            samples["checkpointed"].append(await timed(lambda: load(True)))
        return {"addons": addons, "events": events_count, "samples": samples, "run": str(uuid4())[:8]}


async def bench(args) -> dict:
    sizes = [int(s) for s in args.addons.split(",")]
    return {"machine": machine(), "n": args.n, "sizes": [await one_size(size, args.n) for size in sizes]}


def summarise(result: dict) -> list[dict]:
    rows = []
    for size in result["sizes"]:
        raw = p50(size["samples"]["raw"])
        for case in ("raw", "full", "checkpointed"):
            xs = size["samples"][case]
            rows.append(dict(addons=size["addons"], events=size["events"], case=case, p50_ms=p50(xs) * 1000,
                             p95_ms=p95(xs) * 1000, over_raw=None if case == "raw" else ratio(p50(xs), raw)))
    return rows


def print_report(result: dict, summary: list[dict]) -> None:
    print(f"{'addons':>6} | {'events':>6} | {'case':<12} | {'p50 ms':>7} | {'p95 ms':>7} | {'/raw p50':>8}")
    print("-" * 62)
    for r in summary:
        over = "-" if r["over_raw"] is None else f"{r['over_raw']:.2f}"
        print(f"{r['addons']:>6} | {r['events']:>6} | {r['case']:<12} | {r['p50_ms']:>7.1f} | {r['p95_ms']:>7.1f} | {over:>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addons", default="200,2000", help="history sizes, in addons (comma-separated)")
    parser.add_argument("--n", type=int, default=5, help="runs of each case per size")
    run_bench(parser, bench, summarise, print_report, RESULTS)
