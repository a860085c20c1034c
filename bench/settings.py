"""Benchmark: changing a database setting on a running redis-starter-1024 addon holding ~100 MB,
against the raw floor measured in the same run on a node of the same kind (DESIGN §9).

    .venv/bin/python bench/settings.py [--n 5] [--keys 100000] [--connections 200] [--log-level WARNING]

Cases (latency = from the call until the change is done):
  engine  engine.database.change(app, addon, setting, enabled) -> engine.wait_for_operation returns
          aof on:        apply (CONFIG SET save / appendonly yes / maxmemory-policy over TLS, poll INFO
                         persistence until the AOF rewrite is done, redis.conf rewritten through the
                         Docker archive API) -> verify (CONFIG GET) -> publish (event)
          aof off:       the same with appendonly no, then BGSAVE and wait (dump.rdb must hold the data)
          force-tls on:  (enable_force_tls) restart_app (no restart method registered: nothing to do) ->
                         apply (CONFIG SET port 0 over TLS, redis.conf rewritten, CLIENT KILL LADDR) ->
                         verify -> publish
          force-tls off: (disable_force_tls) apply (the plaintext port opened again, no CLIENT KILL) ->
                         verify -> publish -> restart_app
  raw     a node created by hand with aiodocker exactly as the engine creates one (same image, memory,
          mounts, redis.conf with a TLS port, a server certificate issued by the same CA), filled with
          the same data, on the same host; a fresh redis-py TLS connection (verified with the CA) per
          change, as the engine opens one per effect, over one SSLContext made once and shared, as the
          engine does (redis-py alone would build one per connection, ~20 ms each):
          aof on:        CONFIG SET appendonly yes; poll INFO persistence every 10 ms until
                         aof_rewrite_in_progress=0 and aof_rewrite_scheduled=0; put_archive of redis.conf
          aof off:       CONFIG SET appendonly no; BGSAVE; poll until rdb_bgsave_in_progress=0; put_archive
          force-tls on:  CONFIG SET port 0; put_archive of redis.conf (with `port 0`)
          force-tls off: CONFIG SET port <port>; put_archive of redis.conf
The redis.conf written by the raw side is the engine's own (domain.redis_config.redis_conf) for the
same settings. After one uncounted warm-up round, N rounds run; each round does aof on, aof off,
force-tls on, force-tls off, each as an engine/raw pair, the pair's order alternating by round.
Both nodes are SAVEd after the load so that no save rule fires during the measurements.

Also measured: what TLS costs a client, against the engine's node (plaintext open): a fresh
connection + AUTH + PING with redis-py, plaintext vs TLS verified with the CA, interleaved; and, to
see where that time goes, the same exchange over a bare socket with one SSLContext made once, and
the SSLContext redis-py makes for every TLS connection, alone.

Prints tables and writes every sample to bench/results/settings.json. Everything created is removed
in a `finally` (the addon through the engine, the raw container and volume directly), and both hosts
are checked to hold nothing of this run afterwards. Timing wrappers set on the engine's objects split
its steps into their effects; no engine code is changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import socket
import ssl
import sys
import time
from datetime import datetime, timezone

import aiodocker
import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

# common first: importing it puts the repository on sys.path for the packages below.
from common import (RESULTS_DIR, VALUE_BYTES, Ports, client_for, load_keys, machine, ms, node_container, node_files,
                    node_labels, p50, p95, poll_ping, ratio, remaining, remaining_text, remove_addon,
                    remove_leftovers, remove_node, run_bench, s2, step_timings, temp_settings, wait_succeeded)

import adapters.redis_admin as redis_admin
from adapters.docker.runtime import config_archive
from adapters.redis_admin import TrustingOnlyTheInstallation
from domain.settings import DEFAULT_SETTINGS
from domain.redis_config import container_memory_bytes, redis_conf, redis_url
from engine import build

PLAN = "redis-starter-1024"
RESULTS = RESULTS_DIR / "settings.json"
OP_TIMEOUT_S = 120.0
POLL_S = 0.01  # the raw side polls INFO persistence this often
RUN_BUDGET_S = 150.0  # no new round starts after this; cleanup gets the rest of the ~3 minutes
CHANGES = [("aof", True), ("aof", False), ("force-tls", True), ("force-tls", False)]
SETTING_KEY = {"aof": "aof", "force-tls": "force_tls"}


def ms1(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.2f}"


def label(setting: str, enabled: bool) -> str:
    return f"{setting} {'on' if enabled else 'off'}"


# -- clients ----------------------------------------------------------------------------------------


def tls_kwargs(ca_file: str) -> dict:
    """What the engine's RedisAdmin uses: the node's certificate verified, host name included."""
    return dict(ssl=True, ssl_ca_certs=ca_file, ssl_cert_reqs="required", ssl_check_hostname=True)


SHARED_CONTEXTS: dict[str, ssl.SSLContext] = {}


def admin_client(address: str, port: int, password: str, ca_file: str | None, timeout: float = 600) -> aioredis.Redis:
    """As the engine's RedisAdmin connects: one SSLContext per CA file, trusting that file only."""
    options = dict(host=address, port=port, username="default", password=password, socket_connect_timeout=2,
                   socket_timeout=timeout, retry=Retry(NoBackoff(), 0))
    if ca_file:
        if ca_file not in SHARED_CONTEXTS:
            SHARED_CONTEXTS[ca_file] = ssl.create_default_context(cafile=ca_file)
        options.update(connection_class=TrustingOnlyTheInstallation, tls_context=SHARED_CONTEXTS[ca_file])
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool(**options))


