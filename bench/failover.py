"""Benchmark: failovers of a Business addon holding ~100 MB while an app writes through its entry,
against the anchor measured in the same run: the same cluster with Sentinel's default timing
(down-after-milliseconds 30000, failover-timeout 180000); and the data path through the entry
against the primary itself (DESIGN §9, §10, §11).

    .venv/bin/python bench/failover.py [--rounds 10] [--anchor-rounds 3] [--plan redis-business-512]
                                       [--keys 100000] [--redundancy-timeout 120] [--log-level WARNING]

Each cluster ("tuned": as the engine provisions it, down-after 1000 ms; "anchor": a second addon
whose three Sentinels are set to Sentinel's defaults with SENTINEL SET) is provisioned through the
engine (add_addon, wait_for_operation), its watcher running every 2 s as it does in production (the
watcher round is part of a failover: a promoted replica refuses writes with NOREPLICAS until the
engine lowers min-replicas-to-write). ~100 MB (100,000 keys of 1 KiB in 5 databases) are loaded
through REDIS_URL. Then a writer runs in a separate process (its own interpreter: an app, sharing
neither the engine's event loop nor its GIL): one connection to REDIS_URL, each iteration INCR a
counter and SET w:<n> n, one command at a time, each counted only when its reply came back; on any
error the connection is dropped and a new one made 50 ms later.

Faults alternate kill, pause, kill, pause... (--rounds of each on the tuned cluster, --anchor-rounds
of each on the anchor). Before each, the bench waits until the cluster is fully redundant and all
three Sentinels name the primary and see its replica. The primary is the one engine.nodes() names;
  kill   `docker kill` of its container (aiodocker, on its host's socket);
  pause  `docker pause`, held 4 s on the tuned cluster and 40 s on the anchor (past down-after), then
         `docker unpause`.
Measured per fault:
  write gap        from the sending of the first write that failed after the fault to the next
                   acknowledged write (also: the writes' total time in failure until the check, when
                   there was more than one gap);
  acked lost       every acknowledged SET read back through REDIS_URL after the fault (missing or
                   wrong, new since the previous check) plus acknowledged increments lost (an
                   acknowledged INCR that returned no more than the one acknowledged before it: the
                   difference); and, apart, the loaded keys no longer there (they are loaded again
                   before the next fault, not measured);
  full redundancy  from the fault until the engine's read model shows the addon "running", every node
                   of engine.nodes() "running", and the recorded primary answers INFO replication as
                   a master with a replica state=online and is named by a majority of Sentinels (so
                   the faulted primary, silent or, once back, named by none, never counts). The bench restarts
                   nothing in that path: only when it is not reached within --redundancy-timeout
                   (counted from the fault; plus down-after for the anchor) is it recorded as not
                   reached and the bench starts (or unpauses) the container itself, and says so.
  where the gap goes   the Sentinels are polled every 50 ms (first time 1, 2, 3 of them name another
                   primary); the writer notes its first NOREPLICAS (the entry reached the promoted
                   replica before the engine lowered min-replicas-to-write); the engine's Cluster
                   events of the window are listed with their times.
Data path (tuned cluster, before the faults, no writer): `redis-benchmark -t get,set -n 100000 -c 50
--csv` with -P 1 and -P 16, against three targets, rotating which goes first, --bench-reps times each:
  entry      REDIS_URL, plaintext to HAProxy, which speaks TLS to the primary (verified with the CA);
  entry TLS  REDIS_TLS_URL, `--tls --cacert` the CA: HAProxy passes the TLS stream through to the
             primary, where it ends;
  direct     the primary itself, on its one port, over TLS with `--tls --cacert` the CA (the data
             nodes serve TLS only: there is no plaintext floor any more).
p50 requests/s and two ratios against the same raw TLS floor: entry TLS/direct (like with like: one
TLS session from the client to Redis both ways, HAProxy's passing it on is the only difference) and
entry/direct (what an app on REDIS_URL gets: HAProxy's TLS origination included); and the CPU
seconds the primary's container, both HAProxy containers (cgroup v1 cpuacct) and redis-benchmark used.
Every connection the bench makes to a data node or a Sentinel is TLS verified with the installation's
CA (common.over_tls; plaintext only for a build without TLS, whose nodes record no TLS port).
The results record the engine's commit and its files changed in the working tree.

Prints tables and writes every sample to bench/results/failover.json. Both addons are removed
through the engine (in a `finally` too) and the hosts are checked to hold nothing of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import secrets
import shutil
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiodocker
import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

# common first: importing it puts the repository on sys.path for the packages below.
from common import (REPO, RESULTS_DIR, ca_file, cli_tls, key_ranges, load_keys, machine, node_endpoint, over_tls, p50, p95, ratio,
                    remaining, remaining_text, remove_addon, remove_leftovers, run_bench, s2, temp_settings, wait_succeeded)

from domain.cluster import Cluster
from domain.cluster_config import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, MASTER_NAME
from engine import build
from engine.cluster_provisioning import sentinel_secret

RESULTS = RESULTS_DIR / "failover.json"
COUNTER_KEY = "bench:counter"
WRITER_RETRY_S = 0.05  # the writer's pause after an error before a new connection
WRITER_SOCKET_TIMEOUT_S = 5.0  # a write held longer than this (a paused primary HAProxy has not cut yet) fails
SLOW_ACK_S = 0.25  # acknowledged writes slower than this are kept, with their time
ANCHOR_DOWN_AFTER_MS, ANCHOR_FAILOVER_TIMEOUT_MS = 30000, 180000  # Sentinel's defaults
HOLD_S = {"tuned": 4.0, "anchor": 40.0}  # how long a pause lasts: past down-after
OP_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 180.0  # before a fault: redundancy and the Sentinels' view must be back within this
POLL_S = 0.1  # the redundancy poll
GAP_TARGET_S = 3.0
DATA_PATH_TARGET = 0.8


def wall() -> float:
    return time.time()


def code_state() -> dict:
    """Which engine was measured: the commit, and the engine's files changed in the working tree
    (other people edit them while benches run)."""
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    return dict(commit=git("rev-parse", "--short", "HEAD").strip(),
                uncommitted=[x[3:] for x in git("status", "--porcelain", "--", "engine", "domain", "projections",
                                                "adapters").splitlines() if x.strip()])


# -- the writer: a separate process ------------------------------------------------------------------


def writer_process(url: str, conn) -> None:
    """INCR + SET w:<n> n through `url`, each acknowledged, one connection; answers "state" and "stop"
    on `conn` with what it has seen (failures as gaps, acknowledged numbers, slow acks)."""
    import signal

    from redis.exceptions import RedisError

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops (or kills) this process
    wall0, perf0 = time.time(), time.perf_counter()

    def now() -> float:
        return wall0 + (time.perf_counter() - perf0)

    n = 0
    unacked: list[int] = []  # n whose SET was not acknowledged (or never sent: its INCR failed)
    incr_acks, incr_max, incr_last, incr_lost = 0, 0, 0, []  # incr_lost: [when, how many acknowledged increments went missing]
    acks, failures, last_ack, first_ack = 0, 0, None, None
    gaps: list[dict] = []
    gap = None
    slow: list[list[float]] = []  # [acked at, latency]
    errors = Counter()

    def ack(sent: float) -> None:
        nonlocal acks, last_ack, first_ack, gap
        t = now()
        acks += 1
        if t - sent > SLOW_ACK_S:
            slow.append([t, t - sent])
        if first_ack is None:
            first_ack = t
        last_ack = t
        if gap is not None:
            gap["end"] = t
            gap["s"] = t - gap["start"]
            gaps.append(gap)
            gap = None

    def state(final: bool = False) -> dict:
        return dict(n=n, unacked=list(unacked), incr_acks=incr_acks, incr_max=incr_max, incr_lost=list(incr_lost),
                    acks=acks, failures=failures, first_ack=first_ack, last_ack=last_ack, gaps=list(gaps),
                    open_gap=dict(gap) if gap else None, slow=list(slow), errors=dict(errors), at=now(), final=final)

    client = None
    while True:
        if conn.poll():
            message = conn.recv()
            if message == "stop":
                conn.send(state(final=True))
                break
            conn.send(state())
        n += 1
        sent, stage = now(), "incr"
        try:
            if client is None:
                client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=WRITER_SOCKET_TIMEOUT_S,
                                              retry=Retry(NoBackoff(), 0), single_connection_client=True)
            sent = now()
            value = client.incr(COUNTER_KEY)
            ack(sent)
            incr_acks += 1
            if value <= incr_last:  # the counter went back: the acknowledged increments since `value` were lost
                incr_lost.append([now(), incr_last - value + 1])
            incr_last, incr_max = value, max(incr_max, value)
            stage, sent = "set", now()
            client.set(f"w:{n}", n)
            ack(sent)
        except (RedisError, OSError) as e:
            t = now()
            failures += 1
            unacked.append(n)
            kind = "NOREPLICAS" if "NOREPLICAS" in str(e) else type(e).__name__
            errors[kind] += 1
            if gap is None:  # the gap starts when the first failed write was sent (it may have hung, paused)
                gap = dict(start=sent, first_failure=t, end=None, s=None, failures=0, kinds={}, kinds_first_at={},
                           first_error=f"{stage}: {type(e).__name__}: {e}"[:160])
            gap["failures"] += 1
            gap["kinds"][kind] = gap["kinds"].get(kind, 0) + 1
            gap["kinds_first_at"].setdefault(kind, t)  # e.g. the first NOREPLICAS: the entry reached the promoted replica
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - the connection is gone anyway
                    pass
            client = None
            time.sleep(WRITER_RETRY_S)
    if client is not None:
        client.close()


class Writer:
    def __init__(self, url: str, label: str):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=writer_process, name=f"bench-writer-{label}", daemon=True, args=(url, child))
        self._lock = asyncio.Lock()
        self.final: dict | None = None

    async def start(self) -> None:
        self.process.start()
        deadline = time.monotonic() + 30
        while (await self.state())["acks"] == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the writer made no acknowledged write within 30 s")
            await asyncio.sleep(0.1)

    async def _ask(self, message: str) -> dict:
        async with self._lock:
            self.conn.send(message)

            def answer():
                if not self.conn.poll(30):  # a write may hang WRITER_SOCKET_TIMEOUT_S at most
                    raise RuntimeError("the writer did not answer within 30 s")
                return self.conn.recv()

            return await asyncio.to_thread(answer)

    async def state(self) -> dict:
        return await self._ask("state")

    async def stop(self) -> dict:
        self.final = await self._ask("stop")
        await asyncio.to_thread(self.process.join, 10)
        return self.final

    def kill(self) -> None:
        if self.process.pid is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# -- looking at the cluster ---------------------------------------------------------------------------


def as_dict(reply) -> dict:
    """A Sentinel reply as a dict, whether redis-py parsed it or left it a flat list."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    items = [x.decode() if isinstance(x, bytes) else x for x in reply]
    return dict(zip(items[::2], items[1::2]))


