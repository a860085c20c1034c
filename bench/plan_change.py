"""Benchmark: changing the plan of an addon holding ~100 MB while a client writes, against the
raw floor measured in the same run, with the same image, data size and hosts (DESIGN §9).

    .venv/bin/python bench/plan_change.py [--rounds 2] [--keys 100000] [--log-level WARNING]
                                          [--business | --business-only] [--business-rounds 2]

--business adds the Business case after the Starter one, --business-only runs it alone (the Starter
samples already in the results file are kept beside it): a redis-business-512 addon (a cluster)
changed to redis-business-1024 and back under the same writer, through REDIS_URL, which does not
change; bench/plan_change_business.py says what it measures.

Cases (operation time):
  engine  change_plan(redis-starter-1024 -> redis-starter-2048) -> wait_for_operation returns
          (stop: CLIENT PAUSE WRITE + SAVE + key counts + docker stop; start_new: create, copy /data
          through the archive API and read both sides back; wait_ready; verify; publish; cleanup;
          restart_app)
  raw     by hand with aiodocker: `docker stop` of a container configured like the engine's (SIGTERM:
          Redis saves), create the container on the other host (the engine's redis.conf with a TLS
          port and TLS lines, and tls/server.crt, tls/server.key issued by a CertificateAuthority of
          the bench's temp dir and tls/ca.crt, put into /etc/redis in one archive, as the engine does),
          stream /data GET -> PUT (no checks), start, poll PING over plaintext; timed from the stop to
          the first PING answered. The writer uses the plaintext redis:// URL in both cases.

In both cases a writer runs in a separate process (its own interpreter, so it shares neither the
engine's event loop nor its GIL): INCR counter, SET w:<n> n, one command at a time, each
acknowledged, as fast as it can. On an error it re-reads the app's URL (the main process keeps it
in a file: for the engine by polling engine.environment(app) every 20 ms, for raw it is written
when PING answers) and retries. It records the longest latency of an acknowledged write, the
longest gap of failed writes (from the sending of the first write that failed to the next
acknowledged write: a write held by CLIENT PAUSE WRITE and cut off when the node stops counts from
when it was sent) and the longest time without any acknowledgement. Afterwards the new node is
read: every acknowledged SET must be there with its value and the counter must be >= the last
acknowledged INCR.

Rounds alternate which case goes first. Prints a table and writes every sample to
bench/results/plan_change.json. Everything created is removed in a `finally` (addons through the
engine, raw containers and volumes directly), and both hosts are checked to hold nothing of this
run afterwards. Timing wrappers set on the engine's objects split its steps into their effects
(save, key counts, docker stop, copy stream, read-back); no engine code is changed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import aiodocker
from redis.backoff import NoBackoff
from redis.retry import Retry

# common first: importing it puts the repository on sys.path for the packages below.
from common import (DATABASES, RESULTS_DIR, VALUE_BYTES, WRITER_HEADER, Ports, client_for, key_ranges, load_keys, machine, ms,
                    node_container, node_files, node_labels, p50, print_targets, ratio, remaining, remaining_text,
                    remove_addon, remove_labelled, remove_leftovers, remove_node, run_bench, s2, step_timings,
                    temp_settings, wait_for_ping, wait_succeeded, writer_cells)

import adapters.docker.data_copy as data_copy
from adapters.docker.runtime import config_archive
from adapters.tls import CertificateAuthority
from domain.settings import DEFAULT_SETTINGS
from domain.placement import place
from domain.redis_config import container_memory_bytes, redis_conf, redis_url
from engine import build

from plan_change_business import business_case, business_only_note, print_business, summarise_business

PLAN_FROM, PLAN_TO = "redis-starter-1024", "redis-starter-2048"
RESULTS = RESULTS_DIR / "plan_change.json"
COUNTER_KEY = "bench:counter"
URL_POLL_S = 0.02  # the engine case polls engine.environment(app) this often for the writer
WRITER_RETRY_S = 0.005  # the writer's pause after a failed write before it retries
WRITER_SOCKET_TIMEOUT_S = 150.0  # longer than any pause: a paused write is latency, not a failure
WRITE_BEFORE_S = 1.0  # the writer runs this long before the change starts ...
WRITE_AFTER_S = 1.0  # ... and this long after it ends
OP_TIMEOUT_S = 240.0
RUN_BUDGET_S = 200.0  # no new round starts after this; cleanup gets the rest of the ~4 minutes
RATIO_TARGET = 1.5


# -- the writer: a separate process ------------------------------------------------------------------


def writer_process(url_file: str, stop, ready, result_file: str, prefix: str = "w:") -> None:
    """INCR + SET <prefix><n> (w:<n>), each acknowledged, as fast as one connection goes; follows the URL file."""
    import signal

    import redis as sync_redis
    from redis.exceptions import RedisError

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops (or kills) this process

    wall0, perf0 = time.time(), time.perf_counter()

    def wall(p: float) -> float:
        return wall0 + (p - perf0)

    acked_sets: list[int] = []
    incr_max, incr_acks, incr_regressions = 0, 0, 0
    acks, failures, errors = 0, 0, {}
    max_latency, max_latency_at = 0.0, None
    max_noack, max_noack_span = 0.0, None
    last_ack = None
    gap = None  # [first failed write sent, failures, first error, how long it was outstanding, {kind: [n, first, last]}]
    gaps: list[dict] = []
    urls: list[tuple[float, str]] = []
    first_ack = None

    def ack(sent: float) -> None:
        nonlocal acks, max_latency, max_latency_at, max_noack, max_noack_span, last_ack, gap, first_ack
        now = time.perf_counter()
        acks += 1
        if now - sent > max_latency:
            max_latency, max_latency_at = now - sent, [wall(sent), wall(now)]
        if last_ack is not None and now - last_ack > max_noack:
            max_noack, max_noack_span = now - last_ack, [wall(last_ack), wall(now)]
        if first_ack is None:
            first_ack = now
        last_ack = now
        if gap is not None:
            gaps.append(dict(start=wall(gap[0]), end=wall(now), s=now - gap[0], failures=gap[1], first_error=gap[2],
                             first_failure_outstanding_s=gap[3], kinds=gap[4]))
            gap = None

    client, url, n = None, None, 0
    while not stop.is_set():
        sent = time.perf_counter()
        try:
            if client is None:
                with open(url_file) as f:
                    fresh = f.read().strip()
                if fresh != url:
                    url = fresh
                    urls.append((time.time(), url.rsplit("@", 1)[-1]))
                client = sync_redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=WRITER_SOCKET_TIMEOUT_S,
                                                   retry=Retry(NoBackoff(), 0), single_connection_client=True)
            sent = time.perf_counter()
            value = client.incr(COUNTER_KEY)
            ack(sent)
            incr_acks += 1
            if value <= incr_max:
                incr_regressions += 1  # the counter went back: acknowledged increments were lost
            incr_max = max(incr_max, value)
            if not ready.is_set():
                ready.set()
            n += 1
            sent = time.perf_counter()
            client.set(f"{prefix}{n}", n)
            ack(sent)
            acked_sets.append(n)
        except (RedisError, OSError) as e:
            now = time.perf_counter()
            failures += 1
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            if gap is None:  # the gap starts when the first failed write was sent (it may have waited, paused)
                gap = [sent, 0, f"{type(e).__name__}: {e}"[:200], now - sent, {}]
            gap[1] += 1
            # Which errors, when (a server's reply names itself: NOREPLICAS, READONLY, LOADING ...).
            kind = (str(e).split() or [""])[0] if type(e).__name__ == "ResponseError" else type(e).__name__
            seen = gap[4].setdefault(kind, [0, wall(now), None])
            seen[0] += 1
            seen[2] = wall(now)
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - the connection is gone anyway
                    pass
            client = None
            time.sleep(WRITER_RETRY_S)
    if client is not None:
        client.close()
    end = time.perf_counter()
    open_gap = None if gap is None else dict(start=wall(gap[0]), end=None, s=end - gap[0], failures=gap[1], first_error=gap[2],
                                             first_failure_outstanding_s=gap[3], kinds=gap[4])
    result = dict(
        prefix=prefix, acks=acks, failures=failures, errors=errors, incr_acks=incr_acks, incr_max=incr_max,
        incr_regressions=incr_regressions, sets_acked=len(acked_sets), acked_sets=acked_sets,
        max_latency_s=max_latency, max_latency_at=max_latency_at, max_noack_s=max_noack, max_noack_span=max_noack_span,
        gaps=gaps, open_gap=open_gap, urls=urls,
        # while the node was reachable: the time of the gaps (and of an unfinished one) left out
        writes_per_s=(acks / up) if first_ack is not None and (up := (end - first_ack) - sum(g["s"] for g in gaps)
                                                                  - (end - gap[0] if gap else 0)) > 0 else None,
    )
    with open(result_file, "w") as f:
        json.dump(result, f)


class Writer:
    """The writer process and the file through which it learns the app's URL."""

    def __init__(self, workdir: Path, label: str, url: str, prefix: str = "w:"):
        self.url_file = workdir / f"url-{label}"
        self.result_file = workdir / f"writer-{label}.json"
        self.url_changes: list[tuple[float, str]] = []
        self.set_url(url)
        ctx = multiprocessing.get_context("spawn")
        self.stop_event, self.ready = ctx.Event(), ctx.Event()
        self.process = ctx.Process(target=writer_process, name=f"bench-writer-{label}", daemon=True,
                                   args=(str(self.url_file), self.stop_event, self.ready, str(self.result_file), prefix))
        self.url = url

    def set_url(self, url: str) -> None:
        tmp = self.url_file.with_suffix(".tmp")
        tmp.write_text(url)
        os.replace(tmp, self.url_file)
        self.url = url
        self.url_changes.append((time.time(), url.rsplit("@", 1)[-1]))

    async def start(self) -> None:
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 30):
            raise RuntimeError("the writer made no acknowledged write within 30 s")

    async def stop(self) -> dict:
        self.stop_event.set()
        await asyncio.to_thread(self.process.join, 30)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, 5)
            raise RuntimeError("the writer did not stop within 30 s")
        return json.loads(self.result_file.read_text())

    def kill(self) -> None:
        if self.process.pid is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)


