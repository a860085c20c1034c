"""Benchmark: the engine upgrade of a Starter addon holding ~100 MB while a client writes, against the
raw floor measured in the same run, with the same images, data size and host (issue 13's benchmark).

    .venv/bin/python bench/upgrade.py [--rounds 2] [--keys 100000] [--from 6.2.14] [--to 7.0.15] [--hold-writes]
                                      [--no-business | --business-only] [--business-from 9.0.0] [--business-to 9.1.2]
                                      [--log-level WARNING]

Cases, both on redis-starter-1024 (the ~100 MB loaded are ~107 MiB of used_memory):
  engine  add_addon(version=--from), ~100 MB loaded, then engine.database_version.upgrade(app, addon,
          --to) -> wait_for_operation returns. The saga's steps are read from the operation's own step
          records (whatever steps it has: a step added to the saga shows up by itself), each with its
          share of the recorded operation time (the operation's start to its end).
  raw     by hand with aiodocker, on the host the engine would place the addon on: a container of the
          --from image configured as the engine configures a node (its redis.conf, labels, memory
          limit, a volume on /data), the same data loaded; then `docker stop` (SIGTERM: Redis saves its
          RDB and exits), a container of the --to image created on the same volume and port (the same
          redis.conf put into /etc/redis), started, PING polled every 10 ms; timed from the stop to the
          first PING answered. No copy of the data, no checks: the least an upgrade by hand can do.

The downtime window is what a client sees: a writer in a separate process (bench/plan_change.py's: INCR +
SET, one at a time, each acknowledged; on an error a new connection 5 ms later; socket timeout 150 s, so
a write held by CLIENT PAUSE WRITE waits rather than fails) writes through REDIS_URL (the engine's; the
raw node's URL), which does not change, from 1 s before the upgrade to 1 s after it. Downtime = its
longest write gap: from the sending of the first write that failed (a write held by the pause and cut
off when the node stops counts from when it was sent) to the next acknowledged write. Also: the longest
time without any acknowledgement, and "stop -> first PING" (the engine: from the start of its `stop`
step to the end of `wait_ready`, from the step records). Afterwards every acknowledged write and every
loaded key is read back from the new node, and the new node's INFO must name the --to version.

An engine upgrade that fails is recorded as such (its error, and the acknowledged writes missing once the
old node is back), not retried. The new node listens on the old node's address and port, so the writer
(as any app) reaches it as soon as it answers, before `verify`. --hold-writes keeps the writer off the new
node until `publish` ends (WriterHold), as if the new node refused writes until then: what the downtime
would be were that so.

Rounds alternate which case goes first. Prints the tables and writes every sample to
bench/results/upgrade.json. Everything created is removed in a `finally` (the addon through the engine,
raw containers and the volume directly) and the hosts are checked to hold nothing of this run afterwards.

After the Starter rounds, the Business part (--no-business skips it, --business-only runs it alone): a minor
upgrade of a Business addon holding ~100 MB under the same writer through REDIS_URL (targets: the longest
write gap <= 1 s, 0 acknowledged writes lost); business_upgrade() says how.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import aiodocker

# common first: importing it puts the repository on sys.path for the packages below.
from common import (DATABASES, RESULTS_DIR, VALUE_BYTES, Ports, client_for, load_keys, machine, ms, node_container,
                    node_labels, p50, print_targets, ratio, remaining, remaining_text, remove_addon, remove_labelled,
                    remove_leftovers, run_bench, s2, step_timings, temp_settings, wait_for_ping, wait_succeeded)

from adapters.docker.runtime import config_archive
from domain.placement import place
from domain.redis_config import container_memory_bytes, redis_conf, redis_url
from domain.settings import DEFAULT_SETTINGS
from engine import build

from failover import ClusterView
from plan_change import Probe, Writer, check, writer_summary, writing
from plan_change_business import Hook, steps_during

PLAN = "redis-starter-1024"
FROM, TO = "6.2.14", "7.0.15"  # on every build of the catalogue: Redis 6 -> Redis 7 (RDB 9 read by a server writing 10)
RESULTS = RESULTS_DIR / "upgrade.json"
WRITE_BEFORE_S = 1.0  # the writer runs this long before the upgrade starts ...
WRITE_AFTER_S = 1.0  # ... and this long after it ends
OP_TIMEOUT_S = 240.0
RUN_BUDGET_S = 240.0  # no new round starts after this
RATIO_TARGET = 1.5
BUSINESS_PLAN = "redis-business-512"  # the ~150 MiB of used_memory and a full sync's buffers fit
BUSINESS_FROM, BUSINESS_TO = "9.0.0", "9.1.2"  # a minor step: Valkey 9.0 -> 9.1
BUSINESS_OP_TIMEOUT_S = 600.0
GAP_TARGET_S = 1.0


async def served_version(url: str) -> str | None:
    """The version the server behind `url` says it runs (Valkey names itself in valkey_version)."""
    client = client_for(url, timeout=10)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return info.get("valkey_version", info.get("redis_version"))


def gap_end(w: dict) -> float | None:
    """Wall time the writer's longest gap ended (its writes were acknowledged again)."""
    g = w["longest_gap"]
    return None if g is None else g["end"]