async def plaintext_answers(address: str, port: int, password: str) -> bool:
    client = admin_client(address, port, password, None, timeout=2)
    try:
        return bool(await client.ping())
    except (redis.exceptions.ConnectionError, OSError):
        return False
    finally:
        await client.aclose()


async def settle(url: str) -> None:
    """SAVE once: the save rules (60 s / 10,000 changes) would otherwise fire a BGSAVE mid-measurement."""
    client = client_for(url, timeout=120)
    try:
        await client.save()
    finally:
        await client.aclose()


# -- the raw side -----------------------------------------------------------------------------------


class RawNode:
    """One node made by hand as the engine makes one (see engine/nodes.py and the Docker runtime)."""

    def __init__(self, settings, engine, image: str, run_id: str, host: str, ca_file: str):
        self.h = next(h for h in settings.hosts if h.name == host)
        self.engine, self.image, self.run_id, self.ca_file = engine, image, run_id, ca_file
        self.memory_mib = engine.plans.provisionable(PLAN).memory_mib
        self.docker = aiodocker.Docker(url=self.h.docker_url)
        self.name = f"redis-addons-bench-raw-{run_id}-001"
        self.volume = f"{self.name}-data"
        self.password = secrets.token_urlsafe(48)
        self.settings = dict(DEFAULT_SETTINGS)
        self.container = None
        self.created = False

    def conf(self, settings: dict) -> str:
        return redis_conf(address=self.h.address, port=self.port, tls_port=self.tls_port, memory_mib=self.memory_mib,
                          password=self.password, settings=settings)

    async def create(self) -> None:
        ports = Ports(self.engine.settings.hosts)
        self.port, self.tls_port = ports.take(self.h.name), ports.take(self.h.name)
        labels = node_labels(self.name, f"bench-raw-{self.run_id}", self.h.name, self.port, self.tls_port, self.run_id)
        memory = container_memory_bytes(self.memory_mib)
        self.created = True
        await self.docker.volumes.create({"Name": self.volume, "Labels": labels})
        self.container = await self.docker.containers.create(node_container(self.image, labels, memory, self.volume),
                                                             name=self.name)
        certificate, key = self.engine.certificates.issue_server_certificate(self.h.address, (self.name,))
        files = node_files(self.conf(self.settings), certificate, key, self.engine.certificates.certificate_pem)
        await self.container.put_archive("/etc/redis", config_archive(files))
        await self.container.start()
        await poll_ping(lambda: admin_client(self.h.address, self.tls_port, self.password, self.ca_file, timeout=2),
                        time.monotonic() + 60)

    @property
    def url(self) -> str:
        return redis_url(password=self.password, address=self.h.address, port=self.port)

    async def change(self, setting: str, enabled: bool) -> dict:
        """The raw floor of one change: one TLS connection, the Redis commands, the file."""
        target = dict(self.settings, **{SETTING_KEY[setting]: enabled})
        archive = config_archive({"redis.conf": self.conf(target)})  # built before the clock, as a tar in memory
        t0 = time.perf_counter()
        client = admin_client(self.h.address, self.tls_port, self.password, self.ca_file)
        polls = 0
        try:
            if setting == "aof":
                await client.config_set("appendonly", "yes" if enabled else "no")
                t_set = time.perf_counter()
                if not enabled:
                    await client.bgsave()
                while True:
                    polls += 1
                    info = await client.info("persistence")
                    if enabled and not int(info["aof_rewrite_in_progress"]) and not int(info["aof_rewrite_scheduled"]):
                        break
                    if not enabled and not int(info["rdb_bgsave_in_progress"]):
                        break
                    await asyncio.sleep(POLL_S)
                status = info["aof_last_bgrewrite_status"] if enabled else info["rdb_last_bgsave_status"]
            else:
                await client.config_set("port", str(0 if enabled else self.port))
                t_set = time.perf_counter()
                status = "ok"
            t_redis = time.perf_counter()
        finally:
            await client.aclose()
        t_closed = time.perf_counter()
        await self.container.put_archive("/etc/redis", archive)
        t1 = time.perf_counter()
        if status != "ok":
            raise RuntimeError(f"raw {label(setting, enabled)}: status {status}")
        self.settings = target
        return dict(latency_s=t1 - t0, polls=polls,
                    phases_s={"connect + CONFIG SET": t_set - t0, "wait (rewrite / BGSAVE)": t_redis - t_set,
                              "close": t_closed - t_redis, "put_archive redis.conf": t1 - t_closed})

    async def remove(self) -> None:
        if self.created:
            await remove_node(self.docker, self.name, self.volume)

    async def close(self) -> None:
        await self.docker.close()