async def follow_environment(engine, app: str, writer: Writer, done: asyncio.Event) -> None:
    """What an app reading its environment sees: the URL, as soon as the engine publishes a new one."""
    while not done.is_set():
        try:
            url = (await engine.environment(app)).get("REDIS_URL")
            if url and url != writer.url:
                writer.set_url(url)
        except Exception:  # noqa: BLE001 - keep following; the writer retries with what it has
            pass
        try:
            await asyncio.wait_for(done.wait(), URL_POLL_S)
        except TimeoutError:
            pass


@contextlib.asynccontextmanager
async def writing(engine, app: str, writer: Writer):
    """The writer started and the app's environment followed for it; the event yielded is set on the
    way out (the follower then stops), and the writer is killed if it still runs."""
    done = asyncio.Event()
    follower = None
    try:
        await writer.start()
        follower = asyncio.create_task(follow_environment(engine, app, writer, done))
        yield done
    finally:
        done.set()
        if follower is not None:
            await follower
        writer.kill()


# -- the read-back --------------------------------------------------------------------------------


async def check(url: str, writer: dict, keys: int) -> dict:
    """Read the new node: every acknowledged write and every loaded key must be there."""
    lost_sets, loaded_found = [], 0
    client = client_for(url)
    try:
        counter = int(await client.get(COUNTER_KEY) or 0)
        acked = writer["acked_sets"]
        for start in range(0, len(acked), 5000):
            batch = acked[start:start + 5000]
            values = await client.mget([f"{writer.get('prefix', 'w:')}{n}" for n in batch])
            lost_sets += [n for n, v in zip(batch, values) if v is None or int(v) != n]
    finally:
        await client.aclose()
    for db, numbers in key_ranges(keys).items():
        client = client_for(url, db)
        try:
            for start in range(numbers.start, numbers.stop, 1000):
                loaded_found += await client.exists(*[f"d:{i}" for i in range(start, min(numbers.stop, start + 1000))])
        finally:
            await client.aclose()
    incr_lost = max(0, writer["incr_max"] - counter)
    return dict(counter=counter, incr_max_acked=writer["incr_max"], incr_lost=incr_lost, incr_regressions=writer["incr_regressions"],
                sets_acked=writer["sets_acked"], sets_lost=len(lost_sets), lost_examples=lost_sets[:10],
                acked_writes_lost=len(lost_sets) + incr_lost + writer["incr_regressions"],
                loaded_keys_found=loaded_found, loaded_keys=keys)


