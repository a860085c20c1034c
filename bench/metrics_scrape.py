"""Benchmark: how long a Prometheus scrape of GET /metrics takes with 20 addons sampled (issue 14).

    .venv/bin/python bench/metrics_scrape.py [--addons 20] [--n 200]

An engine on the hosts of var/hosts.json provisions ADDONS redis-starter-256 addons, its stats sampler
takes one round over them (each node's last sample is what /metrics reads), and its API is served in
this process on 127.0.0.1 (aiohttp AppRunner, as `redis-addons serve`). Measured in the same run, N
times each, interleaved so that a noisy moment hits every case alike, over one keep-alive connection:
  health        GET /health: the raw floor of a request to this server (routing, middlewares, JSON)
  scrape        GET /metrics with the scrape token, asking what Prometheus asks (OpenMetrics, gzip)
  exposition    the registry's exposition alone, in process: no HTTP, no compression
The addons are removed through the engine at the end, and whatever is left of them by label.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import time

import aiohttp
from aiohttp import web

from common import (RESULTS_DIR, machine, p50, p95, ratio, remaining, remaining_text, remove_addon,  # noqa: F401
                    remove_leftovers, run_bench, temp_settings, wait_succeeded)

from adapters.http.app import make_app
from adapters.http.metrics import METRICS
from engine import build

RESULTS = RESULTS_DIR / "metrics_scrape.json"
PLAN = "redis-starter-256"
# What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," \
                    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
QUIET = {"REDIS_ADDONS_SCHEDULER_TICK": "0", "REDIS_ADDONS_WATCH_INTERVAL": "0", "REDIS_ADDONS_STATS_INTERVAL": "0"}


async def provision(engine, app: str, count: int) -> list[str]:
    """`count` addons of one app, five at a time (the machine has 2 cores)."""
    slots, names = asyncio.Semaphore(5), []

    async def one() -> None:
        async with slots:
            requested = await engine.add_addon(app, PLAN)
            await wait_succeeded(engine, requested["operation_id"], f"provisioning {requested['addon']}", 180)
            names.append(requested["addon"])

    await asyncio.gather(*(one() for _ in range(count)))
    return names


async def timed(fn) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def measure(engine, app: web.Application, url: str, n: int) -> dict:
    scrape_token = engine.settings.metrics_token_file.read_text().strip()
    metrics = app[METRICS]
    samples = {"health": [], "scrape": [], "exposition": []}
    sizes = {}
    async with aiohttp.ClientSession(headers={"Accept-Encoding": "gzip"}) as http:
        async def health():
            async with http.get(f"{url}/health") as response:
                assert response.status == 200, response.status
                await response.read()

        async def scrape():
            headers = {"Authorization": f"Bearer {scrape_token}", "Accept": PROMETHEUS_ACCEPT}
            async with http.get(f"{url}/metrics", headers=headers) as response:
                assert response.status == 200, response.status
                body = await response.read()
                sizes.update(content_type=response.content_type, body_bytes=len(body),
                             wire_bytes=int(response.headers.get("Content-Length") or 0),
                             encoding=response.headers.get("Content-Encoding"))

        async def exposition():
            body, _ = await metrics.exposition(PROMETHEUS_ACCEPT)
            sizes["series"] = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))

        for fn in (health, scrape, exposition):  # warm-up, not counted
            await fn()
        for _ in range(n):
            for name, fn in (("health", health), ("scrape", scrape), ("exposition", exposition)):
                samples[name].append(await timed(fn))
    return {"samples": samples, "response": sizes}


async def bench(args) -> dict:
    run = secrets.token_hex(3)
    app_name = f"bench-metrics-{run}"
    home, settings = temp_settings("redis-addons-bench-metrics-", QUIET)
    result = {"machine": machine(), "addons": args.addons, "plan": PLAN, "n": args.n, "run": run}
    try:
        async with build(settings) as engine:
            names = []
            try:
                t0 = time.perf_counter()
                names = await provision(engine, app_name, args.addons)
                result["provision_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                sampled = await engine.stats_sampler.sample_once()
                result["sample_round_s"] = time.perf_counter() - t0
                result["nodes_sampled"] = len(sampled)
                app = make_app(engine)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                try:
                    port = runner.addresses[0][1]
                    result.update(await measure(engine, app, f"http://127.0.0.1:{port}", args.n))
                finally:
                    await runner.cleanup()
            finally:
                failures = await asyncio.gather(*(remove_addon(engine, app_name, name, 120) for name in names))
                result["removal_failures"] = [f for f in failures if f]
    finally:
        result["leftovers_removed"] = await remove_leftovers(settings, app_name)
        result["remaining"] = remaining_text(await remaining(settings, run))
        shutil.rmtree(home, ignore_errors=True)
    return result


def summarise(result: dict) -> list[dict]:
    samples = result.get("samples") or {}
    floor = p50(samples.get("health", []))
    return [dict(case=case, p50_ms=p50(xs) * 1000, p95_ms=p95(xs) * 1000, over_health=ratio(p50(xs), floor),
                 p95_over_health=ratio(p95(xs), p95(samples["health"])))
            for case, xs in samples.items()]


def print_report(result: dict, summary: list[dict]) -> None:
    response = result.get("response", {})
    print(f"{result['addons']} x {result['plan']}: {result.get('nodes_sampled')} nodes sampled "
          f"(one sampler round {result.get('sample_round_s', 0):.2f} s); {result['n']} requests of each case")
    print(f"/metrics: {response.get('series')} series, {response.get('body_bytes')} bytes "
          f"({response.get('content_type')}, {response.get('wire_bytes')} bytes on the wire, "
          f"{response.get('encoding') or 'not compressed'})\n")
    print(f"{'case':<11} | {'p50 ms':>7} | {'p95 ms':>7} | {'/health p50':>11} | {'/health p95':>11}")
    print("-" * 60)
    for r in summary:
        print(f"{r['case']:<11} | {r['p50_ms']:>7.2f} | {r['p95_ms']:>7.2f} | {r['over_health']:>11.2f} | "
              f"{r['p95_over_health']:>11.2f}")
    print(f"\nremoval failures: {result.get('removal_failures') or 'none'}; {result.get('remaining')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addons", type=int, default=20, help="starter addons provisioned and sampled")
    parser.add_argument("--n", type=int, default=200, help="requests of each case")
    run_bench(parser, bench, summarise, print_report, RESULTS)