# -- instrumentation: timing wrappers on the engine's own objects (no engine code changes) -------


class Probe:
    """Every call of the effects the settings sagas make, as (name, wall start, duration)."""

    def __init__(self, engine):
        self.calls: list[tuple[str, float, float]] = []
        self._restore: list[tuple[object, str, object]] = []
        for name in ("configure", "configuration", "disconnect_plaintext_clients"):
            self._wrap(engine.redis, name, f"redis.{name}")
        self._wrap(engine.runtime, "create_node", "docker.create_node (redis.conf)")
        self._wrap(engine.follower, "wait_until", "follower.wait_until")
        self._wrap(redis_admin, "_wait_for_background_save", "redis: poll INFO until no child")
        restarters = {id(s.restarter): s.restarter for s in engine.coordinator._sagas.values() if hasattr(s, "restarter")}
        for restarter in restarters.values():  # one object, shared by the sagas that restart apps
            self._wrap(restarter, "restart", "restarter.restart")
        self._wrap_store(engine.events)

    def _wrap(self, obj, attr: str, name: str) -> None:
        original = getattr(obj, attr)
        self._restore.append((obj, attr, original))

        async def timed(*args, **kwargs):
            w0, t0 = time.time(), time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.calls.append((name, w0, time.perf_counter() - t0))

        setattr(obj, attr, timed)

    def _wrap_store(self, events) -> None:
        original = events._run
        self._restore.append((events, "_run", original))

        async def timed(fn, *args):
            w0, t0 = time.time(), time.perf_counter()
            try:
                return await original(fn, *args)
            finally:
                self.calls.append((f"store.{getattr(fn, '__name__', 'call')}", w0, time.perf_counter() - t0))

        events._run = timed

    def between(self, a: float, b: float) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name, w0, d in self.calls:
            if a <= w0 <= b:
                row = out.setdefault(name, dict(n=0, total_s=0.0))
                row["n"] += 1
                row["total_s"] += d
        return out

    def restore(self) -> None:
        for obj, attr, original in reversed(self._restore):
            if obj is redis_admin or attr == "_run":
                setattr(obj, attr, original)
            else:
                try:
                    delattr(obj, attr)  # the instance attribute goes; the class's method shows again
                except AttributeError:
                    setattr(obj, attr, original)