# -- the raw floor ---------------------------------------------------------------------------------


class Raw:
    """The upgrade by hand: containers made as the engine makes a node, straight Docker API calls."""

    def __init__(self, settings, run_id: str):
        self.hosts = {h.name: h for h in settings.hosts}
        self.run_id = run_id
        self.app = f"bench-raw-{run_id}"
        self.ports = Ports(settings.hosts)
        self.docker = {h.name: aiodocker.Docker(url=h.docker_url) for h in settings.hosts}
        self.created: list[tuple[str, str]] = []  # (host, container)
        self.volumes: list[tuple[str, str]] = []  # (host, volume)
        self.count = 0

    async def node(self, host: str, image: str, port: int, volume: str, conf: str, labels: dict, memory_mib: int):
        """A container of `image` on `volume` with its redis.conf in /etc/redis (created, not started)."""
        self.count += 1
        name = f"redis-addons-bench-raw-{self.run_id}-{self.count:03d}"
        labels = dict(labels, **{"redis-addons.addon": name})
        self.created.append((host, name))
        container = await self.docker[host].containers.create(
            node_container(image, labels, container_memory_bytes(memory_mib), volume), name=name)
        await container.put_archive("/etc/redis", config_archive({"redis.conf": conf}))
        return name, container

    async def volume(self, host: str, labels: dict) -> str:
        name = f"redis-addons-bench-raw-{self.run_id}-{len(self.volumes) + 1:03d}-data"
        self.volumes.append((host, name))
        await self.docker[host].volumes.create({"Name": name, "Labels": labels})
        return name

    async def remove(self, host: str, container: str | None = None, volume: str | None = None) -> None:
        docker = self.docker[host]
        if container:
            try:
                await (await docker.containers.get(container)).delete(force=True, v=True)
            except aiodocker.DockerError as e:
                if e.status != 404:
                    raise
        if volume:
            try:
                await (await docker.volumes.get(volume)).delete()
            except aiodocker.DockerError as e:
                if e.status != 404:
                    raise

    async def cleanup(self) -> dict:
        results = [await asyncio.gather(*(self.remove(h, container=c) for h, c in self.created), return_exceptions=True),
                   await asyncio.gather(*(self.remove(h, volume=v) for h, v in self.volumes), return_exceptions=True)]
        errors = [repr(r) for rs in results for r in rs if isinstance(r, Exception)]
        for docker in self.docker.values():  # anything labelled with this run that the lists above missed
            await remove_labelled(docker, f"redis-addons.bench={self.run_id}")
        return {"containers": len(self.created), "volumes": len(self.volumes), "errors": errors}

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.docker.values()), return_exceptions=True)