def writer_summary(w: dict) -> dict:
    gaps = w["gaps"] + ([w["open_gap"]] if w["open_gap"] else [])
    longest = max(gaps, key=lambda g: g["s"]) if gaps else None
    return dict(acks=w["acks"], failures=w["failures"], errors=w["errors"], writes_per_s=w["writes_per_s"],
                longest_gap_s=longest["s"] if longest else 0.0, longest_gap=longest, gaps=len(gaps),
                writes_resumed=w["open_gap"] is None, max_latency_s=w["max_latency_s"], max_latency_at=w["max_latency_at"],
                max_noack_s=w["max_noack_s"], max_noack_span=w["max_noack_span"], urls=w["urls"])


# -- the raw case ----------------------------------------------------------------------------------


class Raw:
    """The same move without the engine: straight Docker API calls, no checks."""

    def __init__(self, settings, plans, image: str, run_id: str, authority: CertificateAuthority):
        self.hosts = {h.name: h for h in settings.hosts}
        self.plans = plans
        self.authority = authority  # the raw side's own CA, in the bench's temp dir
        self.image = image
        self.run_id = run_id
        self.app = f"bench-raw-{run_id}"
        self.ports = Ports(settings.hosts)
        self.docker = {h.name: aiodocker.Docker(url=h.docker_url) for h in settings.hosts}
        self.created: list[tuple[str, str, str]] = []  # (host, container, volume)
        self.count = 0

    async def create(self, host: str, plan_id: str, password: str) -> dict:
        """A container configured as the engine configures a node of `plan_id` (the engine's labels for
        both ports, so an engine sharing the hosts treats them as taken), with its redis.conf (TLS port
        included) and TLS files put into /etc/redis as the engine puts them (engine/nodes.py)."""
        h, memory_mib = self.hosts[host], self.plans.provisionable(plan_id).memory_mib
        port, tls_port = self.ports.take(host), self.ports.take(host)
        self.count += 1
        name = f"redis-addons-bench-raw-{self.run_id}-{self.count:03d}"
        volume = f"{name}-data"
        labels = node_labels(name, self.app, host, port, tls_port, self.run_id)
        memory = container_memory_bytes(memory_mib)
        docker = self.docker[host]
        self.created.append((host, name, volume))
        await docker.volumes.create({"Name": volume, "Labels": labels})
        container = await docker.containers.create(node_container(self.image, labels, memory, volume), name=name)
        conf = redis_conf(address=h.address, port=port, tls_port=tls_port, memory_mib=memory_mib, password=password,
                          settings=DEFAULT_SETTINGS)
        certificate, key = self.authority.issue_server_certificate(h.address, (name,))
        files = node_files(conf, certificate, key, self.authority.certificate_pem)
        await container.put_archive("/etc/redis", config_archive(files))
        return dict(host=host, address=h.address, port=port, tls_port=tls_port, container=name, volume=volume, obj=container,
                    url=redis_url(password=password, address=h.address, port=port))

    async def copy(self, source: dict, target: dict) -> int:
        """/data streamed from one engine to the other, GET -> PUT, 1 MiB chunks, as the engine streams it."""
        sent = 0

        async def counted(stream):
            nonlocal sent
            async for chunk in stream.iter_chunked(1 << 20):
                sent += len(chunk)
                yield chunk

        src, dst = self.docker[source["host"]], self.docker[target["host"]]
        # Uncompressed, as the engine asks: by default dockerd gzips the stream at ~40 MB/s.
        async with src._query(f"containers/{source['container']}/archive", params={"path": "/data"},
                              headers={"Accept-Encoding": "identity"}) as response:
            async with dst._query(f"containers/{target['container']}/archive", method="PUT", params={"path": "/"},
                                  data=counted(response.content), headers={"Content-Type": "application/x-tar"}):
                pass
        return sent

    async def remove(self, host: str, name: str, volume: str) -> None:
        await remove_node(self.docker[host], name, volume)

    async def cleanup(self) -> dict:
        results = await asyncio.gather(*(self.remove(*c) for c in self.created), return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, Exception)]
        for docker in self.docker.values():  # anything labelled with this run that the list above missed
            await remove_labelled(docker, f"redis-addons.bench={self.run_id}")
        return {"removed": len(self.created), "errors": errors}

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.docker.values()), return_exceptions=True)