async def engine_change(engine, probe: Probe, app: str, addon: str, setting: str, enabled: bool) -> dict:
    wall_t0, t0 = time.time(), time.perf_counter()
    requested = await engine.database.change(app, addon, setting, enabled)
    t_requested = time.perf_counter()
    op = await engine.wait_for_operation(requested["operation_id"], timeout=OP_TIMEOUT_S)
    t1, wall_t1 = time.perf_counter(), time.time()
    if op["status"] != "succeeded":
        raise RuntimeError(f"engine {label(setting, enabled)} on {addon} ended {op['status']}: {op['error']}")
    steps = await step_timings(engine, addon, requested["operation_id"])
    return dict(latency_s=t1 - t0, change_call_s=t_requested - t0, wall_t0=wall_t0, wall_t1=wall_t1,
                operation_id=requested["operation_id"], steps=steps, effects=probe.between(wall_t0, wall_t1),
                call_to_started_s=None if not steps else steps["started_ts"] - wall_t0,
                finished_to_return_s=None if not steps or not steps["finished_ts"] else wall_t1 - steps["finished_ts"])


async def check_state(setting: str, enabled: bool, address: str, port: int, tls_port: int, password: str,
                      ca_file: str) -> dict:
    """Outside the clock: the server runs with the setting (and, forced, refuses plaintext)."""
    client = admin_client(address, tls_port, password, ca_file, timeout=5)
    try:
        if setting == "aof":
            value = (await client.config_get("appendonly"))["appendonly"]
            ok = value == ("yes" if enabled else "no")
        else:
            value = (await client.config_get("port"))["port"]
            ok = value == ("0" if enabled else str(port))
            if ok:
                ok = (await plaintext_answers(address, port, password)) is (not enabled)
    finally:
        await client.aclose()
    return dict(ok=ok, value=value)


# -- what TLS costs a client --------------------------------------------------------------------------


def connection_cost(address: str, port: int, tls_port: int, password: str, ca_file: str, n: int) -> dict:
    """A fresh connection + AUTH + PING with redis-py (synchronous, as most apps use it), plaintext vs TLS,
    interleaved. To see where the TLS time goes, also: the same exchange over a bare socket (stdlib
    `ssl`, one SSLContext made once and shared, verified with the CA, host name included), and what
    redis-py does before every TLS connection: ssl.create_default_context() (which loads the system's
    CA bundle) + load_verify_locations(ca.pem)."""
    shared = ssl.create_default_context()  # made as redis-py makes it (system CAs, then ca.pem), but once
    shared.load_verify_locations(cafile=ca_file)
    hello = (f"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n${len(password)}\r\n{password}\r\n"
             "*1\r\n$4\r\nPING\r\n").encode()

    def redis_py(tls: bool) -> float:
        extra = tls_kwargs(ca_file) if tls else {}
        t0 = time.perf_counter()
        client = redis.Redis(host=address, port=tls_port if tls else port, username="default", password=password,
                             socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0), **extra)
        try:
            if not client.ping():
                raise RuntimeError("no PONG")
        finally:
            client.close()
        return time.perf_counter() - t0

    def bare(tls: bool) -> float:
        t0 = time.perf_counter()
        sock = socket.create_connection((address, tls_port if tls else port), timeout=5)
        try:
            if tls:
                sock = shared.wrap_socket(sock, server_hostname=address)
            sock.sendall(hello)
            got = b""
            while not got.endswith(b"+PONG\r\n"):
                chunk = sock.recv(256)
                if not chunk or chunk.startswith(b"-"):
                    raise RuntimeError(f"unexpected answer {got + chunk!r}")
                got += chunk
        finally:
            sock.close()
        return time.perf_counter() - t0

    def context_only(_: bool) -> float:
        t0 = time.perf_counter()
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=ca_file)
        return time.perf_counter() - t0

    kinds = {"redis-py plaintext": (redis_py, False), "redis-py TLS": (redis_py, True),
             "bare socket plaintext": (bare, False), "bare socket TLS, shared SSLContext": (bare, True),
             "ssl.create_default_context() + CA file": (context_only, True)}
    samples = {k: [] for k in kinds}
    for fn, tls in kinds.values():  # warm-up: imports, first handshakes
        fn(tls)
    names = list(kinds)
    for i in range(n):
        for k in (names if i % 2 == 0 else names[::-1]):
            fn, tls = kinds[k]
            samples[k].append(fn(tls))
    return samples