async def raw_round(raw: Raw, host: str, images: dict, memory_mib: int, keys: int, workdir: Path, label: str) -> dict:
    h = raw.hosts[host]
    password = secrets.token_urlsafe(48)
    port = raw.ports.take(host)
    labels = node_labels("", raw.app, host, port, None, raw.run_id)
    conf = redis_conf(address=h.address, port=port, memory_mib=memory_mib, password=password, settings=DEFAULT_SETTINGS)
    url = redis_url(password=password, address=h.address, port=port)
    volume = await raw.volume(host, labels)
    old, old_container = await raw.node(host, images["from"], port, volume, conf, labels, memory_mib)
    new = None
    try:
        await old_container.start()
        await wait_for_ping(h.address, port, password, time.monotonic() + 60)
        data = await load_keys(url, keys)
        writer = Writer(workdir, label, url)
        try:
            await writer.start()
            await asyncio.sleep(WRITE_BEFORE_S)
            wall_t0, t0 = time.time(), time.perf_counter()
            await old_container.stop(t=60)  # SIGTERM: Redis saves its RDB and exits
            t_stopped = time.perf_counter()
            new, new_container = await raw.node(host, images["to"], port, volume, conf, labels, memory_mib)
            t_created = time.perf_counter()
            await new_container.start()
            t_started = time.perf_counter()
            attempts = await wait_for_ping(h.address, port, password, time.monotonic() + OP_TIMEOUT_S)
            t1, wall_t1 = time.perf_counter(), time.time()
            await asyncio.sleep(WRITE_AFTER_S)
            written = await writer.stop()
        finally:
            writer.kill()
        checked = await check(url, written, keys)
        version = await served_version(url)
    finally:
        await raw.remove(host, container=old)
        if new:
            await raw.remove(host, container=new)
        await raw.remove(host, volume=volume)
    w = writer_summary(written)
    end = gap_end(w)
    return dict(case="raw", label=label, where=f"{host} {h.address}:{port}", data=data, version_after=version,
                stop_to_ping_s=t1 - t0, operation_s=t1 - t0, wall_t0=wall_t0, wall_t1=wall_t1, ping_attempts=attempts,
                writes_back_after_stop_s=None if end is None else end - wall_t0,
                phases_s=dict(docker_stop=t_stopped - t0, create=t_created - t_stopped, start=t_started - t_created,
                              first_ping=t1 - t_started),
                writer=w, checked=checked)


# -- the engine's upgrade --------------------------------------------------------------------------


class WriterHold:
    """--hold-writes: the writer kept off the new node until the upgrade is published, as if the new node
    refused writes until then. From the start of the `stop` step (followed in the operation's step records
    every 20 ms) the writer's URL file names a closed loopback port, so that the writer, once the old node
    cuts its held write, retries there; at the end of `publish` (or the operation's end) REDIS_URL again."""

    def __init__(self, engine, addon: str, writer: Writer, url: str):
        self.engine, self.addon, self.writer, self.url = engine, addon, writer, url
        self.closed = url.rsplit(":", 1)[0] + ":1"  # port 1 on the node's address: nothing listens there
        self.held_at = self.released_at = None

    async def follow(self, operation_id: str, done: asyncio.Event) -> None:
        while not done.is_set() and self.released_at is None:
            op = next((o for o in await self.engine.operations(self.addon) if o["id"] == operation_id), None)
            steps = {s["name"]: s for s in (op or {}).get("steps") or []}
            if self.held_at is None and (steps.get("stop") or {}).get("started_at"):
                self.writer.set_url(self.closed)
                self.held_at = time.time()
            if self.held_at is not None and ((steps.get("publish") or {}).get("ended_at")
                                             or (op or {}).get("status") not in (None, "running", "pending")):
                self.writer.set_url(self.url)
                self.released_at = time.time()
            try:
                await asyncio.wait_for(done.wait(), 0.02)
            except TimeoutError:
                pass
        if self.writer.url != self.url:
            self.writer.set_url(self.url)