def direct(node: dict, password: str, ca) -> aioredis.Redis:
    address, port = node_endpoint(node)
    return aioredis.Redis(host=address, port=port, username="default", password=password, **over_tls(node, ca),
                          socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0), decode_responses=True)


def sentinel_client(node: dict, password: str, ca) -> aioredis.Redis:
    address, port = node_endpoint(node)
    return aioredis.Redis(host=address, port=port, password=password, **over_tls(node, ca), socket_connect_timeout=1,
                          socket_timeout=2, retry=Retry(NoBackoff(), 0), decode_responses=True)


class ClusterView:
    """One Business addon as the bench sees it: through the engine's read models, the data nodes
    themselves and the Sentinels."""

    def __init__(self, engine, app: str, addon: str):
        self.engine, self.app, self.addon = engine, app, addon
        self.password = engine.secrets.password_for(addon)
        self.sentinel_password = engine.secrets.password_for(sentinel_secret(addon))
        self.aggregate_id = str(Cluster.id_for(addon))
        self.ca = ca_file(engine)  # the nodes and Sentinels serve TLS only: verified with it

    async def nodes(self) -> list[dict]:
        return [n for n in await self.engine.nodes(self.app, self.addon) if n["state"] != "retired"]

    async def primary(self) -> dict | None:
        return next((n for n in await self.nodes() if n["role"] == "data" and n["is_primary"]), None)

    async def redundant(self) -> tuple[bool, str]:
        """Full redundancy as the issue defines it; when not, what is missing. The recorded primary must
        answer as a primary with a replica online and be the one a majority of Sentinels name: right
        after a fault that nobody has noticed yet, the faulted primary does not answer (killed, paused),
        and once it answers again (unpaused, started again) the Sentinels name another if they failed over."""
        status = (await self.engine.addon(self.app, self.addon))["status"]
        if status != "running":
            return False, f"addon {status}"
        nodes = await self.nodes()
        if bad := [f"{n['id'].rsplit('-', 1)[-1]} {n['state']}" for n in nodes if n["state"] != "running"]:
            return False, f"nodes not running {bad}"
        primary = next((n for n in nodes if n["role"] == "data" and n["is_primary"]), None)
        if primary is None:
            return False, "no primary recorded"
        client = direct(primary, self.password, self.ca)
        try:
            info = await client.info("replication")
        except Exception as e:  # noqa: BLE001
            return False, f"recorded primary does not answer ({type(e).__name__})"
        finally:
            await client.aclose()
        if info.get("role") != "master":
            return False, f"recorded primary says role {info.get('role')}"
        if not [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]:
            return False, "no replica online"
        votes = 0
        for s in (n for n in nodes if n["role"] == "sentinel"):
            client = sentinel_client(s, self.sentinel_password, self.ca)
            try:
                named = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                votes += bool(named) and f"{named[0]}:{named[1]}" == f"{primary['address']}:{primary['port']}"
            except Exception:  # noqa: BLE001 - a Sentinel that does not answer names nobody
                pass
            finally:
                await client.aclose()
        return (True, "redundant") if votes >= 2 else (False, "the Sentinels name another primary")

    async def sentinels_agree(self) -> tuple[bool, str]:
        """All three Sentinels name the recorded primary, see it up, and see a replica up and linked."""
        nodes = await self.nodes()
        primary = next((n for n in nodes if n["role"] == "data" and n["is_primary"]), None)
        if primary is None:
            return False, "no primary recorded"
        for s in (n for n in nodes if n["role"] == "sentinel"):
            client = sentinel_client(s, self.sentinel_password, self.ca)
            try:
                named = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                if not named or f"{named[0]}:{named[1]}" != f"{primary['address']}:{primary['port']}":
                    return False, f"sentinel {s['host']} names {named}"
                master = as_dict(await client.execute_command("SENTINEL", "MASTER", MASTER_NAME))
                if master.get("flags") != "master":
                    return False, f"sentinel {s['host']}: primary flags {master.get('flags')}"
                replicas = [as_dict(r) for r in await client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)]
                if not any(r.get("flags") == "slave" and r.get("master-link-status") == "ok" for r in replicas):
                    return False, f"sentinel {s['host']}: no replica up ({[r.get('flags') for r in replicas]})"
            except Exception as e:  # noqa: BLE001
                return False, f"sentinel {s['host']}: {type(e).__name__}: {e}"
            finally:
                await client.aclose()
        return True, "agreed"

    async def sentinel_timing(self, set_to: tuple[int, int] | None = None) -> list[dict]:
        """Each Sentinel's down-after and failover-timeout (set first when `set_to` is given)."""
        out = []
        for s in (n for n in await self.nodes() if n["role"] == "sentinel"):
            client = sentinel_client(s, self.sentinel_password, self.ca)
            try:
                if set_to:
                    await client.execute_command("SENTINEL", "SET", MASTER_NAME, "down-after-milliseconds", str(set_to[0]))
                    await client.execute_command("SENTINEL", "SET", MASTER_NAME, "failover-timeout", str(set_to[1]))
                master = as_dict(await client.execute_command("SENTINEL", "MASTER", MASTER_NAME))
                out.append(dict(sentinel=f"{s['host']} {s['address']}:{s['port']}",
                                down_after_ms=int(master["down-after-milliseconds"]),
                                failover_timeout_ms=int(master["failover-timeout"])))
            finally:
                await client.aclose()
        return out

    async def events_after(self, position: int) -> list[dict]:
        """This cluster's events recorded after `position` (type, when recorded, what they say)."""
        found = []
        while True:
            page = await self.engine.event_page(after=position, limit=500)
            if not page:
                return found
            position = page[-1]["id"]
            found += [e for e in page if e["aggregate_id"] == self.aggregate_id]

    async def wait_ready(self, timeout: float) -> dict:
        """Before a fault: redundant and the Sentinels agree (not measured)."""
        t0, why = time.monotonic(), ""
        while time.monotonic() - t0 < timeout:
            ok, why = await self.redundant()
            if ok:
                ok, why = await self.sentinels_agree()
                if ok:
                    return dict(waited_s=time.monotonic() - t0)
            await asyncio.sleep(0.25)
        raise RuntimeError(f"{self.addon} not ready within {timeout:.0f} s: {why}")