async def raw_round(raw: Raw, source_host: str, target_host: str, keys: int, workdir: Path, label: str) -> dict:
    password = secrets.token_urlsafe(48)
    old = await raw.create(source_host, PLAN_FROM, password)
    await old["obj"].start()
    await wait_for_ping(old["address"], old["port"], password, time.monotonic() + 60)
    data = await load_keys(old["url"], keys)
    writer = Writer(workdir, label, old["url"])
    try:
        await writer.start()
        await asyncio.sleep(WRITE_BEFORE_S)
        wall_t0, t0 = time.time(), time.perf_counter()
        await old["obj"].stop(t=60)  # SIGTERM: Redis saves its RDB and exits
        t_stopped = time.perf_counter()
        new = await raw.create(target_host, PLAN_TO, password)
        t_created = time.perf_counter()
        copied = await raw.copy(old, new)
        t_copied = time.perf_counter()
        await new["obj"].start()
        t_started = time.perf_counter()
        attempts = await wait_for_ping(new["address"], new["port"], password, time.monotonic() + OP_TIMEOUT_S)
        t1, wall_t1 = time.perf_counter(), time.time()
        writer.set_url(new["url"])  # "publish": the app learns the new address
        await asyncio.sleep(WRITE_AFTER_S)
        written = await writer.stop()
    finally:
        writer.kill()
    checked = await check(new["url"], written, keys)
    await asyncio.gather(raw.remove(old["host"], old["container"], old["volume"]),
                         raw.remove(new["host"], new["container"], new["volume"]))
    return dict(case="raw", label=label, source=f"{old['host']} {old['address']}:{old['port']}",
                target=f"{new['host']} {new['address']}:{new['port']}", data=data, operation_s=t1 - t0,
                to_publish_s=t1 - t0, wall_t0=wall_t0, wall_t1=wall_t1, tar_bytes=copied, ping_attempts=attempts,
                phases_s=dict(docker_stop=t_stopped - t0, create=t_created - t_stopped, copy=t_copied - t_created,
                              start=t_started - t_copied, ready=t1 - t_started),
                writer=writer_summary(written), checked=checked)


# -- the engine case ---------------------------------------------------------------------------------