async def engine_round(engine, probe: Probe, hook: Hook, app: str, versions: dict, keys: int, workdir: Path, label: str,
                       hold: bool) -> dict:
    """One upgrade under the writer; the sample, also when the upgrade did not succeed (then what the
    writer's acknowledged writes became once the old node was back)."""
    requested = await engine.add_addon(app, PLAN, version=versions["from"])
    addon = requested["addon"]
    removal = "not tried"
    held = None
    try:
        await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
        before = await engine.addon(app, addon)
        url = (await engine.environment(app))["REDIS_URL"]
        data = await load_keys(url, keys)
        writer = Writer(workdir, label, url)
        hook_calls = len(hook.calls)
        done, follower = asyncio.Event(), None
        try:
            await writer.start()
            await asyncio.sleep(WRITE_BEFORE_S)
            wall_t0, t0 = time.time(), time.perf_counter()
            upgrading = await engine.database_version.upgrade(app, addon, versions["to"])
            if hold:
                held = WriterHold(engine, addon, writer, url)
                follower = asyncio.create_task(held.follow(upgrading["operation_id"], done))
            op = await engine.wait_for_operation(upgrading["operation_id"], timeout=OP_TIMEOUT_S)
            t1, wall_t1 = time.perf_counter(), time.time()
            done.set()
            if follower is not None:
                await follower
            await asyncio.sleep(WRITE_AFTER_S)
            written = await writer.stop()
        finally:
            done.set()
            writer.kill()
        url_after = (await engine.environment(app))["REDIS_URL"]
        checked = await check(url_after, written, keys)
        version = await served_version(url_after)
        timings = await step_timings(engine, addon, upgrading["operation_id"])
    finally:
        removal = await remove_addon(engine, app, addon, OP_TIMEOUT_S)
    steps = timings["steps"]
    recorded = timings["finished_ts"] - timings["started_ts"]
    shares = {name: dict(duration_s=s["duration_s"], gap_before_s=s["gap_before_s"], attempts=s["attempts"],
                         share=None if s["duration_s"] is None else s["duration_s"] / recorded, detail=s["detail"])
              for name, s in steps.items()}
    stop, ready = steps.get("stop"), steps.get("wait_ready")
    w = writer_summary(written)
    end = gap_end(w)
    g = w["longest_gap"]
    return dict(case="engine", label=label, addon=addon, operation_id=upgrading["operation_id"], status=op["status"],
                error=op.get("error"), where=f"{before['host']} {before['address']}:{before['port']}", data=data,
                version_after=version, url_unchanged=url_after == url, app_restarted=len(hook.calls) > hook_calls,
                removal_error=removal, operation_s=t1 - t0, recorded_operation_s=recorded, wall_t0=wall_t0,
                wall_t1=wall_t1, after_last_step_s=timings["after_last_step_s"], steps=shares,
                writer_held=None if held is None else dict(
                    from_stop_start_s=None if held.held_at is None or not stop else held.held_at - stop["started_ts"],
                    after_publish_s=None if held.released_at is None or not steps.get("publish")
                    else held.released_at - steps["publish"]["ended_ts"]),
                stop_to_ping_s=None if not stop or not ready or ready["ended_ts"] is None else ready["ended_ts"] - stop["started_ts"],
                writes_back_after_stop_s=None if end is None or not stop else end - stop["started_ts"],
                gap_in_steps=steps_during(None if g is None else [g["start"], g["end"]], steps),
                writes_back_in_steps=steps_during(None if end is None else [end, end], steps),
                breakdown=probe.breakdown(wall_t0, wall_t1), writer=w, checked=checked)


# -- the Business part -------------------------------------------------------------------------------


async def business_upgrade(engine, args, app: str, workdir: Path, record: dict, say) -> None:
    """BUSINESS PART (issue 13: "the write gap of a Business minor upgrade under a writer"; targets: write gap
    <= 1 s, 0 acknowledged writes lost). A redis-business-512 addon on --business-from (a cluster: two data
    nodes, three Sentinels, two HAProxy on the entry address of REDIS_URL), ~100 MB loaded through REDIS_URL,
    redundant with the Sentinels agreeing (failover.ClusterView.wait_ready, not measured); then the same
    writer through REDIS_URL from 1 s before engine.database_version.upgrade(--business-to) to 1 s after
    the operation ends (engine/cluster_upgrade.py: new data nodes on the new build join as replicas, one
    coordinated switch). Fills `record` as it goes (an interrupted run keeps what was measured)."""
    hook = Hook()
    await hook.start()
    addon = None
    try:
        await engine.register_app(app, restart="hook", url=hook.url)
        record.update(app=app, plan=BUSINESS_PLAN, versions=[args.business_from, args.business_to], keys=args.keys)
        t0 = time.monotonic()
        requested = await engine.add_addon(app, BUSINESS_PLAN, version=args.business_from)
        addon = record["addon"] = requested["addon"]
        await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", BUSINESS_OP_TIMEOUT_S)
        record["provision_s"] = time.monotonic() - t0
        url = (await engine.environment(app))["REDIS_URL"]
        record["data"] = await load_keys(url, args.keys)
        say(f"{addon} provisioned in {record['provision_s']:.0f} s, {args.keys} keys loaded through REDIS_URL")
        view = ClusterView(engine, app, addon)
        record["ready_waited_s"] = (await view.wait_ready(180))["waited_s"]
        writer = Writer(workdir, "business", url, prefix="wb:")
        hook_calls = len(hook.calls)
        async with writing(engine, app, writer):
            await asyncio.sleep(WRITE_BEFORE_S)
            t0 = time.perf_counter()
            upgrading = await engine.database_version.upgrade(app, addon, args.business_to)
            op = await engine.wait_for_operation(upgrading["operation_id"], timeout=BUSINESS_OP_TIMEOUT_S)
            t1 = time.perf_counter()
            await asyncio.sleep(WRITE_AFTER_S)
            written = await writer.stop()
        w = writer_summary(written)
        timings = await step_timings(engine, addon, upgrading["operation_id"])
        steps = timings["steps"]
        recorded = timings["finished_ts"] - timings["started_ts"]
        g = w["longest_gap"]
        url_after = (await engine.environment(app))["REDIS_URL"]
        record.update(
            status=op["status"], error=op.get("error"), operation_s=t1 - t0, recorded_operation_s=recorded,
            after_last_step_s=timings["after_last_step_s"],
            steps={name: dict(duration_s=x["duration_s"], gap_before_s=x["gap_before_s"], detail=x["detail"],
                              share=None if x["duration_s"] is None else x["duration_s"] / recorded)
                   for name, x in steps.items()},
            writer=w, checked=await check(url, written, args.keys), version_after=await served_version(url),
            gap_in_steps=steps_during(None if g is None else [g["start"], g["end"]], steps),
            noack_in_steps=steps_during(w["max_noack_span"], steps),
            app_restarted=len(hook.calls) > hook_calls, url_unchanged=url_after == url,
            nodes_after=[n["version"] for n in await engine.nodes(app, addon) if n["role"] == "data"
                         and n["state"] not in ("retired", "left")])
        say(f"upgrade {op['status']} in {t1 - t0:.1f} s, longest write gap {w['longest_gap_s']:.2f} s "
            f"{record['gap_in_steps']}, acked writes lost {record['checked']['acked_writes_lost']}")
    finally:
        if addon is not None:
            record["removal_error"] = await remove_addon(engine, app, addon, BUSINESS_OP_TIMEOUT_S)
        await hook.close()