# -- the read-back ------------------------------------------------------------------------------------


async def check_writes(url: str, state: dict, keys: int) -> dict:
    """Every acknowledged SET w:<n> read back through the entry, the counter, and how many of the
    loaded keys d:<i> (acknowledged writes too) are still there."""
    unacked = set(state["unacked"])
    acked = [i for i in range(1, state["n"] + 1) if i not in unacked]
    for attempt in range(5):
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=30, retry=Retry(NoBackoff(), 0))
        try:
            missing = []
            for start in range(0, len(acked), 10000):
                batch = acked[start:start + 10000]
                values = await client.mget([f"w:{i}" for i in batch])
                missing += [i for i, v in zip(batch, values) if v is None or int(v) != i]
            counter = int(await client.get(COUNTER_KEY) or 0)
            used = int((await client.info("memory"))["used_memory"])
            loaded = 0
            for db, numbers in key_ranges(keys).items():
                in_db = aioredis.Redis.from_url(url, db=db, socket_connect_timeout=2, socket_timeout=30,
                                                retry=Retry(NoBackoff(), 0))
                try:
                    for start in range(numbers.start, numbers.stop, 1000):
                        loaded += await in_db.exists(*[f"d:{i}" for i in range(start, min(numbers.stop, start + 1000))])
                finally:
                    await in_db.aclose()
            return dict(sets_acked=len(acked), missing=missing, counter=counter, incr_acks=state["incr_acks"],
                        loaded_keys=keys, loaded_keys_found=loaded,
                        incr_max=state["incr_max"], counter_at_least_acked_incrs=counter >= state["incr_acks"],
                        used_memory=used, attempts=attempt + 1)
        except redis.RedisError:
            if attempt == 4:
                raise
            await asyncio.sleep(1)
        finally:
            await client.aclose()