class Probe:
    """Times the effects the plan change saga calls (wrappers on the engine's own objects): every call
    as (name, wall start, duration), attributed to a round afterwards by its time window."""

    def __init__(self, engine):
        self.calls: list[tuple[str, float, float]] = []
        for name in ("freeze", "keyspace", "ping", "used_memory", "unpause"):
            self._wrap(engine.redis, name, f"redis.{name}")
        for name in ("stop_node", "create_node", "copy_data", "start_node", "remove_node", "is_running", "ports_in_use"):
            self._wrap(engine.runtime, name, f"docker.{name}")
        self._wrap(data_copy, "file_digests", "docker.file_digests (read-back)")

    def _wrap(self, obj, attr: str, name: str) -> None:
        original = getattr(obj, attr)

        async def timed(*args, **kwargs):
            w0, t0 = time.time(), time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.calls.append((name, w0, time.perf_counter() - t0))

        setattr(obj, attr, timed)

    def between(self, a: float, b: float) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name, w0, d in self.calls:
            if a <= w0 <= b:
                row = out.setdefault(name, dict(n=0, total_s=0.0, max_s=0.0))
                row["n"] += 1
                row["total_s"] += d
                row["max_s"] = max(row["max_s"], d)
        return out

    def breakdown(self, a: float, b: float) -> dict[str, float | None]:
        """The steps split into their effects, for one operation's window [a, b]."""
        calls = sorted((w0, name, d) for name, w0, d in self.calls if a <= w0 <= b)

        def total(name: str) -> float:
            return sum(d for _, n, d in calls if n == name)

        readback = [(w0, w0 + d) for w0, n, d in calls if n.startswith("docker.file_digests")]
        readback_wall = max(e for _, e in readback) - min(s for s, _ in readback) if readback else 0.0
        return {
            "stop: CLIENT PAUSE + SAVE + key counts": total("redis.freeze"),
            "stop: docker stop (Redis saves again)": total("docker.stop_node"),
            "start_new: create": total("docker.create_node"),
            "start_new: copy stream GET -> PUT": total("docker.copy_data") - readback_wall,
            "start_new: read-back of the target (AOF only; an RDB is checked by its CRC64 at load)": readback_wall,
            "start_new: start": total("docker.start_node"),
            "wait_ready: PING calls": total("redis.ping"),
            "verify: key counts": total("redis.keyspace"),
            "cleanup: remove old node": total("docker.remove_node"),
        }

    def restore(self) -> None:
        """The module-level function is shared by the whole process: put the original back."""
        data_copy.file_digests = _ORIGINAL_FILE_DIGESTS


_ORIGINAL_FILE_DIGESTS = data_copy.file_digests


async def engine_round(engine, probe: Probe, app: str, keys: int, workdir: Path, label: str, removed: list) -> dict:
    requested = await engine.add_addon(app, PLAN_FROM)
    addon = requested["addon"]
    await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
    before = await engine.addon(app, addon)
    url = (await engine.environment(app))["REDIS_URL"]
    data = await load_keys(url, keys)
    writer = Writer(workdir, label, url)
    async with writing(engine, app, writer):
        await asyncio.sleep(WRITE_BEFORE_S)
        wall_t0, t0 = time.time(), time.perf_counter()
        change = await engine.change_plan(app, addon, PLAN_TO)
        t_requested = time.perf_counter()
        op = await engine.wait_for_operation(change["operation_id"], timeout=OP_TIMEOUT_S)
        t1, wall_t1 = time.perf_counter(), time.time()
        if op["status"] != "succeeded":
            raise RuntimeError(f"plan change of {addon} ended {op['status']}: {op['error']}")
        await asyncio.sleep(WRITE_AFTER_S)
        written = await writer.stop()
    after = await engine.addon(app, addon)
    new_url = (await engine.environment(app))["REDIS_URL"]
    checked = await check(new_url, written, keys)
    steps = await step_timings(engine, addon, change["operation_id"])
    effects = probe.between(wall_t0, wall_t1)
    ready = steps["steps"]["wait_ready"]["duration_s"]
    breakdown = {}
    for name, value in probe.breakdown(wall_t0, wall_t1).items():
        breakdown[name] = value
        if name == "wait_ready: PING calls":
            breakdown["wait_ready: saga's retry backoff between PINGs"] = None if ready is None else ready - value
    published = steps["steps"]["publish"]["ended_ts"]
    url_seen = next((w for w, u in writer.url_changes[1:]), None)
    removal = await engine.remove_addon(app, addon)
    rop = await engine.wait_for_operation(removal["operation_id"], timeout=OP_TIMEOUT_S)
    removed.append(addon if rop["status"] == "succeeded" else None)
    copied = (steps["steps"]["start_new"].get("detail") or "")
    return dict(case="engine", label=label, addon=addon, operation_id=change["operation_id"],
                source=f"{before['host']} {before['address']}:{before['port']}", target=f"{after['host']} {after['address']}:{after['port']}",
                data=data, operation_s=t1 - t0, change_plan_call_s=t_requested - t0, wall_t0=wall_t0, wall_t1=wall_t1,
                to_publish_s=None if published is None else published - wall_t0,
                url_seen_after_publish_s=None if url_seen is None or published is None else url_seen - published,
                copy_detail=copied, steps=steps, effects=effects, breakdown=breakdown, writer=writer_summary(written), checked=checked)