def summarise_business(b: dict) -> dict:
    done = b.get("status") == "succeeded"
    gap = b["writer"]["longest_gap_s"] if "writer" in b else None
    lost = b["checked"]["acked_writes_lost"] if "checked" in b else None
    return dict(targets={
        f"longest write gap <= {GAP_TARGET_S:.0f} s": dict(value=gap, passed=done and gap <= GAP_TARGET_S),
        "acknowledged writes lost == 0": dict(value=lost, passed=done and lost == 0),
    })


def print_business(b: dict, summary: dict) -> None:
    print(f"\nBusiness upgrade  {' -> '.join(b.get('versions', []))}  {b.get('plan')}  addon {b.get('addon')}  "
          f"(provisioned in {s2(b.get('provision_s'))} s)")
    if b.get("stopped"):
        print(f"STOPPED: {b['stopped']}")
    if "writer" not in b:
        return
    if b.get("data"):
        print(f"data: {b['data']['keys']} keys x {b['data']['value_bytes']} B loaded through REDIS_URL (used_memory "
              f"{b['data']['used_memory'] / 2**20:.0f} MiB); writer: separate process through REDIS_URL (the entry)")
    w, c = b["writer"], b["checked"]
    print(f"{b['status']} in {s2(b['operation_s'])} s; longest write gap {s2(w['longest_gap_s'])} s in {b['gap_in_steps']}; "
          f"longest latency {s2(w['max_latency_s'])} s; longest no-ack {s2(w['max_noack_s'])} s in {b['noack_in_steps']}; "
          f"acked writes lost {c['acked_writes_lost']}; {w['acks']} acks, {w['failures']} failures {w['errors']}")
    if b["status"] != "succeeded":
        print(f"  error: {b['error']}")
    print(f"steps (recorded operation {s2(b['recorded_operation_s'])} s): "
          + "; ".join(f"{k} {s2(v['duration_s'])} s ({'-' if v['share'] is None else format(v['share'] * 100, '.0f')} %)"
                      for k, v in b["steps"].items()))
    print(f"switch: {(b['steps'].get('switch') or {}).get('detail')}")
    print(f"data nodes after: {b['nodes_after']}; served {b['version_after']}; REDIS_URL unchanged {b['url_unchanged']}; "
          f"app restarted {b['app_restarted']}; loaded keys found {c['loaded_keys_found']} of {c['loaded_keys']}")
    print_targets(summary["targets"], "targets (Business)")
    print(f"Business addon removed through the engine: {b.get('removal_error') is None}"
          + (f" ({b['removal_error']})" if b.get("removal_error") else ""))


