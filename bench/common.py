"""What the benchmarks in bench/ share (provision.py, plan_change.py, backup.py, settings.py).

Each bench runs as a script (`python bench/x.py`, so bench/ is sys.path[0]) and imports from here
first: importing this module puts the repository on sys.path for the engine's own packages.

  setup        REPO, HOSTS_FILE, RESULTS_DIR; temp_settings (a temporary home and the engine's
               Settings on the hosts of var/hosts.json, refusing any host off loopback 127.x);
               machine; run_bench (a bench's main: --log-level, run, summarise, JSON, report)
  statistics   p50, p95 (nearest rank), ratio; ms, s2 (formatting, "-" for None); parse_ts;
               WRITER_HEADER, writer_cells, print_targets (plan_change.py's tables)
  engine       operation_timings / step_timings (per saga step: duration_s, gap_before_s, ...);
               wait_succeeded; remove_addon (through the engine, waited for)
  raw nodes    what the benches' hand-made nodes share with the engine's: Ports, node_labels,
               node_container, node_files, poll_ping / wait_for_ping, remove_node, remove_labelled
  inside       a Business cluster's data nodes and Sentinels serve TLS only: ca_file (the
               installation's CA, as the engine verifies with it), node_endpoint, over_tls
               (redis-py's arguments), cli_tls (redis-cli's / redis-benchmark's)
  data         VALUE_BYTES, DATABASES, client_for, key_ranges, load_keys (random values spread
               over the databases: the data of the plan change and settings benches)
  host checks  remove_leftovers (by app label), remaining (what the hosts still hold of a run) and
               remaining_text (it in a line)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiodocker  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from aiodocker.exceptions import DockerError  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from domain.redis_config import TLS_DIR, TLS_FILES  # noqa: E402
from adapters.tls.certificates import CA_CERT_FILE  # noqa: E402
from engine import Settings  # noqa: E402
from engine.logs import configure_logging  # noqa: E402

HOSTS_FILE = REPO / "var" / "hosts.json"
RESULTS_DIR = REPO / "bench" / "results"
PING_EVERY_S = 0.01  # wait_for_ping polls this often: the raw cases measure when Redis is really ready
VALUE_BYTES = 1024  # load_keys: bytes per value
DATABASES = 5  # the engine's nodes have 5; load_keys spreads the keys over all of them
LOAD_BATCH = 1000  # load_keys: SETs per pipeline


# -- setup ------------------------------------------------------------------------------------------


def temp_settings(prefix: str = "redis-addons-bench-", env: dict[str, str] | None = None) -> tuple[Path, Settings]:
    """A temporary home (the caller removes it) and the engine's Settings on it, for the hosts of
    var/hosts.json; refuses hosts that bind outside loopback 127.x."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        settings = Settings.from_env({"REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE), **(env or {})})
        for h in settings.hosts:
            if not h.address.startswith("127."):
                raise SystemExit(f"host {h.name} binds {h.address}: this benchmark stays on loopback 127.x")
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return home, settings


def run_bench(parser: argparse.ArgumentParser, bench, summarise, print_report, results: Path, stored=None) -> None:
    """A bench's main: --log-level added to its parser, the engine's logging set, bench(args) run,
    summarise(result), every sample and the summary written to `results` as JSON (stored(result)
    in place of result when given), then print_report(result, summary) and where the JSON went."""
    parser.add_argument("--log-level", default="WARNING", help="engine log level (its logs go to stderr)")
    args = parser.parse_args()
    configure_logging(level=args.log_level)
    result = asyncio.run(bench(args))
    summary = summarise(result)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(dict(stored(result) if stored else result, summary=summary), indent=1, default=str))
    print_report(result, summary)
    print(f"\nsamples and summary: {results.relative_to(REPO)}")


def machine(**extra) -> dict:
    return dict(python=platform.python_version(), cpus=os.cpu_count(), **extra)


# -- statistics ------------------------------------------------------------------------------------


def p50(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def p95(xs) -> float | None:
    """Nearest rank: with fewer than 20 samples this is the slowest one."""
    xs = sorted(x for x in xs if x is not None)
    return xs[max(0, math.ceil(0.95 * len(xs)) - 1)] if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}"