# -- the run --------------------------------------------------------------------------------------


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    home, settings = temp_settings()
    workdir = home / "writer"
    workdir.mkdir()
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    app = f"bench-{run_id}"
    business_app = f"bench-biz-{run_id}"
    business: dict = {}
    rounds: list[dict] = []
    orders: list[list[str]] = []
    cleanup: dict = {}
    removed: list = []
    error = None
    raw = None
    image = None
    probe = None
    try:
        async with build(settings) as engine:
            image = engine.versions.default.image
            probe = Probe(engine)
            raw = Raw(settings, engine.plans, image, run_id, CertificateAuthority.load_or_create(home / "raw-ca"))
            plan = engine.plans.provisionable(PLAN_FROM)
            try:
                for i in range(0 if args.business_only else args.rounds):
                    order = ["engine", "raw"] if i % 2 == 0 else ["raw", "engine"]
                    orders.append(order)
                    for case in order:
                        label = f"{case}-{i + 1}"
                        if case == "engine":
                            sample = await asyncio.wait_for(engine_round(engine, probe, app, args.keys, workdir, label, removed),
                                                            OP_TIMEOUT_S * 2)
                        else:
                            # Same hosts, same direction as the engine's placement and plan change would take.
                            source = place(plan.memory_mib, [h.as_domain() for h in settings.hosts], engine.inventory.tenants()).host
                            target = next(h.name for h in settings.hosts if h.name != source)
                            sample = await asyncio.wait_for(raw_round(raw, source, target, args.keys, workdir, label),
                                                            OP_TIMEOUT_S * 2)
                        sample["round"] = i + 1
                        rounds.append(sample)
                        print(f"  {label}: {sample['operation_s']:.2f} s, longest write gap {sample['writer']['longest_gap_s']:.2f} s, "
                              f"acked writes lost {sample['checked']['acked_writes_lost']}", file=sys.stderr, flush=True)
                    if time.monotonic() - began > RUN_BUDGET_S and i + 1 < args.rounds:
                        error = f"run budget of {RUN_BUDGET_S:.0f} s spent after round {i + 1}: stopped there"
                        break
                if args.business or args.business_only:
                    # The Business case (bench/plan_change_business.py): its own app, the same writer.
                    kit = dict(Writer=Writer, writing=writing, check=check, summary=writer_summary)

                    def say(text: str) -> None:
                        print(f"  [business] {text} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)

                    await business_case(engine, kit, business_app, args, workdir, business, say)
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                # Addons the rounds did not remove (an interrupted round): through the engine.
                leftover = []
                for owner in (app, business_app):
                    try:
                        leftover += [(owner, a["name"]) for a in await engine.addons(owner) if a["status"] != "removed"]
                    except Exception:  # noqa: BLE001 - e.g. the app never had an addon
                        pass
                errors = []
                for owner, name in leftover:
                    if problem := await remove_addon(engine, owner, name, 90 if owner == app else 300):
                        errors.append(problem)
                cleanup["engine"] = {"removed_in_rounds": len([r for r in removed if r]), "removed_at_end": len(leftover) - len(errors),
                                     "errors": errors}
    finally:
        if raw is not None:
            try:
                cleanup["raw"] = await raw.cleanup()
            finally:
                await raw.close()
        if probe is not None:
            probe.restore()
        cleanup["engine_leftovers_removed"] = await remove_leftovers(settings, app) + await remove_leftovers(settings, business_app)
        cleanup["remaining"] = await remaining(settings, run_id)
        shutil.rmtree(home, ignore_errors=True)
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)

    result = dict(run_id=run_id, started_at=started_at, duration_s=time.monotonic() - began, plans=[PLAN_FROM, PLAN_TO],
                  image=image, keys=args.keys, value_bytes=VALUE_BYTES, databases=DATABASES, orders=orders, rounds=rounds,
                  stopped=error, cleanup=cleanup, machine=machine(load_1m_at_end=os.getloadavg()[0]),
                  business=business or None, business_only=args.business_only)
    if args.business_only:
        result.update(starter_kept())
    return result


STARTER_KEYS = ("plans", "keys", "value_bytes", "databases", "orders", "rounds")


def starter_kept() -> dict:
    """--business-only: the Starter samples of the results file, kept beside the new Business ones."""
    try:
        previous = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return dict(rounds=[], orders=[], starter_run=None)
    kept = previous.get("starter_run") or dict(run_id=previous.get("run_id"), started_at=previous.get("started_at"))
    return dict({k: previous[k] for k in STARTER_KEYS if k in previous}, starter_run=kept)