# -- the run --------------------------------------------------------------------------------------


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    home, settings = temp_settings()
    workdir = home / "writer"
    workdir.mkdir()
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    app = f"bench-up-{run_id}"
    business_app = f"bench-up-biz-{run_id}"
    rounds: list[dict] = []
    orders: list[list[str]] = []
    cleanup: dict = {}
    business: dict = {}
    error = None
    raw = Raw(settings, run_id)
    hook = Hook()
    images = {}
    probe = None
    try:
        await hook.start()
        async with build(settings) as engine:
            probe = Probe(engine)  # times the saga's effects (bench/plan_change.py's wrappers): where a step's time goes
            images = {k: engine.versions.get(v).image for k, v in (("from", args.from_version), ("to", args.to_version))}
            versions = {"from": args.from_version, "to": args.to_version}
            await engine.register_app(app, restart="hook", url=hook.url)
            memory_mib = engine.plans.provisionable(PLAN).memory_mib
            try:
                for i in range(0 if args.business_only else args.rounds):
                    order = ["engine", "raw"] if i % 2 == 0 else ["raw", "engine"]
                    orders.append(order)
                    for case in order:
                        label = f"{case}-{i + 1}"
                        if case == "engine":
                            sample = await asyncio.wait_for(engine_round(engine, probe, hook, app, versions, args.keys, workdir, label,
                                                                         args.hold_writes),
                                                            OP_TIMEOUT_S * 2)
                        else:
                            # The host the engine's placement would take for the same plan.
                            host = place(memory_mib, [h.as_domain() for h in settings.hosts], engine.inventory.tenants()).host
                            sample = await asyncio.wait_for(raw_round(raw, host, images, memory_mib, args.keys, workdir, label),
                                                            OP_TIMEOUT_S * 2)
                        sample["round"] = i + 1
                        rounds.append(sample)
                        print(f"  {label}: {sample.get('status', 'done')}, stop -> first PING {s2(sample['stop_to_ping_s'])} s, writes refused "
                              f"{s2(sample['writer']['longest_gap_s'])} s, operation {s2(sample['operation_s'])} s, "
                              f"acked writes lost {sample['checked']['acked_writes_lost']}", file=sys.stderr, flush=True)
                    if time.monotonic() - began > RUN_BUDGET_S and i + 1 < args.rounds:
                        error = f"run budget of {RUN_BUDGET_S:.0f} s spent after round {i + 1}: stopped there"
                        break
                if not args.no_business:
                    def say(text: str) -> None:
                        print(f"  [business] {text} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)

                    try:
                        await asyncio.wait_for(business_upgrade(engine, args, business_app, workdir, business, say),
                                               BUSINESS_OP_TIMEOUT_S * 2)
                    except Exception as e:  # noqa: BLE001 - reported with the Starter results, which stand
                        business["stopped"] = f"{type(e).__name__}: {e}"
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                leftover = []
                try:
                    leftover = [a["name"] for a in await engine.addons(app) if a["status"] != "removed"]
                except Exception:  # noqa: BLE001 - e.g. the app never had an addon
                    pass
                cleanup["engine"] = {"removed_at_end": leftover,
                                     "errors": [p for a in leftover if (p := await remove_addon(engine, app, a, 90))]}
    finally:
        try:
            cleanup["raw"] = await raw.cleanup()
        finally:
            await raw.close()
            await hook.close()
            if probe is not None:
                probe.restore()
        cleanup["engine_leftovers_removed"] = await remove_leftovers(settings, app) + await remove_leftovers(settings, business_app)
        cleanup["remaining"] = await remaining(settings, run_id)
        shutil.rmtree(home, ignore_errors=True)
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)
    return dict(run_id=run_id, started_at=started_at, duration_s=time.monotonic() - began, plan=PLAN,
                versions=[args.from_version, args.to_version], images=images, keys=args.keys, value_bytes=VALUE_BYTES,
                databases=DATABASES, orders=orders, rounds=rounds, stopped=error, cleanup=cleanup,
                machine=machine(load_1m_at_end=os.getloadavg()[0]), business=business or None, hold_writes=args.hold_writes)


# -- summary and report ---------------------------------------------------------------------------


def step_names(rounds: list[dict]) -> list[str]:
    """The saga's steps in the order the operations ran them (a step added later shows up here)."""
    names: list[str] = []
    for r in rounds:
        names += [n for n in r["steps"] if n not in names]
    return names


def summarise(result: dict) -> dict:
    summary = summarise_starter(result)
    if result.get("business"):
        summary["business"] = summarise_business(result["business"])
    return summary


