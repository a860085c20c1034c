"""One history size on one event store: the history written (scale_parts/history.py), then, in the same run,
each figure beside the raw operation it is compared with.

  start cold     build(settings) + start on a home with no read models and no checkpoint (the first start
                 on a store: the inventory, the read models and the webhooks' book read the whole log)
  start warm     the same again after a stop (what a restart costs: read models and checkpoints kept)
  replay         the engine's replay (`redis-addons replay`: every read model rebuilt and compared)
  catch-up       a fresh read-model file caught up by the follower, in events/s
  raw read       the whole log read and decoded through the EventLog: the floor of any of the above
  API            GET /v1/apps/{app}/addons and /v1/apps/{app}/addons/{addon} through the real aiohttp API,
                 one client, p50/p99; raw: the same SELECT on the read-model file and json.dumps of it
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from adapters.http.app import make_app
from common import HOSTS_FILE
from engine import Settings
from engine.bootstrap import build
from engine.follower import Follower
from engine.store import EventLog
from projections import ReadModels
from scale_parts.history import ADDONS_PER_APP, app_of, name_of, write_history

TOKEN = "scale-bench-operator-token"
QUIET = {"REDIS_ADDONS_SCHEDULER_TICK": "0", "REDIS_ADDONS_WATCH_INTERVAL": "0", "REDIS_ADDONS_STATS_INTERVAL": "0"}


def percentile(xs: list[float], q: float) -> float:
    """Nearest rank."""
    xs = sorted(xs)
    return xs[max(0, min(len(xs), round(q * len(xs) + 0.5)) - 1)]


def latency(xs: list[float]) -> dict:
    return dict(p50_ms=percentile(xs, 0.50) * 1000, p99_ms=percentile(xs, 0.99) * 1000, n=len(xs))


async def read_all(settings: Settings) -> tuple[int, float]:
    """Raw: the whole log read and decoded (events, seconds)."""
    events = EventLog(settings.store_env)
    await events.open()
    t0, count, position = time.perf_counter(), 0, 0
    while batch := await events.select(position, 1000):
        position, count = batch[-1][0], count + len(batch)
    elapsed = time.perf_counter() - t0
    await events.close()
    return count, elapsed


async def timed_start(settings: Settings):
    t0 = time.perf_counter()
    engine = build(settings)
    await engine.start()
    return engine, time.perf_counter() - t0


async def catch_up_rate(settings: Settings, into: Path) -> dict:
    events, views = EventLog(settings.store_env), ReadModels(into)
    await events.open()
    try:
        t0 = time.perf_counter()
        position = await Follower(events, views).catch_up()
        elapsed = time.perf_counter() - t0
    finally:
        await events.close()
        views.close()
    return dict(events=position, seconds=elapsed, events_per_s=position / elapsed)


async def api_latencies(engine, addons: int, requests: int) -> dict:
    """Many GETs through the real API on loopback, each timed alone; the raw SELECT + json.dumps of the
    same rows on the engine's read-model file, for the same apps and addons."""
    rng = random.Random(16)
    picks = [rng.randrange(addons) for _ in range(requests)]
    runner = web.AppRunner(make_app(engine, token=TOKEN, scrape_token=TOKEN + "-scrape"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}/v1/apps"
    samples: dict[str, list[float]] = {"list": [], "one": [], "raw_list": [], "raw_one": []}
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for kind, url_of in (("list", lambda n: f"{base}/{app_of(n)}/addons"),
                                 ("one", lambda n: f"{base}/{app_of(n)}/addons/{name_of(n)}")):
                async with http.get(url_of(0)) as warmup:
                    assert warmup.status == 200, await warmup.text()
                for n in picks:
                    t0 = time.perf_counter()
                    async with http.get(url_of(n)) as response:
                        body = await response.read()
                    samples[kind].append(time.perf_counter() - t0)
                    if response.status != 200:
                        raise RuntimeError(f"GET {url_of(n)}: {response.status} {body[:200]!r}")
                if kind == "list" and len(json.loads(body)["addons"]) != ADDONS_PER_APP:
                    raise RuntimeError(f"GET {url_of(n)} listed {body[:200]!r}")
    finally:
        await runner.cleanup()
    raw = sqlite3.connect(str(engine.settings.read_models_file))
    raw.row_factory = sqlite3.Row
    try:
        for n in picks:
            t0 = time.perf_counter()
            rows = [dict(r) for r in raw.execute("SELECT * FROM addons WHERE app = ? ORDER BY created_at, name",
                                                 (app_of(n),))]
            json.dumps({"addons": rows})
            samples["raw_list"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            json.dumps({"addon": dict(raw.execute("SELECT * FROM addons WHERE name = ?", (name_of(n),)).fetchone())})
            samples["raw_one"].append(time.perf_counter() - t0)
    finally:
        raw.close()
    return {kind: latency(xs) for kind, xs in samples.items()}


async def one_size(store: str, addons: int, store_env: dict, requests: int, log) -> dict:
    """Every figure of one store and size; the temporary home is removed at the end."""
    home = Path(tempfile.mkdtemp(prefix=f"bench-scale-{store}-{addons}-"))
    try:
        settings = Settings.from_env({"REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE),
                                      **QUIET, **store_env})
        events = EventLog(settings.store_env)
        await events.open()
        try:
            written = await write_history(events, addons, settings.hosts)
        finally:
            await events.close()
        log(f"{store} {addons}: {written['events']} events written in {written['write_s']:.1f} s")
        count, raw_s = await read_all(settings)
        engine, cold_s = await timed_start(settings)
        try:
            t0 = time.perf_counter()
            replayed = await engine.replay()
            replay_s = time.perf_counter() - t0
            if not replayed["matches"]:
                raise RuntimeError(f"replay differs: {replayed['differences']}")
        finally:
            await engine.stop()
        log(f"{store} {addons}: raw read {raw_s:.1f} s, cold start {cold_s:.1f} s, replay {replay_s:.1f} s")
        engine, warm_s = await timed_start(settings)
        try:
            api = await api_latencies(engine, addons, requests)
        finally:
            await engine.stop()
        catch_up = await catch_up_rate(settings, home / "catch-up.sqlite")
        log(f"{store} {addons}: warm start {warm_s:.2f} s; API p50/p99 ms: list {api['list']['p50_ms']:.2f}/"
            f"{api['list']['p99_ms']:.2f} (raw {api['raw_list']['p50_ms']:.3f}), addon {api['one']['p50_ms']:.2f}/"
            f"{api['one']['p99_ms']:.2f} (raw {api['raw_one']['p50_ms']:.3f}); catch-up {catch_up['events_per_s']:.0f} "
            f"events/s (raw read {count / raw_s:.0f})")
        return dict(store=store, addons=addons, events=written["events"], write_s=written["write_s"],
                    raw_read_s=count and raw_s, raw_events_per_s=count / raw_s, start_cold_s=cold_s,
                    start_warm_s=warm_s, replay_s=replay_s, api=api, catch_up=catch_up)
    finally:
        shutil.rmtree(home, ignore_errors=True)