ENGINE_STEPS = ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"]
RAW_PHASES = ["docker_stop", "create", "copy", "start", "ready"]


def summarise(result: dict) -> dict:
    summary = summarise_starter(result)
    if result.get("business"):
        summary["business"] = summarise_business(result["business"])
    return summary


def summarise_starter(result: dict) -> dict:
    by_case = {c: [r for r in result["rounds"] if r["case"] == c] for c in ("engine", "raw")}
    rows = []
    for r in result["rounds"]:
        rows.append(dict(case=r["label"], n=1, operation_s=r["operation_s"], to_publish_s=r["to_publish_s"],
                         longest_gap_s=r["writer"]["longest_gap_s"], max_latency_s=r["writer"]["max_latency_s"],
                         max_noack_s=r["writer"]["max_noack_s"], lost=r["checked"]["acked_writes_lost"],
                         writes_per_s=r["writer"]["writes_per_s"]))
    for c, rs in by_case.items():
        rows.append(dict(case=f"{c} p50", n=len(rs), operation_s=p50([r["operation_s"] for r in rs]),
                         to_publish_s=p50([r["to_publish_s"] for r in rs]),
                         longest_gap_s=p50([r["writer"]["longest_gap_s"] for r in rs]),
                         max_latency_s=p50([r["writer"]["max_latency_s"] for r in rs]),
                         max_noack_s=p50([r["writer"]["max_noack_s"] for r in rs]),
                         lost=sum(r["checked"]["acked_writes_lost"] for r in rs),
                         writes_per_s=p50([r["writer"]["writes_per_s"] for r in rs])))
    op_ratio = ratio(p50([r["operation_s"] for r in by_case["engine"]]), p50([r["operation_s"] for r in by_case["raw"]]))
    pub_ratio = ratio(p50([r["to_publish_s"] for r in by_case["engine"]]), p50([r["operation_s"] for r in by_case["raw"]]))
    gap_ratio = ratio(p50([r["writer"]["max_noack_s"] for r in by_case["engine"]]), p50([r["writer"]["max_noack_s"] for r in by_case["raw"]]))
    lost = sum(r["checked"]["acked_writes_lost"] for r in by_case["engine"])
    intact = all(r["checked"]["loaded_keys_found"] == r["checked"]["loaded_keys"] for r in result["rounds"])
    resumed = all(r["writer"]["writes_resumed"] for r in result["rounds"])

    # Where the engine's time goes: per step (p50 over rounds), and the effects inside the steps.
    steps = {}
    for name in ENGINE_STEPS:
        steps[name] = dict(duration_s=p50([r["steps"]["steps"][name]["duration_s"] for r in by_case["engine"]]),
                           gap_before_s=p50([r["steps"]["steps"][name]["gap_before_s"] for r in by_case["engine"]]))
    around = dict(
        call_to_operation_started_s=p50([r["steps"]["started_ts"] - r["wall_t0"] for r in by_case["engine"]]),
        change_plan_call_s=p50([r["change_plan_call_s"] for r in by_case["engine"]]),
        after_last_step_s=p50([r["steps"]["after_last_step_s"] for r in by_case["engine"]]),
        finished_to_return_s=p50([r["wall_t1"] - r["steps"]["finished_ts"] for r in by_case["engine"]
                                  if r["steps"].get("finished_ts")]),
        url_seen_after_publish_s=p50([r["url_seen_after_publish_s"] for r in by_case["engine"]]),
    )
    effects = {}
    for r in by_case["engine"]:
        for name, e in r["effects"].items():
            effects.setdefault(name, dict(n=[], total_s=[]))
            effects[name]["n"].append(e["n"])
            effects[name]["total_s"].append(e["total_s"])
    effects = {k: dict(n=max(v["n"]), total_p50_s=p50(v["total_s"])) for k, v in sorted(effects.items())}
    raw_phases = {k: p50([r["phases_s"][k] for r in by_case["raw"]]) for k in RAW_PHASES}
    parts = list(by_case["engine"][0]["breakdown"]) if by_case["engine"] else []
    breakdown = {k: p50([r["breakdown"][k] for r in by_case["engine"]]) for k in parts}
    return dict(
        table=rows,
        ratios=dict(operation=op_ratio, to_publish=pub_ratio, longest_noack=gap_ratio),
        engine_steps_p50=steps, engine_around_p50=around, engine_effects=effects, engine_breakdown_p50=breakdown,
        raw_phases_p50=raw_phases,
        targets={
            f"operation p50 engine/raw <= {RATIO_TARGET}": dict(value=op_ratio, passed=op_ratio is not None and op_ratio <= RATIO_TARGET),
            "acknowledged writes lost (engine) == 0": dict(value=lost, passed=lost == 0 and bool(by_case["engine"])),
        },
        checks=dict(loaded_data_intact_everywhere=intact, writes_resumed_everywhere=resumed,
                    raw_acked_writes_lost=sum(r["checked"]["acked_writes_lost"] for r in by_case["raw"])),
    )