# -- the run --------------------------------------------------------------------------------------


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    home, settings = temp_settings()
    ca_file = str(settings.tls_dir / "ca.pem")
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    app = f"bench-set-{run_id}"
    samples: dict[str, dict[str, list]] = {label(s, e): {"engine": [], "raw": []} for s, e in CHANGES}
    warmup: dict[str, dict] = {}
    checks: list[dict] = []
    orders: list[list[str]] = []
    cleanup: dict = {}
    error = None
    raw = None
    probe = None
    image = None
    nodes = {}
    data = {}
    tls_cost = {}
    addon = None
    try:
        async with build(settings) as engine:
            image = engine.versions.default.image
            try:
                # The engine's addon, then a raw node of the same kind on the same host.
                requested = await engine.add_addon(app, PLAN)
                addon = requested["addon"]
                await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
                row = await engine.addon(app, addon)
                password = engine.secrets.password_for(addon)
                nodes["engine"] = dict(host=row["host"], address=row["address"], port=row["port"], tls_port=row["tls_port"],
                                       container=row.get("container"))
                if not row["tls_port"]:
                    raise RuntimeError(f"{addon} serves no TLS port (image {image}): nothing to force")
                raw = RawNode(settings, engine, image, run_id, row["host"], ca_file)
                await raw.create()
                nodes["raw"] = dict(host=raw.h.name, address=raw.h.address, port=raw.port, tls_port=raw.tls_port,
                                    container=raw.name)
                engine_url = (await engine.environment(app))["REDIS_URL"]
                data["engine"], data["raw"] = await asyncio.gather(load_keys(engine_url, args.keys),
                                                                   load_keys(raw.url, args.keys))
                await asyncio.gather(settle(engine_url), settle(raw.url))
                probe = Probe(engine)
                print(f"  loaded {args.keys} keys on both nodes ({data['engine']['used_memory'] / 2**20:.0f} MiB used); "
                      f"{time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)

                for i in range(args.n + 1):  # round 0: warm-up, not counted
                    order = ["engine", "raw"] if i % 2 == 0 else ["raw", "engine"]
                    orders.append(order)
                    for setting, enabled in CHANGES:
                        name = label(setting, enabled)
                        for case in order:
                            if case == "engine":
                                sample = await asyncio.wait_for(engine_change(engine, probe, app, addon, setting, enabled),
                                                                OP_TIMEOUT_S)
                                where = nodes["engine"] | {"password": password}
                            else:
                                sample = await asyncio.wait_for(raw.change(setting, enabled), OP_TIMEOUT_S)
                                where = nodes["raw"] | {"password": raw.password}
                            checked = await check_state(setting, enabled, where["address"], where["port"], where["tls_port"],
                                                        where["password"], ca_file)
                            checks.append(dict(round=i, case=case, change=name, **checked))
                            sample["round"] = i
                            if i == 0:
                                warmup[f"{case} {name}"] = sample
                            else:
                                samples[name][case].append(sample)
                    print(f"  round {i}{' (warm-up)' if i == 0 else ''} done, {time.monotonic() - began:.0f} s",
                          file=sys.stderr, flush=True)
                    if time.monotonic() - began > RUN_BUDGET_S and i < args.n:
                        error = f"run budget of {RUN_BUDGET_S:.0f} s spent after round {i}: stopped there"
                        break

                # What TLS costs a client: against the engine's node, plaintext open (force-tls is off again).
                e = nodes["engine"]
                tls_cost = await asyncio.to_thread(connection_cost, e["address"], e["port"], e["tls_port"], password,
                                                   ca_file, args.connections)
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                if probe is not None:
                    probe.restore()
                problem = await remove_addon(engine, app, addon, 90) if addon is not None else None
                errors = [problem] if problem else []
                cleanup["engine"] = {"removed": addon if not errors else None, "errors": errors}
    finally:
        if raw is not None:
            try:
                await raw.remove()
                cleanup["raw"] = {"removed": raw.name}
            except Exception as e:  # noqa: BLE001
                cleanup["raw"] = {"errors": [f"{type(e).__name__}: {e}"]}
            finally:
                await raw.close()
        cleanup["leftovers_removed"] = (await remove_leftovers(settings, app)
                                        + await remove_leftovers(settings, f"bench-raw-{run_id}"))
        cleanup["remaining"] = await remaining(settings, run_id)
        shutil.rmtree(home, ignore_errors=True)
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)

    return dict(run_id=run_id, started_at=started_at, duration_s=time.monotonic() - began, plan=PLAN, image=image,
                keys=args.keys, value_bytes=VALUE_BYTES, n=args.n, nodes=nodes, data=data, orders=orders,
                samples=samples, warmup=warmup, checks=checks, tls_cost_samples=tls_cost, stopped=error, cleanup=cleanup,
                machine=machine(redis_py=redis.__version__))


