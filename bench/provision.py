"""Benchmark: provisioning a redis-starter-256 addon through the engine, against the raw
Docker operations measured in the same run, with the same image, on the same host (DESIGN §9).

    .venv/bin/python bench/provision.py [--n 10] [--no-cli] [--log-level WARNING]

Cases (latency = from the first call until PING answers / the operation has succeeded):
  engine  add_addon -> wait_for_operation returning "succeeded"
  raw     aiodocker directly, building the node the engine builds: volume create, container create
          (host network, same memory limit, mount and restart policy), one put_archive into /etc/redis
          of the engine's redis.conf (plaintext port + TLS port and TLS lines) with tls/server.crt,
          tls/server.key (issued by a CertificateAuthority of the bench's temp dir) and tls/ca.crt,
          start, poll PING over plaintext (the raw floor an operator would use); the password, the
          redis.conf and the certificate are made before the clock starts
  cli     `docker -H <host> run -d --network host ...` with the config as arguments (plaintext only:
          `docker run` puts no files in, so this node serves no TLS), poll PING

After one uncounted warm-up of each, each case runs N one after another (interleaved with the other cases, rotating which goes first,
each pair on the host the engine's placement picks), then one alone followed by N at once.
Prints a table and writes every sample to bench/results/provision.json. Everything created is
removed in a `finally`, and the hosts are checked to hold nothing of this run afterwards.
Timing wrappers set on the engine's objects (placement lock, ports_in_use, event store thread,
read-model follower) show where the engine's own time goes; no engine code is changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import sys
import time
from datetime import datetime, timezone

import aiodocker

# common first: importing it puts the repository on sys.path for the packages below.
from common import (RESULTS_DIR, Ports, machine, ms, node_container, node_files, node_labels, operation_timings, p50,
                    p95, ratio, remaining, remove_addon, remove_labelled, remove_leftovers, remove_node, run_bench,
                    s2, temp_settings, wait_for_ping)

from adapters.docker.runtime import config_archive
from adapters.tls import CertificateAuthority
from domain.settings import DEFAULT_SETTINGS
from domain.placement import place
from domain.redis_config import container_memory_bytes, redis_conf
from engine import build

PLAN = "redis-starter-256"
RESULTS = RESULTS_DIR / "provision.json"
OP_TIMEOUT_S = 60.0
SETTLE_S = 1.0  # pause before each "one alone" and each batch
RUN_BUDGET_S = 150.0  # measurements stop here; cleanup gets the rest of the ~3 minutes
SEQ_RATIO_TARGET = 1.5
CONCURRENCY_TARGET = 3.0


# -- the raw cases ------------------------------------------------------------------------------


class Raw:
    """The same work as a provisioning, without the engine: straight Docker API and CLI calls."""

    def __init__(self, settings, image: str, run_id: str, authority: CertificateAuthority):
        self.hosts = {h.name: h for h in settings.hosts}
        self.image = image
        self.run_id = run_id
        self.app = f"bench-raw-{run_id}"
        self.ports = Ports(settings.hosts)
        self.authority = authority  # the raw side's own CA, in the bench's temp dir
        self.docker = {h.name: aiodocker.Docker(url=h.docker_url) for h in settings.hosts}
        self.created: list[tuple[str, str, str]] = []  # (host, container, volume)
        self.count = 0

    def _names(self, kind: str) -> tuple[str, str]:
        self.count += 1
        name = f"redis-addons-bench-{kind}-{self.run_id}-{self.count:03d}"
        return name, f"{name}-data"

    def _files(self, address: str, port: int, tls_port: int, password: str, name: str) -> dict[str, str]:
        """What the engine puts into /etc/redis (engine/nodes.py): redis.conf with the TLS port and
        lines, the server certificate and key for the address (and the node's name), and the CA."""
        conf = redis_conf(address=address, port=port, tls_port=tls_port, memory_mib=256, password=password,
                          settings=DEFAULT_SETTINGS)
        certificate, key = self.authority.issue_server_certificate(address, (name,))
        return node_files(conf, certificate, key, self.authority.certificate_pem)

    async def api(self, host: str) -> dict:
        """aiodocker: volume, container, redis.conf + TLS files, start, then PING (plaintext)."""
        h = self.hosts[host]
        port, tls_port = self.ports.take(host), self.ports.take(host)
        name, volume = self._names("api")
        password = secrets.token_urlsafe(48)
        labels = node_labels(name, self.app, host, port, tls_port, self.run_id)
        memory = container_memory_bytes(256)
        archive = config_archive(self._files(h.address, port, tls_port, password, name))  # before the clock
        docker = self.docker[host]
        t0 = time.perf_counter()
        self.created.append((host, name, volume))
        await docker.volumes.create({"Name": volume, "Labels": labels})
        container = await docker.containers.create(node_container(self.image, labels, memory, volume), name=name)
        await container.put_archive("/etc/redis", archive)
        t_created = time.perf_counter()
        await container.start()
        t_started = time.perf_counter()
        attempts = await wait_for_ping(h.address, port, password, time.monotonic() + OP_TIMEOUT_S, client_retries=True)
        t1 = time.perf_counter()
        return dict(host=host, port=port, tls_port=tls_port, container=name, latency_s=t1 - t0, t0=t0, t1=t1,
                    phases_s=dict(create=t_created - t0, start=t_started - t_created, ready=t1 - t_started),
                    ping_attempts=attempts)

    async def cli(self, host: str) -> dict:
        """`docker run -d --network host ...` (config as arguments), then PING."""
        h = self.hosts[host]
        port = self.ports.take(host)
        name, volume = self._names("cli")
        password = secrets.token_urlsafe(48)
        memory = container_memory_bytes(256)
        labels = [x for k, v in node_labels(name, self.app, host, port, None, self.run_id).items()
                  for x in ("--label", f"{k}={v}")]
        argv = [
            "docker", "-H", h.docker_url, "run", "-d", "--name", name, "--network", "host",
            "--memory", str(memory), "--memory-swap", str(memory), "--restart", "unless-stopped",
            "--mount", f"type=volume,source={volume},target=/data", *labels, self.image,
            "/usr/local/bin/redis-server", "--bind", h.address, "--port", str(port), "--dir", "/data",
            "--protected-mode", "yes", "--maxmemory", "256mb", "--requirepass", password,
        ]
        t0 = time.perf_counter()
        self.created.append((host, name, volume))
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), OP_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"docker run failed ({proc.returncode}): {err.decode().strip()}")
        t_run = time.perf_counter()
        attempts = await wait_for_ping(h.address, port, password, time.monotonic() + OP_TIMEOUT_S, client_retries=True)
        t1 = time.perf_counter()
        return dict(host=host, port=port, container=name, latency_s=t1 - t0, t0=t0, t1=t1,
                    phases_s=dict(docker_run=t_run - t0, ready=t1 - t_run), ping_attempts=attempts)

    async def cleanup(self) -> dict:
        results = await asyncio.gather(*(remove_node(self.docker[host], name, volume) for host, name, volume in self.created),
                                       return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, Exception)]
        # Anything labelled with this run that the list above missed.
        for docker in self.docker.values():
            await remove_labelled(docker, f"redis-addons.bench={self.run_id}")
            for v in (await docker.volumes.list()).get("Volumes") or []:
                if v["Name"].startswith(f"redis-addons-bench-cli-{self.run_id}-"):
                    await (await docker.volumes.get(v["Name"])).delete()
        return {"removed": len(self.created), "errors": errors}

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.docker.values()), return_exceptions=True)