def summarise_starter(result: dict) -> dict:
    by_case = {c: [r for r in result["rounds"] if r["case"] == c] for c in ("engine", "raw")}
    engine = by_case["engine"]
    upgraded = [r for r in engine if r["status"] == "succeeded"]  # a failed upgrade's window is no downtime to compare
    rows = [dict(case=r["label"], n=1, status=r.get("status", "-"), stop_to_ping_s=r["stop_to_ping_s"],
                 downtime_s=r["writer"]["longest_gap_s"], noack_s=r["writer"]["max_noack_s"], operation_s=r["operation_s"],
                 lost=r["checked"]["acked_writes_lost"])
            for r in result["rounds"]]
    for c, rs in (("engine", upgraded), ("raw", by_case["raw"])):
        rows.append(dict(case=f"{c} p50", n=len(rs), status="", stop_to_ping_s=p50([r["stop_to_ping_s"] for r in rs]),
                         downtime_s=p50([r["writer"]["longest_gap_s"] for r in rs]),
                         noack_s=p50([r["writer"]["max_noack_s"] for r in rs]),
                         operation_s=p50([r["operation_s"] for r in rs]),
                         lost=sum(r["checked"]["acked_writes_lost"] for r in rs)))
    median = {c: {k: p50([r["writer"]["longest_gap_s"] if k == "downtime_s" else r[k] for r in rs])
                  for k in ("downtime_s", "stop_to_ping_s")} for c, rs in (("engine", upgraded), ("raw", by_case["raw"]))}
    ratios = dict(downtime=ratio(median["engine"]["downtime_s"], median["raw"]["downtime_s"]),
                  stop_to_ping=ratio(median["engine"]["stop_to_ping_s"], median["raw"]["stop_to_ping_s"]))
    steps = {name: dict(duration_p50_s=p50([r["steps"].get(name, {}).get("duration_s") for r in upgraded]),
                        share_p50=p50([r["steps"].get(name, {}).get("share") for r in upgraded]),
                        per_round_s=[r["steps"].get(name, {}).get("duration_s") for r in upgraded])
             for name in step_names(upgraded)}
    between = p50([sum(s["gap_before_s"] or 0 for s in r["steps"].values()) + (r["after_last_step_s"] or 0) for r in upgraded])
    lost = sum(r["checked"]["acked_writes_lost"] for r in engine)
    all_upgraded = bool(engine) and len(upgraded) == len(engine)
    raw_phases = {k: p50([r["phases_s"][k] for r in by_case["raw"]]) for k in ("docker_stop", "create", "start", "first_ping")}
    breakdown = {k: p50([r["breakdown"][k] for r in upgraded]) for k in (upgraded[0]["breakdown"] if upgraded else {})}
    target = ratios["downtime"]
    return dict(
        table=rows, ratios=ratios, steps_p50=steps, engine_breakdown_p50=breakdown, between_steps_p50_s=between, raw_phases_p50=raw_phases,
        recorded_operation_p50_s=p50([r["recorded_operation_s"] for r in upgraded]),
        engine_failures=[dict(round=r["label"], error=r["error"], acked_writes_lost=r["checked"]["acked_writes_lost"])
                         for r in engine if r["status"] != "succeeded"],
        targets={
            f"downtime (writes refused) p50 engine/raw <= {RATIO_TARGET}": dict(
                value=target, passed=all_upgraded and target is not None and target <= RATIO_TARGET),
            "every engine upgrade succeeded": dict(value=f"{len(upgraded)} of {len(engine)}", passed=all_upgraded),
            "acknowledged writes lost (engine) == 0": dict(value=lost, passed=lost == 0 and bool(engine)),
        },
        checks=dict(
            new_version_served=all(r["version_after"] == result["versions"][1] for r in upgraded + by_case["raw"]),
            loaded_data_intact=all(r["checked"]["loaded_keys_found"] == r["checked"]["loaded_keys"] for r in result["rounds"]),
            writes_resumed=all(r["writer"]["writes_resumed"] for r in result["rounds"]),
            url_unchanged=all(r["url_unchanged"] for r in engine), app_restarted=all(r["app_restarted"] for r in upgraded),
            raw_acked_writes_lost=sum(r["checked"]["acked_writes_lost"] for r in by_case["raw"])),
    )


def print_report(result: dict, summary: dict) -> None:
    if result["rounds"] or result["stopped"]:
        print_starter(result, summary)
    if result.get("business"):
        print_business(result["business"], summary["business"])
    c = result["cleanup"]
    print(f"\ncleanup: engine {c.get('engine')}, raw {c.get('raw')}; {remaining_text(c['remaining'])}")