# -- one fault ----------------------------------------------------------------------------------------


async def sentinel_probe(c: ClusterView, old: dict, t_fault: float, stop: asyncio.Event) -> dict:
    """Every 50 ms from the fault: how many Sentinels name a primary other than `old`; the first time
    one, two (the majority HAProxy and the engine wait for) and all three did."""
    sentinels = [n for n in await c.nodes() if n["role"] == "sentinel"]
    clients = [sentinel_client(s, c.sentinel_password, c.ca) for s in sentinels]
    first: dict[int, float] = {}
    try:
        while not stop.is_set() and len(first) < len(clients):
            named = 0
            for client in clients:
                try:
                    addr = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                    named += bool(addr) and f"{addr[0]}:{addr[1]}" != f"{old['address']}:{old['port']}"
                except Exception:  # noqa: BLE001 - a Sentinel busy or restarting names nobody this time
                    pass
            for k in range(1, named + 1):
                first.setdefault(k, wall() - t_fault)
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        for client in clients:
            await client.aclose()
    return {f"named_by_{k}_s": round(v, 3) for k, v in sorted(first.items())}


async def fault_round(c: ClusterView, dockers: dict, writer: Writer, url: str, kind: str, label: str, timeout: float,
                      hold: float, previously_missing: set[int], loaded: dict) -> dict:
    ready = await c.wait_ready(READY_TIMEOUT_S)
    before = await writer.state()
    if before["last_ack"] is None or wall() - before["last_ack"] > 1.0 or before["open_gap"]:
        raise RuntimeError(f"{label}: the writer is not writing before the fault ({before['open_gap']})")
    position = await c.engine.events.max_position()
    primary = await c.primary()
    container = await dockers[primary["host"]].containers.get(primary["container"])
    load_before = os.getloadavg()[0]
    stop_probe = asyncio.Event()
    t_fault = wall()
    probe = asyncio.create_task(sentinel_probe(c, primary, t_fault, stop_probe))
    if kind == "kill":
        await container.kill()
        t_unpaused = None
    else:
        await container.pause()
        await asyncio.sleep(hold)
        await container.unpause()
        t_unpaused = wall()

    # Back to full redundancy: nothing is restarted by the bench in this path.
    deadline, why, seen = t_fault + timeout, "", {}
    t_redundant = None
    while wall() < deadline:
        ok, why = await c.redundant()
        now = wall()
        if ok:
            t_redundant = now
            break
        seen.setdefault(why.split(" [")[0].split(" (")[0], round(now - t_fault, 2))  # when each missing part was first seen
        await asyncio.sleep(POLL_S)
    bench_action = None
    if t_redundant is None:
        info = (await container.show())["State"]
        if info.get("Paused"):
            await container.unpause()
            bench_action = "unpaused by the bench"
        elif not info.get("Running"):
            await container.start()
            bench_action = "started by the bench"
        else:
            bench_action = "nothing to do: it runs"
        print(f"    {label}: NOT back to full redundancy within {timeout:.0f} s ({why}); {bench_action} "
              f"so the next round can go on", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_TIMEOUT_S:
            if (await c.redundant())[0]:
                break
            await asyncio.sleep(0.25)

    stop_probe.set()
    sentinels_switched = await probe

    # Writes back (they may come back after redundancy), then read every acknowledged write back.
    t0 = time.monotonic()
    while True:
        state = await writer.state()
        if state["last_ack"] is not None and state["last_ack"] > t_fault and state["open_gap"] is None:
            break
        if time.monotonic() - t0 > 60:
            break
        await asyncio.sleep(0.1)
    checked = await check_writes(url, state, loaded["keys"])
    new_missing = sorted(set(checked["missing"]) - previously_missing)
    previously_missing.update(checked["missing"])
    loaded_lost = max(0, loaded["found"] - checked["loaded_keys_found"])  # new since the previous check
    loaded["found"] = checked["loaded_keys_found"]
    incr_lost = sum(k for t, k in state["incr_lost"] if t >= t_fault - 1)

    gaps = [g for g in state["gaps"] if g["first_failure"] >= t_fault]
    if state["open_gap"] and state["open_gap"]["first_failure"] >= t_fault:
        gaps.append(dict(state["open_gap"], end=None, s=None))
    first = gaps[0] if gaps else None
    first_of_kind = {k: round(v - t_fault, 2) for k, v in (first or {}).get("kinds_first_at", {}).items()}
    slow = [s for s in state["slow"] if s[0] >= t_fault]
    events = [dict(type=e["type"].split(".")[-1], at_s=datetime.fromisoformat(e["timestamp"]).timestamp() - t_fault,
                   data={k: v for k, v in e["data"].items() if k in ("old", "new", "reason", "node_id", "how")})
              for e in await c.events_after(position)]
    after = await c.primary()
    return dict(
        label=label, kind=kind, primary=dict(id=primary["id"], host=primary["host"]), new_primary=after["id"] if after else None,
        ready_waited_s=ready["waited_s"], t_fault=t_fault, load_1m_before=load_before, load_1m_after=os.getloadavg()[0], hold_s=hold if kind == "pause" else None,
        unpaused_after_s=None if t_unpaused is None else t_unpaused - t_fault,
        write_gap_s=(first["s"] if first else 0.0), gap_first_failure_after_fault_s=first["first_failure"] - t_fault if first else None,
        gap_start_after_fault_s=first["start"] - t_fault if first else None, first_error_of_kind_after_fault_s=first_of_kind,
        sentinels_switched=sentinels_switched,
        writes_back_after_fault_s=first["end"] - t_fault if first and first.get("end") else None,
        entry_reached_new_primary_s=min([v for v in (first_of_kind.get("NOREPLICAS"),
                                                     first["end"] - t_fault if first and first.get("end") else None)
                                         if v is not None], default=None),
        gaps=len(gaps), failing_total_s=sum((g["s"] or 0) for g in gaps), gap_details=gaps,
        longest_acked_write_s=max((s[1] for s in slow), default=None),
        redundancy_s=None if t_redundant is None else t_redundant - t_fault, redundancy_missing_first_seen_s=seen,
        last_missing=why if t_redundant is None else None, bench_action=bench_action,
        sets_lost=len(new_missing), lost_examples=new_missing[:20], incr_lost=incr_lost,
        acked_writes_lost=len(new_missing) + incr_lost, loaded_keys_lost=loaded_lost, check=dict((k, v) for k, v in checked.items() if k != "missing"),
        engine_events=events)


# -- the data path -----------------------------------------------------------------------------------


def cgroup_cpu_s(paths: list[str]) -> float | None:
    """CPU seconds used so far by these containers (cgroup v1 cpuacct.usage, ns); None if unreadable."""
    try:
        return sum(int(open(p).read()) for p in paths) / 1e9
    except OSError:
        return None


async def cgroup_paths(dockers: dict, nodes: list[dict]) -> list[str]:
    paths = []
    for n in nodes:
        cid = (await (await dockers[n["host"]].containers.get(n["container"])).show())["Id"]
        paths.append(f"/sys/fs/cgroup/cpuacct/redis-addons/{n['host']}/{cid}/cpuacct.usage")
    return paths


async def redis_benchmark(address: str, port: int, tls: list[str], password: str, n: int, clients: int, pipeline: int) -> dict:
    cmd = ["redis-benchmark", "-h", address, "-p", str(port), *tls, "--user", "default", "-a", password, "-t", "get,set",
           "-n", str(n), "-c", str(clients), "-P", str(pipeline), "--csv"]
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"redis-benchmark exited {proc.returncode}: {err.decode().replace(password, '***')[-300:]}")
    rps = {}
    for line in out.decode().splitlines():
        cells = [x.strip('"') for x in line.split(",")]
        if len(cells) >= 5 and cells[0] in ("SET", "GET"):
            rps[cells[0]] = dict(rps=float(cells[1]), avg_ms=float(cells[2]), p50_ms=float(cells[4]),
                                 p95_ms=float(cells[5]) if len(cells) > 5 else None)
    if set(rps) != {"SET", "GET"}:
        raise RuntimeError(f"redis-benchmark printed no SET/GET line: {out.decode()[-300:]}")
    return dict(results=rps, wall_s=time.perf_counter() - t0)