# -- the engine case ----------------------------------------------------------------------------


class EngineCase:
    def __init__(self, engine, run_id: str):
        self.engine = engine
        self.app = f"bench-{run_id}"
        self.addons: list[str] = []
        self.plan = engine.plans.provisionable(PLAN)

    def next_host(self) -> str:
        """Where the engine's placement will put the next addon (raw cases go to the same host)."""
        e = self.engine
        return place(self.plan.memory_mib, [h.as_domain() for h in e.settings.hosts], e.inventory.tenants()).host

    async def provision(self) -> dict:
        wall_t0, t0 = time.time(), time.perf_counter()
        requested = await self.engine.add_addon(self.app, PLAN)
        t_requested = time.perf_counter()
        self.addons.append(requested["addon"])
        operation = await self.engine.wait_for_operation(requested["operation_id"], timeout=OP_TIMEOUT_S)
        t1, wall_t1 = time.perf_counter(), time.time()
        if operation["status"] != "succeeded":
            raise RuntimeError(f"provisioning {requested['addon']} ended {operation['status']}: {operation['error']}")
        row = await self.engine.addon(self.app, requested["addon"])
        return dict(addon=requested["addon"], operation_id=requested["operation_id"], host=row["host"], port=row["port"],
                    latency_s=t1 - t0, t0=t0, t1=t1, wall_t0=wall_t0, wall_t1=wall_t1,
                    add_addon_s=t_requested - t0, wait_s=t1 - t_requested)

    async def remove_all(self) -> dict:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(remove_addon(self.engine, self.app, n, OP_TIMEOUT_S) for n in self.addons),
                                       return_exceptions=True)
        errors = [str(r) for r in results if r is not None]
        return {"removed": len(self.addons) - len(errors), "errors": errors, "wall_s": time.perf_counter() - t0}

    async def step_timings(self) -> dict[str, dict]:
        """Per provisioning operation: how long each saga step took, and the gaps around them."""
        out = {}
        for op in await self.engine.operations():
            if op["kind"] != "provision" or op["app"] != self.app:
                continue
            t = operation_timings(op)
            out[op["id"]] = dict(addon=op["addon"], **t, total_s=None if t["finished_ts"] is None or t["started_ts"] is None
                                 else t["finished_ts"] - t["started_ts"])
        return out