def print_starter(result: dict, summary: dict) -> None:
    rounds = result["rounds"]
    data = rounds[0]["data"] if rounds else {}
    print(f"\nStarter upgrade benchmark  run {result['run_id']}  {result['started_at']}  {' -> '.join(result['versions'])}  "
          f"{result['plan']}  ({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs, "
          f"load {result['machine']['load_1m_at_end']:.1f} at the end)")
    if data:
        print(f"data: {result['keys']} keys x {result['value_bytes']} B random in {result['databases']} databases "
              f"(used_memory {data['used_memory'] / 2**20:.0f} MiB); writer: separate process through REDIS_URL, INCR + SET, "
              "one at a time")
    print("writer: kept off the new node until the upgrade is published (--hold-writes: as if the new node refused "
          "writes until then)" if result.get("hold_writes") else "writer: follows REDIS_URL as an app does (retries every 5 ms)")
    print(f"round orders {result['orders']}" + (f"; STOPPED: {result['stopped']}" if result["stopped"] else "") + "\n")
    header = (f"{'case':<10} | {'n':>1} | {'status':<9} | {'stop -> first PING s':>20} | {'downtime (writes refused) s':>27} | "
              f"{'longest no-ack s':>16} | {'operation s':>11} | {'acked writes lost':>17}")
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        print(f"{r['case']:<10} | {r['n']:>1} | {r['status']:<9} | {s2(r['stop_to_ping_s']):>20} | {s2(r['downtime_s']):>27} | {s2(r['noack_s']):>16} | "
              f"{s2(r['operation_s']):>11} | {r['lost']:>17}")
    rt = summary["ratios"]
    print(f"\nengine/raw p50: downtime {s2(rt['downtime'])} (target <= {RATIO_TARGET}), stop -> first PING {s2(rt['stop_to_ping'])}")
    for r in rounds:
        g = r["writer"]["longest_gap"]
        where = f"; writes back during {r['writes_back_in_steps']}" if r["case"] == "engine" else ""
        if r.get("writer_held"):
            h = r["writer_held"]
            where += (f"; writer held off {ms(h['from_stop_start_s'])} ms after stop began, let back {ms(h['after_publish_s'])} ms "
                      "after publish ended")
        if g:
            print(f"  {r['label']}: writes back {s2(r['writes_back_after_stop_s'])} s after the stop began{where}; "
                  f"{g['failures']} failed attempts, kinds {sorted(g.get('kinds') or {})}")
    print(f"\nengine: the whole operation and each step's share (p50 over {len([r for r in rounds if r['case'] == 'engine'])} "
          f"rounds; recorded operation {s2(summary['recorded_operation_p50_s'])} s)")
    for name, v in summary["steps_p50"].items():
        share = "-" if v["share_p50"] is None else f"{v['share_p50'] * 100:.0f} %"
        print(f"  {name:<13} {s2(v['duration_p50_s']):>6} s  {share:>5}   per round {' '.join(s2(x) for x in v['per_round_s'])}")
    print(f"  between steps (the saga's own time) {ms(summary['between_steps_p50_s'])} ms")
    for r in rounds:
        if r["case"] == "engine":
            print(f"  {r['label']} start_new: {str(r['steps'].get('start_new', {}).get('detail'))[:150]}")
    print("engine steps split into their effects (timing wrappers on the engine's ports), p50 s")
    for k, v in summary["engine_breakdown_p50"].items():
        print(f"  {k:<64} {s2(v):>6}")
    print("raw phases, p50 s: " + "; ".join(f"{k} {s2(v)}" for k, v in summary["raw_phases_p50"].items()))
    for f in summary["engine_failures"]:
        print(f"ENGINE UPGRADE FAILED {f['round']}: {f['error']}; acknowledged writes lost once the old node was back: "
              f"{f['acked_writes_lost']}")
    print_targets(summary["targets"])
    print("checks: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["checks"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs the engine case and the raw case once")
    parser.add_argument("--keys", type=int, default=100_000, help=f"keys of {VALUE_BYTES} B loaded before each upgrade")
    parser.add_argument("--from", dest="from_version", default=FROM, help="the version the addon starts on")
    parser.add_argument("--to", dest="to_version", default=TO, help="the version it is upgraded to (an allowed step)")
    parser.add_argument("--hold-writes", action="store_true",
                        help="keep the writer off the new node until the upgrade is published (WriterHold)")
    parser.add_argument("--no-business", action="store_true", help="the Starter rounds only")
    parser.add_argument("--business-only", action="store_true", help="the Business upgrade only (business_upgrade)")
    parser.add_argument("--business-from", default=BUSINESS_FROM, help="the version the Business addon starts on")
    parser.add_argument("--business-to", default=BUSINESS_TO, help="the version it is upgraded to (a minor step)")
    run_bench(parser, bench, summarise, print_report, RESULTS)


if __name__ == "__main__":
    main()