async def data_path(c: ClusterView, dockers: dict, url: str, tls_url: str | None, args) -> dict:
    """redis-benchmark through the entry (plaintext, and over TLS when it serves TLS) and straight to
    the primary (over TLS, the only way in); with the CPU seconds the primary's container, both HAProxy
    containers and redis-benchmark itself used during each run."""
    entry = urlsplit(url)
    nodes = await c.nodes()
    primary = next(n for n in nodes if n["role"] == "data" and n["is_primary"])
    targets = {"entry": (entry.hostname, entry.port, []), "direct": (*node_endpoint(primary), cli_tls(primary, c.ca))}
    if tls_url:
        entry_tls = urlsplit(tls_url)
        targets["entry TLS"] = (entry_tls.hostname, entry_tls.port, ["--tls", "--cacert", str(c.ca)])
    groups = {"redis": await cgroup_paths(dockers, [primary]),
              "haproxy": await cgroup_paths(dockers, [n for n in nodes if n["role"] == "proxy"])}
    samples = []
    names = list(targets)
    load_before = os.getloadavg()[0]
    for rep in range(args.bench_reps):
        for i, pipeline in enumerate(args.pipelines):
            first = (rep + i) % len(names)  # each target goes first in turn
            for target in names[first:] + names[:first]:
                address, port, tls = targets[target]
                before = {k: cgroup_cpu_s(v) for k, v in groups.items()}
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = await redis_benchmark(address, port, tls, c.password, args.bench_requests, args.bench_clients, pipeline)
                after = {k: cgroup_cpu_s(v) for k, v in groups.items()}
                done = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = {k: None if before[k] is None or after[k] is None else after[k] - before[k] for k in groups}
                cpu["redis-benchmark"] = (done.ru_utime + done.ru_stime) - (children.ru_utime + children.ru_stime)
                samples.append(dict(rep=rep, pipeline=pipeline, target=target, cpu_s=cpu, **r))
    client = aioredis.Redis.from_url(url)
    try:
        await client.delete("key:__rand_int__")  # what redis-benchmark's SET wrote
    finally:
        await client.aclose()
    return dict(entry=f"{entry.hostname}:{entry.port}", entry_tls=f"{targets['entry TLS'][0]}:{targets['entry TLS'][1]}" if tls_url else None,
                direct="{}:{} ({})".format(*node_endpoint(primary), primary["host"]),
                direct_tls=bool(primary.get("tls_port")), load_1m=[load_before, os.getloadavg()[0]], requests=args.bench_requests, clients=args.bench_clients, reps=args.bench_reps, pipelines=args.pipelines,
                samples=samples)


# -- one cluster ---------------------------------------------------------------------------------------