ENGINE_STEPS = {"aof": ["apply", "verify", "publish"], "force-tls": ["apply", "verify", "publish", "restart_app"]}


def summarise(result: dict) -> dict:
    rows, engine_detail, raw_detail = [], {}, {}
    for name, cases in result["samples"].items():
        setting = name.rsplit(" ", 1)[0]
        lat = {c: [s["latency_s"] for s in xs] for c, xs in cases.items()}
        for c in ("engine", "raw"):
            rows.append(dict(case=f"{name} {c}", n=len(lat[c]), p50_s=p50(lat[c]), p95_s=p95(lat[c]),
                             engine_raw_p50_ratio=ratio(p50(lat["engine"]), p50(lat["raw"])) if c == "engine" else None))
        es = cases["engine"]
        steps = {}
        # In the saga's own order (taken from the operation: it may differ by direction).
        for step in (list(es[0]["steps"]["steps"]) if es and es[0]["steps"] else ENGINE_STEPS[setting]):
            steps[step] = dict(p50_s=p50([s["steps"]["steps"][step]["duration_s"] for s in es if s["steps"]]),
                               gap_before_p50_s=p50([s["steps"]["steps"][step]["gap_before_s"] for s in es if s["steps"]]))
        effects: dict[str, dict] = {}
        for s in es:
            for k, v in s["effects"].items():
                effects.setdefault(k, dict(n=[], total_s=[]))
                effects[k]["n"].append(v["n"])
                effects[k]["total_s"].append(v["total_s"])
        engine_detail[name] = dict(
            steps=steps,
            change_call_p50_s=p50([s["change_call_s"] for s in es]),
            call_to_started_p50_s=p50([s["call_to_started_s"] for s in es]),
            after_last_step_p50_s=p50([s["steps"]["after_last_step_s"] for s in es if s["steps"]]),
            finished_to_return_p50_s=p50([s["finished_to_return_s"] for s in es]),
            effects={k: dict(n=max(v["n"]), total_p50_s=p50(v["total_s"])) for k, v in sorted(effects.items())},
        )
        rs = cases["raw"]
        raw_detail[name] = {k: p50([s["phases_s"][k] for s in rs]) for k in (rs[0]["phases_s"] if rs else {})}
    tc = result["tls_cost_samples"] or {}
    tls_rows = [dict(case=k, n=len(v), p50_s=p50(v), p95_s=p95(v)) for k, v in tc.items()]
    tls_ratio = ratio(p50(tc.get("redis-py TLS", [])), p50(tc.get("redis-py plaintext", [])))
    bare_ratio = ratio(p50(tc.get("bare socket TLS, shared SSLContext", [])), p50(tc.get("bare socket plaintext", [])))
    bad = [c for c in result["checks"] if not c["ok"]]
    return dict(table=rows, engine_detail=engine_detail, raw_phases_p50=raw_detail, tls_cost=tls_rows,
                tls_over_plaintext_p50=tls_ratio, bare_tls_over_plaintext_p50=bare_ratio, failed_checks=bad)