# -- instrumentation: timing wrappers set on the engine's own objects (no engine code changes) ------


class Probe:
    """Times the engine's shared choke points, per phase of the run: the placement lock,
    ports_in_use (Docker listings on every host), the event store's single worker thread
    (time queued behind other calls vs time running) and the read-model follower waits."""

    def __init__(self, engine):
        self.phase = "warm-up"
        self.records: dict[str, dict[str, list[float]]] = {}
        self._wrap(engine.runtime, "ports_in_use", "ports_in_use")
        self._wrap(engine.follower, "wait_until", "follower.wait_until")
        self._wrap_store(engine.events)
        engine.placing.lock = TimedLock(engine.placing.lock, self)

    def add(self, name: str, value: float) -> None:
        self.records.setdefault(self.phase, {}).setdefault(name, []).append(value)

    def _wrap(self, obj, attr: str, name: str) -> None:
        original = getattr(obj, attr)

        async def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)

        setattr(obj, attr, timed)

    def _wrap_store(self, events) -> None:
        original = events._run

        async def timed(fn, *args):
            ran = [0.0]

            def inner(*a):
                t = time.perf_counter()
                try:
                    return fn(*a)
                finally:
                    ran[0] = time.perf_counter() - t

            t0 = time.perf_counter()
            try:
                return await original(inner, *args)
            finally:
                label = getattr(fn, "__name__", "call")
                self.add(f"store.{label} running", ran[0])
                self.add(f"store.{label} queued", time.perf_counter() - t0 - ran[0])

        events._run = timed

    def summary(self) -> dict:
        return {phase: {name: dict(n=len(xs), p50_s=p50(xs), max_s=max(xs), total_s=sum(xs))
                        for name, xs in sorted(names.items())}
                for phase, names in self.records.items()}