async def run_cluster(engine, settings, dockers, name: str, app: str, args, began: float, record: dict) -> None:
    """Provision, load, (data path), writer, faults, final check; fills `record` as it goes (so an
    interrupted run still leaves what was measured)."""
    def say(text: str) -> None:
        print(f"  [{name}] {text} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    requested = await engine.add_addon(app, args.plan)
    addon = requested["addon"]
    record.update(app=app, addon=addon, plan=args.plan, rounds=[])
    await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
    record["provision_s"] = time.monotonic() - t0
    env = await engine.environment(app)
    url = env["REDIS_URL"]
    c = ClusterView(engine, app, addon)
    say(f"{addon} provisioned in {record['provision_s']:.1f} s")
    if name == "anchor":
        record["sentinel_timing"] = await c.sentinel_timing(set_to=(ANCHOR_DOWN_AFTER_MS, ANCHOR_FAILOVER_TIMEOUT_MS))
    else:
        record["sentinel_timing"] = await c.sentinel_timing()
    say(f"sentinels: {[(s['down_after_ms'], s['failover_timeout_ms']) for s in record['sentinel_timing']]}")
    record["data"] = await load_keys(url, args.keys)
    await c.wait_ready(READY_TIMEOUT_S)
    say(f"loaded {args.keys} keys, used_memory {record['data']['used_memory'] / 2**20:.0f} MiB")
    if name == "tuned" and not args.no_data_path:
        record["data_path"] = await data_path(c, dockers, url, env.get("REDIS_TLS_URL"), args)
        say("data path measured")

    timeout = args.redundancy_timeout + (ANCHOR_DOWN_AFTER_MS / 1000 if name == "anchor" else 0)
    record["redundancy_timeout_s"] = timeout
    rounds = args.anchor_rounds if name == "anchor" else args.rounds
    writer = Writer(url, name)
    missing: set[int] = set()
    loaded = dict(keys=args.keys, found=args.keys)  # load_keys wrote them all, acknowledged
    try:
        await writer.start()
        say("writer started")
        for i in range(rounds):
            for kind in ("kill", "pause"):
                label = f"{name} {kind} {i + 1}"
                sample = await fault_round(c, dockers, writer, url, kind, label, timeout, HOLD_S[name], missing, loaded)
                record["rounds"].append(sample)
                if loaded["found"] < args.keys:  # the next round holds ~100 MB again (not measured)
                    await load_keys(url, args.keys)
                    loaded["found"] = args.keys
                    sample["loaded_keys_reloaded_after"] = True
                    say(f"{label}: {args.keys - sample['check']['loaded_keys_found']} loaded keys were missing: loaded again")
                ev = ", ".join(f"{e['type']} {e['at_s']:.1f}" for e in sample["engine_events"])
                first = sample["gap_details"][0]["kinds"] if sample["gap_details"] else {}
                if "NOREPLICAS" in sample["first_error_of_kind_after_fault_s"]:
                    first = dict(first, NOREPLICAS_from_s=sample["first_error_of_kind_after_fault_s"]["NOREPLICAS"])
                say(f"{label}: write gap {s2(sample['write_gap_s'])} s ({sample['gaps']} gap(s), {first}, "
                    f"sentinels {sample['sentinels_switched']}), "
                    f"redundancy {s2(sample['redundancy_s'])} s{' (' + sample['bench_action'] + ')' if sample['bench_action'] else ''}, "
                    f"acked lost {sample['acked_writes_lost']} + loaded keys lost {sample['loaded_keys_lost']}, used_memory {sample['check']['used_memory'] / 2**20:.0f} MiB; "
                    f"engine: {ev}")
        record["timing_after"] = await c.sentinel_timing()
    finally:
        try:
            final = await writer.stop()
        except Exception as e:  # noqa: BLE001
            final = None
            record["writer_error"] = f"{type(e).__name__}: {e}"
        writer.kill()
    if final is not None:
        record["writer"] = {k: v for k, v in final.items() if k not in ("unacked", "gaps", "slow")}
        record["writer"]["writes_per_s"] = final["acks"] / max(1e-9, final["at"] - final["first_ack"]) if final["first_ack"] else None
        checked = await check_writes(url, final, args.keys)
        record["final_check"] = dict((k, v) for k, v in checked.items() if k != "missing") | dict(
            missing=len(checked["missing"]), new_missing_since_last_fault=len(set(checked["missing"]) - missing))
    problem = await remove_addon(engine, app, addon, OP_TIMEOUT_S)
    record["removed"] = problem is None
    record["removal_error"] = problem
    say("removed" if problem is None else f"removal FAILED: {problem}")


# -- the run --------------------------------------------------------------------------------------


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    code = code_state()  # as imported: before anything else can change under the run
    home, settings = temp_settings(env={"REDIS_ADDONS_SCHEDULER_TICK": "0"})  # the watcher keeps its 2 s
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    apps = {"tuned": f"bench-fo-{run_id}", "anchor": f"bench-fo-{run_id}-anchor"}
    clusters: dict[str, dict] = {"tuned": {}, "anchor": {}}
    cleanup: dict = {}
    error = None
    dockers = {h.name: aiodocker.Docker(url=h.docker_url) for h in settings.hosts}
    images = None
    watch = settings.watch_interval_s
    try:
        async with build(settings) as engine:
            images = engine.versions.default.image
            try:
                for name in ("tuned", "anchor"):
                    if name == "anchor" and args.anchor_rounds == 0:
                        continue
                    await run_cluster(engine, settings, dockers, name, apps[name], args, began, clusters[name])
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                errors = []
                for name, app in apps.items():
                    try:
                        left = [a["name"] for a in await engine.addons(app) if a["status"] != "removed"]
                    except Exception:  # noqa: BLE001 - e.g. the app never had an addon
                        left = []
                    for addon in left:
                        for h in settings.hosts:  # a container left paused by an interrupted round
                            for cont in await dockers[h.name].containers.list(
                                    all=True, filters={"label": [f"redis-addons.addon={addon}"]}):
                                if cont._container.get("State") == "paused":
                                    await cont.unpause()
                        if problem := await remove_addon(engine, app, addon, OP_TIMEOUT_S):
                            errors.append(problem)
                cleanup["engine"] = {"errors": errors}
    finally:
        for d in dockers.values():
            await d.close()
        cleanup["leftovers_removed"] = sum([await remove_leftovers(settings, app) for app in apps.values()])
        cleanup["remaining"] = await remaining(settings, run_id)
        shutil.rmtree(home, ignore_errors=True)
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)

    return dict(run_id=run_id, started_at=started_at, duration_s=time.monotonic() - began, image=images, code=code,
                args=dict(rounds=args.rounds, anchor_rounds=args.anchor_rounds, plan=args.plan, keys=args.keys,
                          redundancy_timeout_s=args.redundancy_timeout, bench_requests=args.bench_requests,
                          bench_clients=args.bench_clients, bench_reps=args.bench_reps, pipelines=args.pipelines),
                watch_interval_s=watch, hold_s=HOLD_S,
                tuned_timing=dict(down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=FAILOVER_TIMEOUT_MS),
                anchor_timing=dict(down_after_ms=ANCHOR_DOWN_AFTER_MS, failover_timeout_ms=ANCHOR_FAILOVER_TIMEOUT_MS),
                writer=dict(retry_s=WRITER_RETRY_S, socket_timeout_s=WRITER_SOCKET_TIMEOUT_S),
                clusters=clusters, stopped=error, cleanup=cleanup,
                machine=machine(redis_py=redis.__version__, redis_benchmark=shutil.which("redis-benchmark")))


