"""Benchmark: the control plane at scale (issue 16, part 6).

    .venv/bin/python bench/scale.py [--addons 1000,10000] [--with-50k] [--stores sqlite,postgres]
                                    [--requests 2000] [--nodes 50]

1. An event store holding N addons with their history, made through the domain as the engine records it
   (scale_parts/history.py: each addon provisioned, its plan changed onto another host, backed up once:
   49 events an addon; no container), saved with the engine's EventLog into SQLite and into PostgreSQL
   (a throwaway server, tests/postgres_server.py). For each store and N (scale_parts/store_figures.py):
   the engine's start, cold (first start: inventory, read models and webhooks' book from the whole log)
   and warm (a restart), the `replay`, the API's addons listing and single addon (p50/p99 through the real
   aiohttp API), the projection catch-up rate; each beside a raw operation of the same run (the whole log
   read and decoded; the same SELECT on the read-model file with json.dumps).
2. What an idle Sandbox node costs a host (scale_parts/node_cost.py): --nodes real nodes provisioned through
   the engine on var/hosts.json's hosts, their memory and disk read, extrapolated per 1,000 nodes and to a
   host's capacity; all removed at the end (on failure too).

The default (N = 1,000 and 10,000 on both stores, 50 nodes) takes about 12 minutes on the quiet 2-core
machine (N = 10,000: some 4.5 minutes a store; loaded by other work, five to nine times that);
--with-50k adds N = 50,000 (2.45 M events: about 25 more minutes a store). Targets (issue 16): a warm
start < 5 s and a listing p99 < 50 ms at 10,000 addons.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import HOSTS_FILE, RESULTS_DIR, machine, print_targets, ratio, run_bench, temp_settings  # noqa: F401
from scale_parts.node_cost import node_cost
from scale_parts.store_figures import QUIET, one_size

RESULTS = RESULTS_DIR / "scale.json"
TARGET_ADDONS, START_TARGET_S, LIST_P99_TARGET_MS = 10_000, 5.0, 50.0


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def bench(args) -> dict:
    from tests.postgres_server import ThrowawayPostgres  # the tests' throwaway server, stopped at the end

    sizes = [int(s) for s in args.addons.split(",") if s] + ([50_000] if args.with_50k else [])
    stores = [s for s in args.stores.split(",") if s]
    result = {"machine": machine(), "sizes": sizes, "stores": stores, "rows": [], "nodes": None}
    postgres = ThrowawayPostgres().start() if "postgres" in stores else None
    try:
        for addons in sizes:
            for store in stores:
                env = postgres.new_database(prefix="scale") if store == "postgres" else {}
                result["rows"].append(await one_size(store, addons, env, args.requests, say))
    finally:
        if postgres is not None:
            postgres.stop()
    if args.nodes:
        home, settings = temp_settings("bench-scale-nodes-", env=QUIET)
        try:
            result["nodes"] = await node_cost(settings, args.nodes, say)
        finally:
            import shutil
            shutil.rmtree(home, ignore_errors=True)
    return result


def summarise(result: dict) -> dict:
    rows = []
    for r in result["rows"]:
        api = r["api"]
        rows.append(dict(store=r["store"], addons=r["addons"], events=r["events"], write_s=r["write_s"],
                         raw_read_s=r["raw_read_s"], start_cold_s=r["start_cold_s"],
                         cold_over_raw=ratio(r["start_cold_s"], r["raw_read_s"]), start_warm_s=r["start_warm_s"],
                         replay_s=r["replay_s"], replay_over_raw=ratio(r["replay_s"], r["raw_read_s"]),
                         catch_up_per_s=r["catch_up"]["events_per_s"],
                         catch_up_over_raw=ratio(r["raw_events_per_s"], r["catch_up"]["events_per_s"]),
                         list_p50_ms=api["list"]["p50_ms"], list_p99_ms=api["list"]["p99_ms"],
                         list_over_raw=ratio(api["list"]["p50_ms"], api["raw_list"]["p50_ms"]),
                         one_p50_ms=api["one"]["p50_ms"], one_p99_ms=api["one"]["p99_ms"],
                         one_over_raw=ratio(api["one"]["p50_ms"], api["raw_one"]["p50_ms"])))
    targets = {}
    for r in rows:
        if r["addons"] == TARGET_ADDONS:
            targets[f"{r['store']}: warm start < {START_TARGET_S:.0f} s at {TARGET_ADDONS:,} addons (s)"] = dict(
                value=r["start_warm_s"], passed=r["start_warm_s"] < START_TARGET_S)
            targets[f"{r['store']}: listing p99 < {LIST_P99_TARGET_MS:.0f} ms at {TARGET_ADDONS:,} addons (ms)"] = dict(
                value=r["list_p99_ms"], passed=r["list_p99_ms"] < LIST_P99_TARGET_MS)
    nodes = result["nodes"]
    return dict(rows=rows, targets=targets,
                nodes=None if nodes is None else {k: v for k, v in nodes.items() if k != "samples"})


def print_report(result: dict, summary: dict) -> None:
    print(f"{'store':<8} | {'addons':>6} | {'events':>9} | {'raw read s':>10} | {'start cold s':>12} | {'/raw':>4} | "
          f"{'start warm s':>12} | {'replay s':>8} | {'/raw':>4} | {'catch-up ev/s':>13} | {'raw x':>5} | "
          f"{'list p50/p99 ms':>15} | {'/raw':>5} | {'addon p50/p99 ms':>16} | {'/raw':>5}")
    for r in summary["rows"]:
        print(f"{r['store']:<8} | {r['addons']:>6} | {r['events']:>9} | {r['raw_read_s']:>10.1f} | {r['start_cold_s']:>12.1f} | "
              f"{r['cold_over_raw']:>4.1f} | {r['start_warm_s']:>12.2f} | {r['replay_s']:>8.1f} | {r['replay_over_raw']:>4.1f} | "
              f"{r['catch_up_per_s']:>13.0f} | {r['catch_up_over_raw']:>5.1f} | "
              f"{r['list_p50_ms']:>6.1f} / {r['list_p99_ms']:>6.1f} | {r['list_over_raw']:>5.1f} | "
              f"{r['one_p50_ms']:>7.1f} / {r['one_p99_ms']:>6.1f} | {r['one_over_raw']:>5.1f}")
    print_targets(summary["targets"])
    n = summary["nodes"]
    if n:
        print(f"\nidle {n['plan']} node ({n['nodes']} measured, provisioned in {n['provision_s']:.0f} s): "
              f"memory {n['mean_working_set_mib']:.1f} MiB working set (usage {n['mean_usage_mib']:.1f}, max "
              f"{n['max_working_set_mib']:.1f}; reserved {n['plan_memory_mib']} MiB) + {n['mean_shim_mib']:.1f} MiB its "
              f"containerd-shim; disk {n['mean_size_rw_kib']:.0f} KiB writable layer + {n['mean_volume_kib']:.0f} KiB volumes + "
              f"{n['mean_metadata_kib']:.0f} KiB config and log (image {n['image_mib']:.0f} MiB per host, shared)")
        print(f"per 1,000 idle nodes: {n['per_1000_memory_gib']:.1f} GiB memory, {n['per_1000_disk_mib']:.0f} MiB disk")
        for h in n["hosts"]:
            print(f"  {h['host']} ({h['memory_mib']} MiB): {h['capacity']} nodes at most (memory {h['by_memory']}, "
                  f"ports {h['by_ports']}): {h['idle_memory_mib']:.0f} MiB idle memory, {h['disk_mib']:.0f} MiB disk")
        print(f"  {n['left']}" + (f"; removal failures: {n['removal_failures']}" if n["removal_failures"] else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addons", default="1000,10000", help="history sizes, in addons (comma-separated)")
    parser.add_argument("--with-50k", action="store_true", help="add 50,000 addons (long: see above)")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--requests", type=int, default=2000, help="API requests per kind and size")
    parser.add_argument("--nodes", type=int, default=50, help="idle Sandbox nodes measured (0: none)")
    parser.add_argument("--results", default=str(RESULTS), help="where the JSON goes (under the repository)")
    where, _ = parser.parse_known_args()
    run_bench(parser, bench, summarise, print_report, Path(where.results).resolve())