class TimedLock:
    """The engine's placement lock, timed: how long callers wait for it and how long it is held."""

    def __init__(self, lock: asyncio.Lock, probe: Probe):
        self._lock, self._probe, self._since = lock, probe, 0.0

    async def __aenter__(self):
        t0 = time.perf_counter()
        await self._lock.acquire()
        self._since = time.perf_counter()  # one holder at a time, so one field is enough
        self._probe.add("placing lock wait", self._since - t0)

    async def __aexit__(self, *exc):
        self._probe.add("placing lock held", time.perf_counter() - self._since)
        self._lock.release()


# -- the run --------------------------------------------------------------------------------------


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    home, settings = temp_settings()
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    variants = ["engine", "raw"] + ([] if args.no_cli else ["cli"])
    samples = {v: {"sequential": [], "alone": [], "concurrent": []} for v in variants}
    batch_wall = {}
    orders = {"sequential": [], "concurrent": None}
    cleanup: dict = {}
    steps: dict = {}
    error = None
    raw = None
    case = None
    image = None
    probe = None
    try:
        async with build(settings) as engine:
            image = engine.versions.default.image
            case = EngineCase(engine, run_id)
            probe = Probe(engine)
            raw = Raw(settings, image, run_id, CertificateAuthority.load_or_create(home / "raw-ca"))
            run = {"engine": lambda host: case.provision(), "raw": raw.api, "cli": raw.cli}
            try:
                # Warm-up, not counted: first connections, first image read, first SQLite pages.
                host = case.next_host()
                for v in variants:
                    await asyncio.wait_for(run[v](host), OP_TIMEOUT_S)

                # Sequential, interleaved: in pair i the variants run in a rotated order, on one host.
                probe.phase = "sequential"
                for i in range(args.n):
                    order = variants[i % len(variants):] + variants[:i % len(variants)]
                    orders["sequential"].append(order)
                    host = case.next_host()
                    for v in order:
                        sample = await asyncio.wait_for(run[v](host), OP_TIMEOUT_S)
                        sample["i"] = i
                        samples[v]["sequential"].append(sample)
                    if time.monotonic() - began > RUN_BUDGET_S:
                        raise TimeoutError("run budget spent during the sequential phase")

                # Concurrency: per variant, one alone, then N at once on the same hosts the engine uses.
                order = variants[:]
                random.shuffle(order)
                orders["concurrent"] = order
                for v in order:
                    await asyncio.sleep(SETTLE_S)  # let the daemons finish the previous batch's work
                    host = case.next_host()
                    probe.phase = "alone"
                    samples[v]["alone"].append(await asyncio.wait_for(run[v](host), OP_TIMEOUT_S))
                    if v == "engine":
                        calls = [case.provision() for _ in range(args.n)]
                    else:
                        # The engine's batch alternates hosts (most free memory first); so do these.
                        names = [h.name for h in settings.hosts]
                        first = names.index(case.next_host())
                        calls = [run[v](names[(first + k) % len(names)]) for k in range(args.n)]
                    await asyncio.sleep(SETTLE_S)
                    probe.phase = "concurrent"
                    t0 = time.perf_counter()
                    batch = await asyncio.wait_for(asyncio.gather(*calls), OP_TIMEOUT_S * 2)
                    batch_wall[v] = time.perf_counter() - t0
                    samples[v]["concurrent"] = list(batch)
                    if time.monotonic() - began > RUN_BUDGET_S:
                        raise TimeoutError("run budget spent during the concurrent phase")
                steps = await case.step_timings()
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                if probe is not None:
                    probe.phase = "cleanup"
                try:
                    cleanup["engine"] = await asyncio.wait_for(case.remove_all(), 90)
                except BaseException as e:  # noqa: BLE001
                    cleanup["engine"] = {"errors": [f"{type(e).__name__}: {e}"]}
    finally:
        if raw is not None:
            try:
                cleanup["raw"] = await raw.cleanup()
            finally:
                await raw.close()
        if case is not None:
            cleanup["engine_leftovers_removed"] = await remove_leftovers(settings, case.app)
        cleanup["remaining"] = await remaining(settings, run_id)
        shutil.rmtree(home, ignore_errors=True)
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)

    return dict(run_id=run_id, started_at=started_at, duration_s=time.monotonic() - began, plan=PLAN,
                image=image, n=args.n, variants=variants, orders=orders, samples=samples,
                batch_wall_s=batch_wall, engine_steps=steps, engine_probe=probe.summary() if probe else {}, cleanup=cleanup,
                machine=machine())