def s2(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def parse_ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


# What a writer under an operation saw, as plan_change.py's tables show it (the Starter and Business cases).
WRITER_HEADER = (f"{'longest write gap s':>19} | {'longest write latency s':>23} | {'longest no-ack s':>16} | "
                 f"{'acked writes lost':>17} | {'writes/s':>8}")


def writer_cells(r: dict) -> str:
    """A table row's writer columns (WRITER_HEADER) from its longest_gap_s, max_latency_s, max_noack_s, lost, writes_per_s."""
    return (f"{s2(r['longest_gap_s']):>19} | {s2(r['max_latency_s']):>23} | {s2(r['max_noack_s']):>16} | {r['lost']:>17} | "
            f"{'-' if r['writes_per_s'] is None else format(r['writes_per_s'], '.0f'):>8}")


def print_targets(targets: dict, heading: str = "targets") -> None:
    """PASS/MISS, each target's name and value."""
    print(f"\n{heading}")
    for name, t in targets.items():
        value = s2(t["value"]) if isinstance(t["value"], float) else t["value"]
        print(f"  {'PASS' if t['passed'] else 'MISS'}  {name}: {value}")


# -- the engine's operations ---------------------------------------------------------------------------


def operation_timings(op: dict) -> dict:
    """One operation as the engine records it, in times: per saga step its duration and the gap
    since the previous step's end (the operation's start for the first); then the time from the
    last step's end to the operation's end."""
    started, finished = parse_ts(op["started_at"]), parse_ts(op.get("finished_at"))
    steps, previous_end = {}, started
    for s in op["steps"]:
        a, b = parse_ts(s["started_at"]), parse_ts(s["ended_at"])
        steps[s["name"]] = dict(duration_s=None if a is None or b is None else b - a,
                                gap_before_s=None if a is None or previous_end is None else a - previous_end,
                                started_ts=a, ended_ts=b, attempts=s["attempts"], detail=s["detail"])
        previous_end = b
    return dict(status=op["status"], started_ts=started, finished_ts=finished, steps=steps,
                after_last_step_s=None if finished is None or previous_end is None else finished - previous_end)


async def step_timings(engine, addon: str, operation_id: str) -> dict:
    """operation_timings of one operation of `addon` ({} when the engine has no such operation)."""
    for op in await engine.operations(addon):
        if op["id"] == operation_id:
            return operation_timings(op)
    return {}


async def wait_succeeded(engine, operation_id: str, what: str, timeout: float) -> dict:
    """engine.wait_for_operation, raising unless the operation succeeded (`what` names it in the error)."""
    op = await engine.wait_for_operation(operation_id, timeout=timeout)
    if op["status"] != "succeeded":
        raise RuntimeError(f"{what} ended {op['status']}: {op.get('error')}")
    return op


async def remove_addon(engine, app: str, name: str, timeout: float) -> str | None:
    """Remove an addon through the engine and wait for it: None when that succeeded, else what went wrong."""
    try:
        requested = await engine.remove_addon(app, name)
        op = await engine.wait_for_operation(requested["operation_id"], timeout=timeout)
    except Exception as e:  # noqa: BLE001 - e.g. already removed; reported by the caller
        return f"{name}: {type(e).__name__}: {e}"
    return None if op["status"] == "succeeded" else f"{name}: removal {op['status']}: {op['error']}"


# -- raw nodes: made by hand as the engine makes its own (engine/nodes.py, the Docker runtime) ---------


class Ports:
    """Ports for the raw containers (plaintext and TLS alike), from the top of each host's range down
    (the engine takes the lowest free ones), skipping any that something on the host already listens on."""

    def __init__(self, hosts):
        self._next = {h.name: h.last_port for h in hosts}
        self._hosts = {h.name: h for h in hosts}

    def take(self, host: str) -> int:
        h = self._hosts[host]
        while self._next[host] >= h.first_port:
            port = self._next[host]
            self._next[host] -= 1
            with socket.socket() as s:
                try:
                    s.bind((h.address, port))
                except OSError:
                    continue
            return port
        raise RuntimeError(f"no free port left on {host} for the raw containers")


def node_labels(name: str, app: str, host: str, port: int, tls_port: int | None, run_id: str) -> dict[str, str]:
    """The engine's labels (addon, app, host, port, tls-port: an engine sharing the hosts treats the
    ports as taken) and the run's (redis-addons.bench, for the sweep)."""
    labels = {"redis-addons.addon": name, "redis-addons.app": app, "redis-addons.host": host,
              "redis-addons.port": str(port)}
    if tls_port:
        labels["redis-addons.tls-port"] = str(tls_port)
    labels["redis-addons.bench"] = run_id
    return labels


def node_container(image: str, labels: dict, memory_bytes: int, volume: str) -> dict:
    """The body of containers.create for a node: host network, the memory limit with no swap, the
    data volume on /data, unless-stopped, redis-server on /etc/redis/redis.conf (put in afterwards)."""
    return {
        "Image": image,
        "Cmd": ["/usr/local/bin/redis-server", "/etc/redis/redis.conf"],
        "Labels": labels,
        "StopTimeout": 30,
        "HostConfig": {
            "NetworkMode": "host",
            "Memory": memory_bytes,
            "MemorySwap": memory_bytes,
            "Mounts": [{"Type": "volume", "Source": volume, "Target": "/data"}],
            "RestartPolicy": {"Name": "unless-stopped"},
        },
    }


def node_files(conf: str, certificate: str, key: str, ca_pem: str) -> dict[str, str]:
    """What the engine puts into /etc/redis: redis.conf, and under tls/ the server certificate, its key and the CA."""
    tls = TLS_DIR.removeprefix("/etc/redis/")
    return {"redis.conf": conf, f"{tls}/{TLS_FILES['cert']}": certificate, f"{tls}/{TLS_FILES['key']}": key,
            f"{tls}/{TLS_FILES['ca']}": ca_pem}


async def poll_ping(connect, deadline: float) -> int:
    """PING with a fresh client from connect() each time (as the engine polls a new node) until one
    answers, every PING_EVERY_S; the attempts made. The last error is raised once past `deadline`."""
    attempts = 0
    while True:
        attempts += 1
        client = connect()
        try:
            if await client.ping():
                return attempts
        except Exception:
            if time.monotonic() > deadline:
                raise
        finally:
            await client.aclose()
        await asyncio.sleep(PING_EVERY_S)


async def wait_for_ping(address: str, port: int, password: str, deadline: float, client_retries: bool = False) -> int:
    """poll_ping over plaintext. Each PING is tried once unless client_retries: then with redis-py's
    default retries, whose backoff runs inside an attempt (provision.py's raw cases have always polled so)."""
    retry = {} if client_retries else {"retry": Retry(NoBackoff(), 0)}
    return await poll_ping(lambda: aioredis.Redis(host=address, port=port, username="default", password=password,
                                                  socket_connect_timeout=1, socket_timeout=2, **retry), deadline)


async def remove_node(docker: aiodocker.Docker, name: str, volume: str) -> None:
    """A container and its volume, each gone already or removed now."""
    try:
        await (await docker.containers.get(name)).delete(force=True, v=True)
    except DockerError as e:
        if e.status != 404:
            raise
    try:
        await (await docker.volumes.get(volume)).delete()
    except DockerError as e:
        if e.status != 404:
            raise


async def remove_labelled(docker: aiodocker.Docker, label: str) -> int:
    """Every container and volume on one host with `label` ("key=value"); how many were removed."""
    removed = 0
    for c in await docker.containers.list(all=True, filters={"label": [label]}):
        await c.delete(force=True, v=True)
        removed += 1
    for v in (await docker.volumes.list(filters={"label": [label]})).get("Volumes") or []:
        await (await docker.volumes.get(v["Name"])).delete()
        removed += 1
    return removed


# -- inside a cluster: TLS verified with the installation's CA ----------------------------------------


def ca_file(engine) -> Path:
    """The installation's CA certificate, the file the engine itself verifies its nodes with."""
    return engine.settings.tls_dir / CA_CERT_FILE


def node_endpoint(node: dict) -> tuple[str, int]:
    """Where a data node or Sentinel is reached: its TLS port when it serves TLS (a Business cluster
    since TLS came inside serves nothing else), its plaintext port only on a build without TLS."""
    return node["address"], node.get("tls_port") or node["port"]


def over_tls(node: dict, ca: Path) -> dict:
    """redis-py's arguments for node_endpoint(node): TLS, the certificate verified with the CA and
    for the node's address (as the engine verifies it), when the node serves TLS."""
    return dict(ssl=True, ssl_ca_certs=str(ca), ssl_check_hostname=True) if node.get("tls_port") else {}


def cli_tls(node: dict, ca: Path) -> list[str]:
    """The same for redis-cli and redis-benchmark (hiredis verifies the chain against --cacert)."""
    return ["--tls", "--cacert", str(ca)] if node.get("tls_port") else []


# -- data ----------------------------------------------------------------------------------------------


def client_for(url: str, db: int = 0, timeout: float = 60, **tls) -> aioredis.Redis:
    """A client of `url`; `tls`: over_tls's arguments for a rediss:// URL of a node (the scheme
    itself says ssl: redis-py refuses the argument beside it)."""
    tls.pop("ssl", None)
    return aioredis.Redis.from_url(url, db=db, socket_connect_timeout=2, socket_timeout=timeout, retry=Retry(NoBackoff(), 0),
                                   **tls)


def key_ranges(keys: int) -> dict[int, range]:
    """The key numbers load_keys puts in each database."""
    per_db = -(-keys // DATABASES)
    return {db: range(db * per_db, min(keys, (db + 1) * per_db)) for db in range(DATABASES)}


async def load_keys(url: str, keys: int) -> dict:
    """`keys` keys d:<n> of VALUE_BYTES random bytes (incompressible: the RDB is as large as the data),
    spread over the DATABASES, in pipelines."""
    t0 = time.perf_counter()

    async def one(db: int, numbers: range) -> None:
        client = client_for(url, db)
        try:
            for start in range(numbers.start, numbers.stop, LOAD_BATCH):
                async with client.pipeline(transaction=False) as pipe:
                    for i in range(start, min(numbers.stop, start + LOAD_BATCH)):
                        pipe.set(f"d:{i}", os.urandom(VALUE_BYTES))
                    await pipe.execute()
        finally:
            await client.aclose()

    await asyncio.gather(*(one(db, r) for db, r in key_ranges(keys).items()))
    client = client_for(url)
    try:
        used = int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()
    return dict(keys=keys, value_bytes=VALUE_BYTES, data_bytes=keys * VALUE_BYTES, used_memory=used,
                load_s=time.perf_counter() - t0)


# -- host checks ---------------------------------------------------------------------------------------


async def remove_leftovers(settings, app: str) -> int:
    """Whatever the engine did not remove of `app` (a failure, a timeout): by label, straight through Docker."""
    removed = 0
    for h in settings.hosts:
        docker = aiodocker.Docker(url=h.docker_url)
        try:
            removed += await remove_labelled(docker, f"redis-addons.app={app}")
        finally:
            await docker.close()
    return removed


async def remaining(settings, run_id: str) -> dict[str, dict]:
    """What the hosts still hold of this run (must be nothing): containers and volumes whose name or
    redis-addons.app label holds the run id; and how many the hosts hold at all."""

    def ours(name: str, labels: dict | None) -> bool:
        return run_id in name or run_id in (labels or {}).get("redis-addons.app", "")

    out = {}
    for h in settings.hosts:
        docker = aiodocker.Docker(url=h.docker_url)
        try:
            containers = [c._container for c in await docker.containers.list(all=True)]
            volumes = (await docker.volumes.list()).get("Volumes") or []
            out[h.name] = {"containers": [c["Names"][0].lstrip("/") for c in containers if ours(c["Names"][0], c.get("Labels"))],
                           "volumes": [v["Name"] for v in volumes if ours(v["Name"], v.get("Labels"))],
                           "containers_total": len(containers), "volumes_total": len(volumes)}
        finally:
            await docker.close()
    return out


def remaining_text(rem: dict[str, dict]) -> str:
    """remaining() in a line: nothing of this run left (or what is), and what the hosts hold."""
    left = sum(len(x["containers"]) + len(x["volumes"]) for x in rem.values())
    totals = ", ".join(f"{h} {x['containers_total']} containers / {x['volumes_total']} volumes" for h, x in rem.items())
    return f"{'nothing of this run left' if left == 0 else f'LEFT OVER: {rem}'} (hosts now hold {totals})"