def summarise(result: dict) -> dict:
    rows = []
    for name, rec in result["clusters"].items():
        for kind in ("kill", "pause"):
            rs = [r for r in rec.get("rounds", []) if r["kind"] == kind]
            if not rs:
                continue
            red = [r["redundancy_s"] for r in rs]
            rows.append(dict(cluster=name, kind=kind, n=len(rs),
                             gap_p50_s=p50([r["write_gap_s"] for r in rs]), gap_p95_s=p95([r["write_gap_s"] for r in rs]),
                             gap_max_s=max(r["write_gap_s"] for r in rs),
                             failing_p50_s=p50([r["failing_total_s"] for r in rs]),
                             lost=sum(r["acked_writes_lost"] for r in rs), lost_per_round=[r["acked_writes_lost"] for r in rs],
                             loaded_lost=sum(r["loaded_keys_lost"] for r in rs),
                             majority_named_p50_s=p50([r["sentinels_switched"].get("named_by_2_s") for r in rs]),
                             entry_reached_p50_s=p50([r["entry_reached_new_primary_s"] for r in rs]),
                             writes_back_p50_s=p50([r["writes_back_after_fault_s"] for r in rs]),
                             redundancy_p50_s=p50(red), redundancy_p95_s=p95(red),
                             not_redundant=sum(1 for x in red if x is None),
                             restarted_by_bench=sum(1 for r in rs if r["bench_action"])))
    path, cpu_rows = {}, {}
    dp = result["clusters"].get("tuned", {}).get("data_path")
    if dp:
        for pipeline in dp["pipelines"]:
            targets_run = sorted({s["target"] for s in dp["samples"]})
            for test in ("SET", "GET"):
                rps = {t: p50([s["results"][test]["rps"] for s in dp["samples"] if s["pipeline"] == pipeline and s["target"] == t])
                       for t in ("entry", "entry TLS", "direct")}
                path[f"{test} P{pipeline}"] = dict(entry_rps=rps["entry"], entry_tls_rps=rps["entry TLS"], direct_rps=rps["direct"],
                                                   direct_tls=dp.get("direct_tls", False), ratio=ratio(rps["entry"], rps["direct"]),
                                                   ratio_tls=ratio(rps["entry TLS"], rps["direct"]))
            for target in targets_run:
                runs = [s for s in dp["samples"] if s["pipeline"] == pipeline and s["target"] == target]
                cpu_rows[f"{target} P{pipeline}"] = dict(
                    wall_s=p50([s["wall_s"] for s in runs]),
                    **{k: p50([s["cpu_s"][k] for s in runs]) for k in ("redis", "haproxy", "redis-benchmark")})
    row = {(r["cluster"], r["kind"]): r for r in rows}
    targets = {}
    if ("tuned", "kill") in row:
        v = row[("tuned", "kill")]["gap_p50_s"]
        targets[f"p50 write gap on a primary kill <= {GAP_TARGET_S:.0f} s (tuned)"] = dict(value=v, passed=v <= GAP_TARGET_S)
    if ("tuned", "pause") in row:
        v = row[("tuned", "pause")]["lost"] + row[("tuned", "pause")]["loaded_lost"]
        targets["0 acknowledged writes lost in the pause cases (tuned)"] = dict(value=v, passed=v == 0)
    if ("anchor", "pause") in row:
        v = row[("anchor", "pause")]["lost"] + row[("anchor", "pause")]["loaded_lost"]
        targets["0 acknowledged writes lost in the pause cases (anchor)"] = dict(value=v, passed=v == 0)
    if path:
        # Both against the same floor, the primary itself (over TLS: its only port).
        floor = "direct over TLS" if dp.get("direct_tls") else "direct"
        for k in ("SET P1", "GET P1"):
            if path[k]["ratio_tls"] is not None:
                v = path[k]["ratio_tls"]
                targets[f"data path {k.split()[0]} entry over TLS/{floor} >= {DATA_PATH_TARGET} (no pipelining)"] = dict(
                    value=v, passed=v >= DATA_PATH_TARGET)
            v = path[k]["ratio"]
            targets[f"data path {k.split()[0]} plaintext entry/{floor} >= {DATA_PATH_TARGET} (no pipelining)"] = dict(
                value=v, passed=v is not None and v >= DATA_PATH_TARGET)
    return dict(table=rows, data_path=path, data_path_cpu=cpu_rows, targets=targets)