def summarise(result: dict) -> dict:
    s = result["samples"]
    lat = {v: {mode: [x["latency_s"] for x in s[v][mode]] for mode in ("sequential", "concurrent", "alone")}
           for v in result["variants"]}
    rows = []
    for mode in ("sequential", "concurrent", "alone"):
        for v in result["variants"]:
            xs = lat[v][mode]
            rows.append(dict(case=f"{v} {mode}", n=len(xs), p50_s=p50(xs), p95_s=p95(xs),
                             engine_raw_p50_ratio=ratio(p50(xs), p50(lat["raw"][mode])) if v == "engine" else None,
                             engine_cli_p50_ratio=ratio(p50(xs), p50(lat["cli"][mode])) if v == "engine" and "cli" in lat else None))
    concurrency = {}
    for v in result["variants"]:
        alone = p50(lat[v]["alone"])
        wall = result["batch_wall_s"].get(v)
        concurrency[v] = dict(alone_s=alone, batch_wall_s=wall, ratio=ratio(wall, alone),
                              ratio_vs_sequential_p50=ratio(wall, p50(lat[v]["sequential"])))
    seq_ratio = ratio(p50(lat["engine"]["sequential"]), p50(lat["raw"]["sequential"]))
    conc_ratio = concurrency["engine"]["ratio"]

    # Where the engine's time goes: per step, p50 over the operations of each phase.
    by_op = result["engine_steps"]
    step_table = {}
    for mode in ("sequential", "concurrent"):
        ids = [x["operation_id"] for x in s["engine"][mode]]
        ops = [by_op[i] for i in ids if i in by_op]
        names = list(ops[0]["steps"]) if ops else []
        step_table[mode] = {
            name: dict(p50_s=p50([o["steps"][name]["duration_s"] for o in ops if o["steps"][name]["duration_s"] is not None]),
                       gap_before_p50_s=p50([o["steps"][name]["gap_before_s"] for o in ops if o["steps"][name]["gap_before_s"] is not None]))
            for name in names
        }
        before = [by_op[x["operation_id"]]["started_ts"] - x["wall_t0"] for x in s["engine"][mode] if x["operation_id"] in by_op]
        after = [x["wall_t1"] - by_op[x["operation_id"]]["finished_ts"] for x in s["engine"][mode]
                 if x["operation_id"] in by_op and by_op[x["operation_id"]]["finished_ts"]]
        step_table[mode]["(call -> operation recorded)"] = dict(p50_s=p50(before))
        step_table[mode]["(operation started -> finished)"] = dict(p50_s=p50([o["total_s"] for o in ops if o["total_s"] is not None]))
        step_table[mode]["(operation finished -> wait_for_operation returns)"] = dict(p50_s=p50(after))
        step_table[mode]["(add_addon call returns)"] = dict(p50_s=p50([x["add_addon_s"] for x in s["engine"][mode]]))
        step_table[mode]["(add_addon call -> wait_for_operation returns)"] = dict(p50_s=p50(lat["engine"][mode]))
    raw_phases = {}
    for v in result["variants"]:
        if v == "engine":
            continue
        for mode in ("sequential", "concurrent"):
            keys = list(s[v][mode][0]["phases_s"]) if s[v][mode] else []
            raw_phases[f"{v} {mode}"] = {k: p50([x["phases_s"][k] for x in s[v][mode]]) for k in keys}
    return dict(
        table=rows,
        concurrency=concurrency,
        engine_steps_p50=step_table,
        raw_phases_p50=raw_phases,
        targets={
            "sequential p50 engine/raw <= 1.5": dict(value=seq_ratio, passed=seq_ratio is not None and seq_ratio <= SEQ_RATIO_TARGET),
            f"{result['n']} concurrent within 3x one alone (engine)": dict(value=conc_ratio, passed=conc_ratio is not None and conc_ratio <= CONCURRENCY_TARGET),
        },
    )


