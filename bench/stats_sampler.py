"""Benchmark: what the stats sampler costs the engine (issue 14): its CPU with ADDONS addons sampled
every 10 s, against the same engine idle (the sampler off), in one run. Target: < 2 % of a core.

    .venv/bin/python bench/stats_sampler.py [--addons 20] [--window 60] [--rounds 2] [--interval 10]

An engine on the hosts of var/hosts.json (its watcher and scheduler off, so only the sampler differs)
provisions ADDONS redis-starter-256 addons. Then ROUNDS times, in turn: an idle window (the sampler
stopped) and a sampling window (the engine's own sampler task at --interval), each WINDOW seconds.
Measured per window: the engine process's CPU time (time.process_time: every thread, so the read
models' queries in worker threads count) over the wall time, as % of one core; each sampler round's
duration; and the CPU time the three Docker engines (dockerd, their own processes) spent meanwhile —
shared with whatever else runs on the machine, so only indicative. The addons are removed through
the engine at the end, and whatever is left of them by label.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import time
from pathlib import Path

from common import (RESULTS_DIR, machine, p50, p95, remaining, remaining_text, remove_addon, remove_leftovers,
                    run_bench, temp_settings)

from engine import build
from metrics_scrape import PLAN, QUIET, provision  # the same 20 starter addons as the scrape bench, made alike

RESULTS = RESULTS_DIR / "stats_sampler.json"
TARGET_PERCENT = 2.0


def dockerd_cpu_s(settings) -> float | None:
    """utime + stime of the hosts' dockerd processes (their pid files under /run/redis-addons)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for host in settings.hosts:
        socket = host.docker_url.removeprefix("unix://")
        try:
            pid = Path(socket).with_name("docker.pid").read_text().strip()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def window(engine, settings, seconds: float, sampling: bool, interval_s: float) -> dict:
    sampler, rounds = engine.stats_sampler, []
    timed_round = sampler.sample_once

    async def counted():
        t0 = time.perf_counter()
        try:
            return await timed_round()
        finally:
            rounds.append(time.perf_counter() - t0)

    sampler.sample_once = counted  # the engine's task calls it: each round is timed
    if sampling:
        sampler.interval_s = interval_s
        sampler.start()
    try:
        wall0, cpu0, docker0 = time.perf_counter(), time.process_time(), dockerd_cpu_s(settings)
        await asyncio.sleep(seconds)
        wall, cpu, docker1 = time.perf_counter() - wall0, time.process_time() - cpu0, dockerd_cpu_s(settings)
    finally:
        await sampler.stop()
        sampler.sample_once = timed_round
    return {"sampling": sampling, "wall_s": wall, "cpu_s": cpu, "cpu_percent": cpu / wall * 100,
            "dockerd_percent": None if docker0 is None or docker1 is None else (docker1 - docker0) / wall * 100,
            "rounds_s": rounds, "nodes": len(sampler.latest())}


async def bench(args) -> dict:
    run = secrets.token_hex(3)
    app_name = f"bench-stats-{run}"
    home, settings = temp_settings("redis-addons-bench-stats-", QUIET)
    result = {"machine": machine(), "addons": args.addons, "plan": PLAN, "window_s": args.window,
              "rounds": args.rounds, "interval_s": args.interval, "run": run, "windows": []}
    try:
        async with build(settings) as engine:
            names = []
            try:
                t0 = time.perf_counter()
                names = await provision(engine, app_name, args.addons)
                result["provision_s"] = time.perf_counter() - t0
                await engine.stats_sampler.sample_once()  # warm: clients to each host, first CPU reads
                await asyncio.sleep(5)  # the provisioning's tail (logs, read models) settles
                for _ in range(args.rounds):
                    for sampling in (False, True):
                        result["windows"].append(await window(engine, settings, args.window, sampling, args.interval))
            finally:
                failures = await asyncio.gather(*(remove_addon(engine, app_name, name, 120) for name in names))
                result["removal_failures"] = [f for f in failures if f]
    finally:
        result["leftovers_removed"] = await remove_leftovers(settings, app_name)
        result["remaining"] = remaining_text(await remaining(settings, run))
        shutil.rmtree(home, ignore_errors=True)
    return result


def summarise(result: dict) -> list[dict]:
    rows = []
    for sampling in (False, True):
        windows = [w for w in result["windows"] if w["sampling"] == sampling]
        wall = sum(w["wall_s"] for w in windows)
        docker = [w["dockerd_percent"] for w in windows]
        rounds = [r for w in windows for r in w["rounds_s"]]
        rows.append(dict(case="sampling" if sampling else "idle", windows=len(windows), wall_s=wall,
                         cpu_percent=sum(w["cpu_s"] for w in windows) / wall * 100 if wall else None,
                         dockerd_percent=None if None in docker or not docker else sum(
                             d * w["wall_s"] for d, w in zip(docker, windows)) / wall,
                         rounds=len(rounds), round_p50_s=p50(rounds), round_p95_s=p95(rounds)))
    idle, sampling = rows
    if idle["cpu_percent"] is not None and sampling["cpu_percent"] is not None:
        sampling["sampler_percent"] = sampling["cpu_percent"] - idle["cpu_percent"]
        sampling["target_met"] = sampling["sampler_percent"] < TARGET_PERCENT
    return rows


def print_report(result: dict, summary: list[dict]) -> None:
    print(f"{result['addons']} x {result['plan']} ({result.get('provision_s', 0):.0f} s to provision); "
          f"{result['rounds']} x (idle, sampling every {result['interval_s']:g} s) windows of {result['window_s']:g} s\n")
    print(f"{'case':<9} | {'engine CPU % of a core':>22} | {'dockerd CPU %':>13} | {'rounds':>6} | "
          f"{'round p50 s':>11} | {'round p95 s':>11}")
    print("-" * 90)
    for r in summary:
        docker = "-" if r["dockerd_percent"] is None else f"{r['dockerd_percent']:.2f}"
        p50s = "-" if r["round_p50_s"] is None else f"{r['round_p50_s']:.2f}"
        p95s = "-" if r["round_p95_s"] is None else f"{r['round_p95_s']:.2f}"
        print(f"{r['case']:<9} | {r['cpu_percent']:>22.2f} | {docker:>13} | {r['rounds']:>6} | {p50s:>11} | {p95s:>11}")
    sampling = summary[1]
    if "sampler_percent" in sampling:
        print(f"\nthe sampler's cost: {sampling['sampler_percent']:.2f} % of a core "
              f"(target < {TARGET_PERCENT:g} %: {'met' if sampling['target_met'] else 'MISSED'})")
    print(f"removal failures: {result.get('removal_failures') or 'none'}; {result.get('remaining')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addons", type=int, default=20, help="starter addons provisioned and sampled")
    parser.add_argument("--window", type=float, default=60, help="seconds of each idle or sampling window")
    parser.add_argument("--rounds", type=int, default=2, help="idle + sampling windows, in turn")
    parser.add_argument("--interval", type=float, default=10, help="the sampler's interval in the sampling windows")
    run_bench(parser, bench, summarise, print_report, RESULTS)