def print_report(result: dict, summary: dict) -> None:
    if result.get("business_only"):
        print(f"\nplan change benchmark  run {result['run_id']}  {result['started_at']}  Business case only  image {result['image']}  "
              f"({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
        print(business_only_note((result.get("starter_run") or {}).get("started_at")))
    else:
        print_starter(result, summary)
    if result.get("business"):
        print_business(result["business"], summary["business"])
    print(f"\ncleanup: engine {result['cleanup'].get('engine')}, raw {result['cleanup'].get('raw', {}).get('removed')} containers removed; "
          f"{remaining_text(result['cleanup']['remaining'])}")


def print_starter(result: dict, summary: dict) -> None:
    data = result["rounds"][0]["data"] if result["rounds"] else {}
    print(f"\nplan change benchmark  run {result['run_id']}  {result['started_at']}  {' -> '.join(result['plans'])}  "
          f"image {result['image']}  ({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
    if data:
        print(f"data: {result['keys']} keys x {result['value_bytes']} B random in {result['databases']} databases "
              f"(used_memory {data['used_memory'] / 2**20:.0f} MiB); writer: separate process, INCR + SET, one at a time")
    engine_rounds = [r for r in result["rounds"] if r["case"] == "engine"]
    raw_rounds = [r for r in result["rounds"] if r["case"] == "raw"]
    if engine_rounds:
        print(f"engine copy: {engine_rounds[0]['copy_detail']}")
    if raw_rounds:
        print(f"raw copy: tar stream of {raw_rounds[0]['tar_bytes']} bytes, "
              f"{raw_rounds[0]['source'].split()[0]} -> {raw_rounds[0]['target'].split()[0]}")
    print(f"round orders {result['orders']}" + (f"; STOPPED: {result['stopped']}" if result["stopped"] else "") + "\n")
    header = f"{'case':<11} | {'n':>1} | {'operation s':>11} | {'to publish s':>12} | {WRITER_HEADER}"
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        print(f"{r['case']:<11} | {r['n']:>1} | {s2(r['operation_s']):>11} | {s2(r['to_publish_s']):>12} | {writer_cells(r)}")
    for r in result["rounds"]:
        g = r["writer"]["longest_gap"]
        if g:
            print(f"  {r['label']}: longest gap = {g['failures']} failed attempts ({g['first_error'][:70]}...); its first write "
                  f"was outstanding {s2(g['first_failure_outstanding_s'])} s before it failed")
    rt = summary["ratios"]
    print(f"\nengine/raw p50: operation {s2(rt['operation'])}, to publish {s2(rt['to_publish'])}, longest no-ack {s2(rt['longest_noack'])}")
    print("\nengine steps, p50 s (gap = from the previous step's end)")
    print("  " + "; ".join(f"{k} {s2(v['duration_s'])} (gap {ms(v['gap_before_s'])} ms)" for k, v in summary["engine_steps_p50"].items()))
    a = summary["engine_around_p50"]
    print(f"  change_plan call {s2(a['change_plan_call_s'])}; call -> operation started {s2(a['call_to_operation_started_s'])}; "
          f"last step -> finished {ms(a['after_last_step_s'])} ms; finished -> wait returns {ms(a['finished_to_return_s'])} ms; "
          f"new URL handed to the writer {ms(a['url_seen_after_publish_s'])} ms after publish")
    print("engine effects inside the operation, p50 of the per-round total s (calls)")
    print("  " + "; ".join(f"{k} {s2(v['total_p50_s'])} ({v['n']})" for k, v in summary["engine_effects"].items()))
    print("engine steps split into their effects, p50 s")
    for k, v in summary["engine_breakdown_p50"].items():
        print(f"  {k:<64} {s2(v):>6}")
    print("raw phases, p50 s")
    print("  " + "; ".join(f"{k} {s2(v)}" for k, v in summary["raw_phases_p50"].items()))
    print_targets(summary["targets"])
    c = summary["checks"]
    print(f"checks: loaded data intact on every new node {c['loaded_data_intact_everywhere']}; writes resumed after every move "
          f"{c['writes_resumed_everywhere']}; raw acked writes lost {c['raw_acked_writes_lost']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs the engine case and the raw case once")
    parser.add_argument("--keys", type=int, default=100_000, help=f"keys of {VALUE_BYTES} B loaded before each move")
    parser.add_argument("--business", action="store_true", help="after the Starter case, the Business case (plan_change_business.py)")
    parser.add_argument("--business-only", action="store_true",
                        help="the Business case alone (the Starter samples already in the results file are kept)")
    parser.add_argument("--business-rounds", type=int, default=2,
                        help="Business plan changes, alternating redis-business-512 -> 1024 and back, on one addon")
    run_bench(parser, bench, summarise, print_report, RESULTS)


if __name__ == "__main__":
    main()