def print_report(result: dict, summary: dict) -> None:
    print(f"\nprovision benchmark  run {result['run_id']}  {result['started_at']}  plan {result['plan']}  "
          f"image {result['image']}  ({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
    print(f"sequential order per pair rotates {result['variants']}; concurrent phase order {result['orders']['concurrent']}\n")
    has_cli = "cli" in result["variants"]
    header = f"{'case':<20} | {'n':>2} | {'p50 ms':>7} | {'p95 ms':>7} | {'engine/raw p50':>14}" + (f" | {'engine/cli p50':>14}" if has_cli else "")
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        line = f"{r['case']:<20} | {r['n']:>2} | {ms(r['p50_s']):>7} | {ms(r['p95_s']):>7} | {s2(r['engine_raw_p50_ratio']):>14}"
        if has_cli:
            line += f" | {s2(r['engine_cli_p50_ratio']):>14}"
        print(line)
    at_once = f"{result['n']} at once wall ms"
    print(f"\n{'concurrency':<12} | {'one alone ms':>12} | {at_once:>18} | {'wall/alone':>10} | {'wall/seq p50':>12}")
    for v, c in summary["concurrency"].items():
        print(f"{v:<12} | {ms(c['alone_s']):>12} | {ms(c['batch_wall_s']):>18} | {s2(c['ratio']):>10} | {s2(c['ratio_vs_sequential_p50']):>12}")
    print("\nengine steps, p50 ms (duration; gap = time between the previous step's end and this step's start)")
    for mode, table in summary["engine_steps_p50"].items():
        parts = []
        for name, t in table.items():
            gap = f" (gap {ms(t['gap_before_p50_s'])})" if t.get("gap_before_p50_s") is not None else ""
            parts.append(f"{name} {ms(t['p50_s'])}{gap}")
        print(f"  {mode:<10}: " + "; ".join(parts))
    print("raw phases, p50 ms")
    for case, phases in summary["raw_phases_p50"].items():
        print(f"  {case:<15}: " + "; ".join(f"{k} {ms(v)}" for k, v in phases.items()))
    probe = result.get("engine_probe") or {}
    if probe:
        print("engine choke points, per phase: p50 / max / sum ms (n calls)")
        keep = ("placing lock wait", "placing lock held", "ports_in_use", "follower.wait_until",
                "store.save queued", "store.save running", "store.get queued", "store.get running")
        for phase in ("sequential", "concurrent"):
            rows = probe.get(phase, {})
            print(f"  {phase:<10}: " + "; ".join(
                f"{k} {ms(rows[k]['p50_s'])}/{ms(rows[k]['max_s'])}/{ms(rows[k]['total_s'])} ({rows[k]['n']})"
                for k in keep if k in rows))
    print("\ntargets")
    for name, t in summary["targets"].items():
        print(f"  {'PASS' if t['passed'] else 'MISS'}  {name}: {s2(t['value'])}")
    rem = result["cleanup"]["remaining"]
    left = sum(len(x["containers"]) + len(x["volumes"]) for x in rem.values())
    print(f"\ncleanup: engine {result['cleanup'].get('engine')}, raw {result['cleanup'].get('raw', {}).get('removed')} removed; "
          f"{'nothing left' if left == 0 else f'LEFT OVER: {rem}'} on {', '.join(rem)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="addons per sequential run and per concurrent batch")
    parser.add_argument("--no-cli", action="store_true", help="skip the docker CLI variant")
    run_bench(parser, bench, summarise, print_report, RESULTS)


if __name__ == "__main__":
    main()