def print_report(result: dict, summary: dict) -> None:
    d = result["data"].get("engine") or {}
    print(f"\nsettings benchmark  run {result['run_id']}  {result['started_at']}  plan {result['plan']}  image {result['image']}  "
          f"({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
    if d:
        print(f"data on each node: {result['keys']} keys x {result['value_bytes']} B random in 5 databases "
              f"(used_memory {d['used_memory'] / 2**20:.0f} MiB); both nodes on {result['nodes']['engine']['host']}")
    print(f"one warm-up round, then {result['n']}; pair order per round {result['orders']}"
          + (f"; STOPPED: {result['stopped']}" if result["stopped"] else "") + "\n")
    header = f"{'case':<20} | {'n':>2} | {'p50 ms':>7} | {'p95 ms':>7} | {'engine/raw p50':>14}"
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        print(f"{r['case']:<20} | {r['n']:>2} | {ms(r['p50_s']):>7} | {ms(r['p95_s']):>7} | {s2(r['engine_raw_p50_ratio']):>14}")

    print()
    header = f"{'fresh connection + AUTH + PING':<40} | {'n':>3} | {'p50 ms':>7} | {'p95 ms':>7}"
    print(header)
    print("-" * len(header))
    for r in summary["tls_cost"]:
        print(f"{r['case']:<40} | {r['n']:>3} | {ms1(r['p50_s']):>7} | {ms1(r['p95_s']):>7}")
    print(f"TLS / plaintext p50: redis-py {s2(summary['tls_over_plaintext_p50'])}; "
          f"bare socket with a shared SSLContext {s2(summary['bare_tls_over_plaintext_p50'])} "
          "(the last row is not a connection: it is what redis-py spends before each TLS one)")

    print("\nengine, p50 ms: steps (gap = from the previous step's end) and around them")
    for name, e in summary["engine_detail"].items():
        steps = "; ".join(f"{k} {ms(v['p50_s'])} (gap {ms(v['gap_before_p50_s'])})" for k, v in e["steps"].items())
        print(f"  {name:<13} call -> recorded {ms(e['call_to_started_p50_s'])}; {steps}; last step -> finished "
              f"{ms(e['after_last_step_p50_s'])}; finished -> wait returns {ms(e['finished_to_return_p50_s'])} "
              f"(change() call {ms(e['change_call_p50_s'])})")
    print("engine effects inside the operation, p50 of the per-change total ms (calls)")
    for name, e in summary["engine_detail"].items():
        print(f"  {name:<13} " + "; ".join(f"{k} {ms(v['total_p50_s'])} ({v['n']})" for k, v in e["effects"].items()))
    print("raw phases, p50 ms")
    for name, phases in summary["raw_phases_p50"].items():
        print(f"  {name:<13} " + "; ".join(f"{k} {ms(v)}" for k, v in phases.items()))
    bad = summary["failed_checks"]
    print(f"\nchecks after every change (CONFIG GET; forced TLS refuses plaintext, off serves it): "
          f"{'all passed' if not bad else f'FAILED: {bad}'} ({len(result['checks'])})")
    print(f"cleanup: engine {result['cleanup'].get('engine')}, raw {result['cleanup'].get('raw')}; "
          f"{remaining_text(result['cleanup']['remaining'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5, help="counted rounds (after one warm-up round)")
    parser.add_argument("--keys", type=int, default=100_000, help=f"keys of {VALUE_BYTES} B loaded on each node")
    parser.add_argument("--connections", type=int, default=200, help="fresh connections per kind for the TLS cost")
    run_bench(parser, bench, summarise, print_report, RESULTS)


if __name__ == "__main__":
    main()