def print_report(result: dict, summary: dict) -> None:
    a = result["args"]
    print(f"\nfailover benchmark  run {result['run_id']}  {result['started_at']}  plan {a['plan']}  image {result['image']}  "
          f"({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
    code = result["code"]
    print(f"engine: commit {code['commit']}" + (f" with uncommitted changes to {', '.join(code['uncommitted'])}"
                                                 if code["uncommitted"] else " (no uncommitted engine changes)"))
    print(f"run: tuned {a['rounds']} kills + {a['rounds']} pauses (down-after {result['tuned_timing']['down_after_ms']} ms, "
          f"pause held {result['hold_s']['tuned']:.0f} s); anchor {a['anchor_rounds']} kills + {a['anchor_rounds']} pauses "
          f"(Sentinel defaults, down-after {result['anchor_timing']['down_after_ms']} ms, pause held {result['hold_s']['anchor']:.0f} s); "
          f"engine watcher every {result['watch_interval_s']} s; data {a['keys']} keys x 1 KiB; redundancy timeout "
          f"{a['redundancy_timeout_s']:.0f} s from the fault (+30 s on the anchor)")
    print("writer: separate process, one connection through REDIS_URL, INCR + SET w:<n>, each acknowledged; "
          f"new connection {result['writer']['retry_s'] * 1000:.0f} ms after an error; socket timeout "
          f"{result['writer']['socket_timeout_s']:.0f} s" + (f"\nSTOPPED: {result['stopped']}" if result["stopped"] else "") + "\n")
    header = (f"{'cluster':<7} | {'fault':<5} | {'n':>2} | {'write gap p50 s':>15} | {'p95 s':>6} | {'max s':>6} | "
              f"{'acked writes lost':>17} | {'loaded keys lost':>16} | {'full redundancy p50 s':>21} | {'p95 s':>6} | {'not back':>8}")
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        print(f"{r['cluster']:<7} | {r['kind']:<5} | {r['n']:>2} | {s2(r['gap_p50_s']):>15} | {s2(r['gap_p95_s']):>6} | "
              f"{s2(r['gap_max_s']):>6} | {r['lost']:>17} | {r['loaded_lost']:>16} | {s2(r['redundancy_p50_s']):>21} | {s2(r['redundancy_p95_s']):>6} | "
              f"{r['not_redundant']:>8}")
    print("\nwhere the write gap goes, p50 s from the fault: a majority of Sentinels names another primary -> the entry "
          "sends the writer there (its first NOREPLICAS, or its first acknowledged write) -> writes acknowledged "
          "(the engine has lowered min-replicas-to-write)")
    for r in summary["table"]:
        print(f"  {r['cluster']:<7} {r['kind']:<5}  Sentinels {s2(r['majority_named_p50_s'])}  ->  entry {s2(r['entry_reached_p50_s'])}"
              f"  ->  writes {s2(r['writes_back_p50_s'])}")
    loads = [r["load_1m_before"] for rec in result["clusters"].values() for r in rec.get("rounds", [])]
    if loads:
        print(f"machine load (1-min average) at the faults: p50 {p50(loads):.2f}, max {max(loads):.2f} on {result['machine']['cpus']} CPUs")
    print("(p95: nearest rank, the slowest with fewer than 20; 'not back': full redundancy not reached within the timeout, "
          "the container then started by the bench; such rounds have no redundancy time)")
    for name, rec in result["clusters"].items():
        for r in rec.get("rounds", []):
            kinds = r["gap_details"][0]["kinds"] if r["gap_details"] else {}
            if r.get("first_error_of_kind_after_fault_s", {}).get("NOREPLICAS") is not None:
                kinds = dict(kinds, NOREPLICAS_from_s=r["first_error_of_kind_after_fault_s"]["NOREPLICAS"])
            ev = ", ".join(f"{e['type']} {e['at_s']:.1f}" for e in r["engine_events"])
            print(f"  {r['label']:<15} gap {s2(r['write_gap_s']):>6} s {kinds}; lost {r['acked_writes_lost']} "
                  f"(sets {r['sets_lost']}, incr {r['incr_lost']}), loaded keys lost {r['loaded_keys_lost']}; "
                  f"another primary named by 2 Sentinels {s2(r.get('sentinels_switched', {}).get('named_by_2_s'))}; redundancy {s2(r['redundancy_s'])}"
                  f"{' [' + r['bench_action'] + '; missing: ' + str(r['last_missing']) + ']' if r['bench_action'] else ''}; engine: {ev}")
    if summary["data_path"]:
        dp = result["clusters"]["tuned"]["data_path"]
        print(f"\ndata path: redis-benchmark -t get,set -n {dp['requests']} -c {dp['clients']}, {dp['reps']} runs each, p50; "
              f"entry {dp['entry']} (plaintext; HAProxy speaks TLS to the primary), entry TLS {dp.get('entry_tls')} "
              f"(--tls --cacert, passed through to the primary), direct {dp['direct']}"
              + (" (--tls --cacert: the primary serves TLS only)" if dp.get("direct_tls") else "")
              + ("; machine load (1-min average) before and after: {:.2f}, {:.2f}".format(*dp["load_1m"]) if dp.get("load_1m") else ""))
        rps = (lambda x: "-" if x is None else f"{x:.0f}")
        header = (f"{'test':<8} | {'entry req/s':>11} | {'entry TLS req/s':>15} | {'direct req/s':>12} | "
                  f"{'entry TLS/direct':>16} | {'entry/direct':>12}")
        print(header)
        print("-" * len(header))
        for k, v in summary["data_path"].items():
            print(f"{k:<8} | {rps(v['entry_rps']):>11} | {rps(v.get('entry_tls_rps')):>15} | {rps(v['direct_rps']):>12} | "
                  f"{s2(v.get('ratio_tls')):>16} | {s2(v['ratio']):>12}")
        print(f"CPU seconds per redis-benchmark run (SET then GET, p50; the machine has {result['machine']['cpus']} CPUs):")
        for k, v in summary["data_path_cpu"].items():
            print(f"  {k:<13} wall {s2(v['wall_s'])}; redis {s2(v['redis'])}, both HAProxy {s2(v['haproxy'])}, "
                  f"redis-benchmark {s2(v['redis-benchmark'])}")
    print("\ntargets")
    for name, t in summary["targets"].items():
        value = s2(t["value"]) if isinstance(t["value"], float) else t["value"]
        print(f"  {'PASS' if t['passed'] else 'MISS'}  {name}: {value}")
    for name, rec in result["clusters"].items():
        if rec.get("final_check"):
            f = rec["final_check"]
            print(f"{name}: writer {rec['writer']['acks']} acks, {rec['writer']['failures']} failures, "
                  f"{s2(rec['writer'].get('writes_per_s'))} acks/s; final read-back: {f['sets_acked']} acked SETs, "
                  f"{f['missing']} missing; loaded keys {f['loaded_keys_found']}/{f['loaded_keys']}; counter {f['counter']} >= acked INCRs {f['incr_acks']}: {f['counter_at_least_acked_incrs']}"
                  f"; sentinels after: {[(s['down_after_ms'], s['failover_timeout_ms']) for s in rec.get('timing_after', [])]}")
    print(f"\ncleanup: engine {result['cleanup'].get('engine')}; {remaining_text(result['cleanup']['remaining'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="kills and as many pauses on the tuned cluster")
    parser.add_argument("--anchor-rounds", type=int, default=3, help="kills and as many pauses on the anchor (0: no anchor)")
    parser.add_argument("--plan", default="redis-business-512")
    parser.add_argument("--keys", type=int, default=100_000, help="keys of 1 KiB loaded before the faults")
    parser.add_argument("--redundancy-timeout", type=float, default=120.0,
                        help="s from the fault (plus the anchor's down-after) before full redundancy counts as not reached")
    parser.add_argument("--bench-requests", type=int, default=100_000)
    parser.add_argument("--bench-clients", type=int, default=50)
    parser.add_argument("--bench-reps", type=int, default=3)
    parser.add_argument("--pipelines", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument("--no-data-path", action="store_true")
    parser.add_argument("--results", default=None, help="results file name under bench/results (default failover.json)")
    args_seen = sys.argv[1:]
    results = RESULTS_DIR / next((args_seen[i + 1] for i, x in enumerate(args_seen) if x == "--results" and i + 1 < len(args_seen)),
                                 "failover.json")
    run_bench(parser, bench, summarise, print_report, results)


if __name__ == "__main__":
    main()
