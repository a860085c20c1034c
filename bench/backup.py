"""Benchmark: backing up an addon holding ~200 MB and downloading the backup, against the raw floor
measured in the same run on the same server: `redis-cli --rdb FILE` (DESIGN §9, issue 4).

    .venv/bin/python bench/backup.py [--rounds 3] [--mb 200] [--no-cli] [--no-experiments] [--log-level WARNING]
                                     [--business | --business-only] [--encryption | --encryption-only]

With --business, then --business-only without the Starter case: the backup of a redis-business-1024
addon, which the engine takes on its replica, against `redis-cli --rdb` on that replica
(bench/backup_business.py says how). With --encryption, then --encryption-only: the cost of sealing
archives at rest, each case against the same bytes unsealed (bench/backup_encryption.py says how).

Data: one redis-starter-1024 addon filled with ~200 MB (keys + values + fields, counted as written)
of mixed data in its 5 databases, written with pipelines: random blobs (incompressible), JSON
documents (compressible), user hashes, JSON event lists, sorted sets, counters and session tokens.

Cases (each repeated --rounds times, rounds alternating which side goes first; medians reported):
  backup-create   engine.backups.create(app, "redis") -> wait_for_operation returns "succeeded"
                  (save: BGSAVE; archive: dump.rdb read through the Docker archive API, gzipped,
                  hashed, written and fsynced; record)
  download HTTP   GET /v1/apps/{app}/addons/redis/backups/{id}/archive with the bearer token, from
                  make_app(engine, token) served in this process on 127.0.0.1 (aiohttp AppRunner /
                  TCPSite), read by a plain aiohttp client in a separate process into a file, fsynced
                  (timed in that process from the request to the fsync: interpreter start left out)
  download CLI    `redis-addons --app APP --addon redis backups-download --backup ID --output DIR`
                  in a separate process, timed from spawn to exit (it also hashes what it receives)
  raw             `redis-cli -h ADDR -p PORT --user default --rdb FILE` (password in REDISCLI_AUTH,
                  not in the process list) against the addon's own server: a full sync to a file,
                  fsynced by redis-cli. Three variants: the server as the engine configures it
                  (Redis 7's diskless sync, which first waits repl-diskless-sync-delay = 5 s for
                  more replicas), with that delay set to 0, and with disk-based sync; the server's
                  settings are put back after each. The fastest (an idle wait is no floor) is the
                  one the targets use; the ratio against the first is printed too.
  raw BGSAVE + Docker read   BGSAVE (polled every 5 ms) then /data/dump.rdb read through the
                  Docker archive API (Accept-Encoding: identity) and dropped: the engine's backup
                  minus compression, hash and disk write (shown, not a target)

Throughput = RDB bytes per second: the RDB that redis-cli wrote for raw, the dump.rdb inside the
archive for the engine (the same data reaches the user in both). The archive's own bytes per
second (what crosses the wire on a download) are shown beside it. Target: engine >= 0.8x raw
for backup-create and for download.

Timing wrappers on the engine's objects (the Redis snapshot, the Docker read, the store's gzip
sink; no engine code is changed) and the operation's step times split backup-create. Then, unless
--no-experiments, quick experiments on this run's dump.rdb show where the archive step's time goes
and what would shorten it: the Docker read as the engine first asked for it (aiohttp's default
Accept-Encoding: dockerd then gzips the stream itself) and with Accept-Encoding: identity; each
compressor alone on the tar in memory (zlib levels; `isal` and `zlib_ng` when importable, e.g.
installed with `pip install --target DIR isal zlib-ng` and put on PYTHONPATH; each output checked
to inflate with Python's zlib); SHA-256; a write + fsync; the store's pipeline (Docker read ->
compress in a worker thread -> write -> fsync) replayed per compressor and chunk size; and the
RDB fetched over the replication protocol (what redis-cli --rdb does) and compressed as it streams.

Prints a table and writes every sample to bench/results/backup.json. The addon is removed through
the engine and the temporary home and files are deleted in a `finally`; both hosts are checked to
hold nothing of this run afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import json
import os
import random
import secrets
import shutil
import string
import sys
import tarfile
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiodocker
from aiohttp import web

# common first: importing it puts the repository on sys.path for the packages below.
from common import (REPO, RESULTS_DIR, client_for, machine, p50, ratio, remaining_text, remove_addon,
                    run_bench, s2, step_timings, temp_settings, wait_succeeded)

import adapters.storage.backup_files as backup_files
from backup_business import bench_business, print_business, summarise_business, sweep_run
from backup_encryption import bench_encryption, print_encryption, summarise_encryption
from adapters.http.app import make_app
from engine import build

PLAN = "redis-starter-1024"
RESULTS = RESULTS_DIR / "backup.json"
CLI = REPO / ".venv" / "bin" / "redis-addons"
TARGET = 0.8  # engine throughput >= 0.8x raw
MB = 1_000_000  # throughputs and sizes in MB (10^6 bytes)
OP_TIMEOUT_S = 300.0
CHILD_TIMEOUT_S = 300.0
RDB_FILE = "/data/dump.rdb"
PIPELINE_BYTES = 4 * MB  # the loader sends pipelines of about this many bytes
LOADERS = 3  # pipelines in flight while loading


def mbs(nbytes: float | None, seconds: float | None) -> float | None:
    return None if not nbytes or not seconds else nbytes / MB / seconds


# -- data ---------------------------------------------------------------------------------------

# Share of the payload bytes per kind of value (key names, values and hash fields all count).
MIX = {"blob": 0.35, "doc": 0.30, "user": 0.15, "feed": 0.10, "rank": 0.05, "small": 0.05}


class Data:
    """Realistic values: shapes and sizes from a seeded generator; blobs, tokens from os.urandom."""

    def __init__(self, seed: int = 4):
        self.rng = random.Random(seed)
        letters = string.ascii_lowercase
        self.words = ["".join(self.rng.choices(letters, k=self.rng.randint(2, 10))) for _ in range(5000)]
        self.cities = [w.capitalize() for w in self.words[:300]]
        self.events = ["page_view", "click", "purchase", "login", "logout", "signup", "search", "add_to_cart"]

    def text(self, n_words: int) -> str:
        return " ".join(self.rng.choices(self.words, k=n_words))

    def blob(self, i: int) -> tuple[str, bytes]:
        return f"blob:{i}", os.urandom(self.rng.randint(2048, 32768))

    def doc(self, i: int) -> tuple[str, bytes]:
        r = self.rng
        doc = {"id": i, "type": r.choice(["article", "product", "comment", "ticket"]), "title": self.text(8),
               "author": {"id": r.randint(1, 10**6), "name": self.text(2)}, "tags": r.choices(self.words, k=5),
               "created_at": f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
               "score": round(r.random() * 100, 3), "body": self.text(r.randint(60, 1200))}
        return f"doc:{i}", json.dumps(doc).encode()

    def user(self, i: int) -> tuple[str, dict]:
        r = self.rng
        return f"user:{i}", {
            "name": self.text(2), "email": f"{r.choice(self.words)}.{r.choice(self.words)}@example.com",
            "city": r.choice(self.cities), "plan": r.choice(["free", "pro", "team"]), "visits": str(r.randint(0, 5000)),
            "created_at": str(1_700_000_000 + r.randint(0, 10**8)), "last_login": str(1_790_000_000 + r.randint(0, 10**6)),
            "bio": self.text(r.randint(10, 60)), "avatar": secrets.token_hex(16),
            "prefs": json.dumps({"lang": r.choice(["en", "fr", "de"]), "theme": r.choice(["dark", "light"])}),
        }

    def feed(self, i: int) -> tuple[str, list[bytes]]:
        r = self.rng
        items = [json.dumps({"event": r.choice(self.events), "at": 1_790_000_000 + r.randint(0, 10**6),
                             "path": "/" + "/".join(r.choices(self.words, k=3)), "ms": r.randint(1, 900)}).encode()
                 for _ in range(r.randint(20, 100))]
        return f"feed:{i}", items

    def rank(self, i: int) -> tuple[str, dict]:
        r = self.rng
        return f"rank:{i}", {f"member:{r.randint(1, 10**7)}": r.random() * 1000 for _ in range(r.randint(50, 200))}

    def small(self, i: int) -> tuple[str, bytes, int | None]:
        if i % 2:
            return f"cnt:{i}", str(self.rng.randint(0, 10**9)).encode(), None
        return f"sess:{i}", secrets.token_hex(32).encode(), 86_400  # with a TTL, as sessions have


def payload_size(kind: str, key: str, value) -> int:
    if kind == "user":
        return len(key) + sum(len(f) + len(v) for f, v in value.items())
    if kind == "feed":
        return len(key) + sum(len(x) for x in value)
    if kind == "rank":
        return len(key) + sum(len(m) + 8 for m in value)
    return len(key) + len(value)


async def load(url: str, total: int) -> dict:
    """Write `total` payload bytes in the MIX shares, spread over the 5 databases, in pipelines."""
    data = Data()
    t0 = time.perf_counter()
    clients = {db: client_for(url, db) for db in range(5)}
    written = {k: 0 for k in MIX}
    keys = {k: 0 for k in MIX}
    in_flight: set[asyncio.Task] = set()
    try:
        for kind, share in MIX.items():
            goal = int(total * share)
            while written[kind] < goal:
                db = (keys[kind] // 1000) % 5
                pipe = clients[db].pipeline(transaction=False)
                batch = 0
                while batch < PIPELINE_BYTES and written[kind] < goal:
                    i = keys[kind]
                    if kind == "small":
                        key, value, ttl = data.small(i)
                        pipe.set(key, value, ex=ttl)
                    else:
                        key, value = getattr(data, kind)(i)
                        if kind == "user":
                            pipe.hset(key, mapping=value)
                        elif kind == "feed":
                            pipe.rpush(key, *value)
                        elif kind == "rank":
                            pipe.zadd(key, value)
                        else:
                            pipe.set(key, value)
                    n = payload_size(kind, key, value)
                    batch += n
                    written[kind] += n
                    keys[kind] += 1
                if len(in_flight) >= LOADERS:
                    done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                in_flight.add(asyncio.create_task(pipe.execute()))
        for task in asyncio.as_completed(in_flight):
            await task
        info = await clients[0].info("memory")
        keyspace = await clients[0].info("keyspace")
    finally:
        for c in clients.values():
            await c.aclose()
    return dict(payload_bytes=sum(written.values()), by_kind=dict(bytes=written, keys=keys),
                keys=sum(int(v["keys"]) for v in keyspace.values()), used_memory=int(info["used_memory"]),
                load_s=time.perf_counter() - t0)


# -- the raw floor ------------------------------------------------------------------------------


async def run(argv: list[str], env: dict | None = None, timeout: float = CHILD_TIMEOUT_S) -> tuple[float, bytes, bytes]:
    """Run a child process (ours, waited for by its PID); return (wall seconds, stdout, stderr)."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace').strip()[-500:]}")
    return wall, out, err


# redis-cli --rdb asks the server for a full sync. The engine's redis.conf leaves the replication
# settings at Redis 7's defaults: a diskless sync that waits repl-diskless-sync-delay (5 s) for more
# replicas before it starts. That wait is no work, so the floor is the fastest variant below; the
# server's own settings are put back after each one.
RAW_VARIANTS = {
    "as configured": {},
    "delay 0": {"repl-diskless-sync-delay": "0"},
    "disk-based": {"repl-diskless-sync": "no"},
}
RAW_LABELS = {
    "as configured": "redis-cli --rdb, server as configured (diskless, 5 s delay)",
    "delay 0": "redis-cli --rdb, repl-diskless-sync-delay 0",
    "disk-based": "redis-cli --rdb, repl-diskless-sync no",
}


async def raw_rdb(node: dict, path: Path, variant: str) -> dict:
    """redis-cli --rdb of `node`: over TLS with the CA when its dict says so (a Business node's "tls",
    "cli_tls": it serves TLS only), the way the engine's own connection reaches it."""
    client = client_for(node["url"], **node.get("tls", {}))
    try:
        config = RAW_VARIANTS[variant]
        before = {k: (await client.config_get(k))[k] for k in config}
        for k, v in config.items():
            await client.config_set(k, v)
        try:
            env = {**os.environ, "REDISCLI_AUTH": node["password"]}
            wall, out, _ = await run(["redis-cli", "-h", node["address"], "-p", str(node["port"]), *node.get("cli_tls", []),
                                      "--user", "default", "--rdb", str(path)], env=env)
        finally:
            for k, v in before.items():
                await client.config_set(k, v)
    finally:
        await client.aclose()
    size = path.stat().st_size
    path.unlink()
    return dict(variant=variant, s=wall, rdb_bytes=size, said=out.decode(errors="replace").strip().splitlines()[-1:])


async def bgsave(url: str) -> float:
    """BGSAVE, then INFO persistence every 5 ms until it has ended; seconds."""
    client = client_for(url)
    try:
        while int((await client.info("persistence"))["rdb_bgsave_in_progress"]):
            await asyncio.sleep(0.05)  # one started by the save rules: not ours to time
        t0 = time.perf_counter()
        await client.bgsave()
        while int((await client.info("persistence"))["rdb_bgsave_in_progress"]):
            await asyncio.sleep(0.005)
        took = time.perf_counter() - t0
        if (await client.info("persistence")).get("rdb_last_bgsave_status") != "ok":
            raise RuntimeError("raw BGSAVE failed")
        return took
    finally:
        await client.aclose()


# aiohttp asks for `Accept-Encoding: gzip, deflate` unless told otherwise, and dockerd then gzips the
# archive stream itself (Go's compress/gzip) for the client to inflate: IDENTITY asks for the plain tar.
IDENTITY = {"Accept-Encoding": "identity"}


async def docker_read(docker: aiodocker.Docker, container: str, chunk: int = 1 << 20, keep: bool = False,
                      identity: bool = True) -> dict:
    """dump.rdb through the Docker archive API (a tar stream), dropped or kept in memory."""
    t0, n, kept = time.perf_counter(), 0, []
    async with docker._query(f"containers/{container}/archive", params={"path": RDB_FILE},
                             headers=IDENTITY if identity else None) as response:
        encoding = response.headers.get("Content-Encoding", "identity")
        async for part in response.content.iter_chunked(chunk):
            n += len(part)
            if keep:
                kept.append(part)
    return dict(s=time.perf_counter() - t0, tar_bytes=n, content_encoding=encoding, tar=b"".join(kept) if keep else None)


async def raw_round(node: dict, docker: aiodocker.Docker, workdir: Path, label: str) -> dict:
    rdb = {v: await raw_rdb(node, workdir / f"raw-{label}.rdb", v) for v in RAW_VARIANTS}
    save_s = await bgsave(node["url"])
    read = await docker_read(docker, node["container"])
    return dict(label=label, rdb=rdb, bgsave_s=save_s, docker_read_s=read["s"], docker_tar_bytes=read["tar_bytes"],
                docker_read_encoding=read["content_encoding"], bgsave_docker_read_s=save_s + read["s"])


# -- the engine ---------------------------------------------------------------------------------


class Probe:
    """Timing wrappers on the engine's objects and on the store's gzip sink (restored afterwards)."""

    def __init__(self, engine):
        self.calls: list[dict] = []
        self._undo = []
        redis_admin, runtime = engine.redis, engine.runtime
        original_snapshot, original_read = redis_admin.snapshot, runtime.read_file

        async def snapshot(*args, **kwargs):
            w0, t0 = time.time(), time.perf_counter()
            try:
                return await original_snapshot(*args, **kwargs)
            finally:
                self.calls.append(dict(name="redis.snapshot", at=w0, s=time.perf_counter() - t0))

        def read_file(*args, **kwargs):
            async def timed():
                w0, t0, waited, n, first = time.time(), time.perf_counter(), 0.0, 0, b""
                chunks = original_read(*args, **kwargs).__aiter__()
                try:
                    while True:
                        a = time.perf_counter()
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                        waited += time.perf_counter() - a
                        if len(first) < 512:
                            first += chunk[:512 - len(first)]
                        n += len(chunk)
                        yield chunk
                finally:
                    self.calls.append(dict(name="docker.read_file", at=w0, s=time.perf_counter() - t0,
                                           waiting_for_docker_s=waited, tar_bytes=n, rdb_bytes=tar_member_size(first)))
            return timed()

        redis_admin.snapshot, runtime.read_file = snapshot, read_file
        self._undo += [(redis_admin, "snapshot", None), (runtime, "read_file", None)]
        sink = backup_files._GzipSink
        for attr in ("add", "finish"):
            self._time_method(sink, attr)

    def _time_method(self, cls, attr: str) -> None:
        original = getattr(cls, attr)
        calls = self.calls

        def timed(self_, *args, **kwargs):
            w0, t0 = time.time(), time.perf_counter()
            try:
                return original(self_, *args, **kwargs)
            finally:
                calls.append(dict(name=f"gzip_sink.{attr}", at=w0, s=time.perf_counter() - t0))

        setattr(cls, attr, timed)
        self._undo.append((cls, attr, original))

    def restore(self) -> None:
        for obj, attr, original in self._undo:
            if original is None:
                delattr(obj, attr)  # the instance attribute goes; the class's method shows again
            else:
                setattr(obj, attr, original)

    def between(self, a: float, b: float) -> dict:
        out: dict[str, dict] = {}
        for c in self.calls:
            if a <= c["at"] <= b:
                row = out.setdefault(c["name"], dict(n=0, total_s=0.0))
                row["n"] += 1
                row["total_s"] += c["s"]
                for k in ("waiting_for_docker_s", "tar_bytes", "rdb_bytes"):
                    if k in c:
                        row[k] = c[k]
        return out


def tar_member_size(header: bytes) -> int | None:
    """The size of the first member of a tar stream, from its 512-byte header."""
    try:
        info = tarfile.TarInfo.frombuf(header[:512], tarfile.ENCODING, "surrogateescape")
    except tarfile.TarError:
        return None
    return info.size if info.isfile() else None


async def engine_create(engine, probe: Probe, app: str, addon: str) -> dict:
    wall_t0, t0 = time.time(), time.perf_counter()
    requested = await engine.backups.create(app, "redis")
    t_requested = time.perf_counter()
    op = await engine.wait_for_operation(requested["operation_id"], timeout=OP_TIMEOUT_S)
    t1, wall_t1 = time.perf_counter(), time.time()
    if op["status"] != "succeeded":
        raise RuntimeError(f"backup of {addon} ended {op['status']}: {op.get('error')}")
    row = await engine.backups.get(app, "redis", requested["backup_id"])
    if row["status"] != "done":
        raise RuntimeError(f"backup {row['id']} is {row['status']} after its operation succeeded")
    effects = probe.between(wall_t0, wall_t1)
    read = effects.get("docker.read_file", {})
    return dict(case="engine", s=t1 - t0, create_call_s=t_requested - t0, backup_id=row["id"], name=row["name"],
                archive_bytes=int(row["size"]), sha256=row["sha256"], rdb_bytes=read.get("rdb_bytes"),
                tar_bytes=read.get("tar_bytes"), effects=effects,
                steps=await step_timings(engine, addon, requested["operation_id"]), row=row)


HTTP_CLIENT = r"""
import asyncio, json, os, sys, time
import aiohttp

async def main(url, token, path):
    t0 = time.perf_counter()
    first = None
    n = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=120)) as http:
        async with http.get(url, headers={"Authorization": "Bearer " + token}) as response:
            if response.status != 200:
                sys.exit(f"HTTP {response.status}: {(await response.text())[:300]}")
            with open(path, "wb") as out:
                async for chunk in response.content.iter_chunked(1 << 20):
                    if first is None:
                        first = time.perf_counter() - t0
                    out.write(chunk)
                    n += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            length = int(response.headers["Content-Length"])
    print(json.dumps({"s": time.perf_counter() - t0, "bytes": n, "content_length": length, "first_byte_s": first}))

asyncio.run(main(*sys.argv[1:4]))
"""


async def http_download(base: str, token: str, app: str, backup: dict, workdir: Path, label: str) -> dict:
    path = workdir / f"http-{label}.tar.gz"
    url = f"{base}/v1/apps/{app}/addons/redis/backups/{backup['backup_id']}/archive"
    wall, out, _ = await run([sys.executable, "-c", HTTP_CLIENT, url, token, str(path)])
    got = json.loads(out)
    if got["bytes"] != backup["archive_bytes"]:
        raise RuntimeError(f"HTTP download got {got['bytes']} bytes, the archive has {backup['archive_bytes']}")
    path.unlink()
    return dict(s=got["s"], wall_s=wall, bytes=got["bytes"], first_byte_s=got["first_byte_s"])


async def cli_download(base: str, token: str, home: Path, app: str, backup: dict, workdir: Path, label: str) -> dict:
    out_dir = workdir / f"cli-{label}"
    out_dir.mkdir()
    env = {**os.environ, "REDIS_ADDONS_API": base, "REDIS_ADDONS_TOKEN": token, "REDIS_ADDONS_HOME": str(home)}
    wall, _, _ = await run([str(CLI), "--app", app, "--addon", "redis", "backups-download", "--backup",
                            backup["backup_id"], "--output", str(out_dir)], env=env)
    path = out_dir / backup["name"]
    size = path.stat().st_size
    if size != backup["archive_bytes"]:
        raise RuntimeError(f"the CLI downloaded {size} bytes, the archive has {backup['archive_bytes']}")
    shutil.rmtree(out_dir)
    return dict(s=wall, bytes=size)


async def cli_startup(home: Path) -> float:
    """`redis-addons --help`: the interpreter and imports a CLI download pays before its request."""
    wall, _, _ = await run([str(CLI), "--help"], env={**os.environ, "REDIS_ADDONS_HOME": str(home)})
    return wall


async def read_stored(engine, row: dict) -> dict:
    """The stored archive read through engine.backups.read_archive and dropped: the download's
    source alone, without HTTP."""
    t0, n = time.perf_counter(), 0
    async for chunk in engine.backups.read_archive(row):
        n += len(chunk)
    return dict(s=time.perf_counter() - t0, bytes=n)


async def engine_round(engine, probe: Probe, app: str, addon: str, base: str, token: str, home: Path,
                       workdir: Path, label: str, use_cli: bool) -> dict:
    created = await engine_create(engine, probe, app, addon)
    http = await http_download(base, token, app, created, workdir, label)
    cli = await cli_download(base, token, home, app, created, workdir, label) if use_cli else None
    stored = await read_stored(engine, created["row"])
    return dict(label=label, create=created, http=http, cli=cli, stored_read=stored)


# -- experiments: where the archive step's time goes, and what would shorten it -----------------


def compressors() -> dict:
    """name -> factory of an object with compress(bytes) and flush() producing a gzip stream."""
    found = {
        "zlib-1 (stdlib, before isal)": lambda: zlib.compressobj(1, zlib.DEFLATED, 31),
        "zlib-6": lambda: zlib.compressobj(6, zlib.DEFLATED, 31),
    }
    for module, levels in (("isal.isal_zlib", (0, 1, 2)), ("zlib_ng.zlib_ng", (1,))):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for level in levels:
            found[f"{module.split('.')[0]}-{level}"] = (lambda m=mod, lv=level: m.compressobj(lv, m.DEFLATED, 31))
    found["none (tar stored as is)"] = None
    return found


def compress_all(factory, data: bytes, chunk: int) -> tuple[float, int, bytes]:
    t0 = time.perf_counter()
    z = factory()
    parts = [z.compress(data[i:i + chunk]) for i in range(0, len(data), chunk)]
    parts.append(z.flush())
    out = b"".join(parts)
    return time.perf_counter() - t0, len(out), out


class Sink:
    """The store's _GzipSink with a pluggable compressor: compress, hash, write, fsync at the end."""

    def __init__(self, path: Path, factory):
        self.file = open(path, "wb")
        self.zip = factory() if factory else None
        self.digest, self.size = hashlib.sha256(), 0

    def _write(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            self.digest.update(data)
            self.size += len(data)

    def add(self, chunk: bytes) -> None:
        self._write(self.zip.compress(chunk) if self.zip else chunk)

    def finish(self) -> int:
        if self.zip:
            self._write(self.zip.flush())
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return self.size


async def pipeline(docker: aiodocker.Docker, container: str, path: Path, factory, chunk: int, identity: bool) -> dict:
    """The archive step replayed: Docker read -> worker-thread compress (one chunk in flight, as in
    FileBackupStore.write_archive) -> write -> fsync."""
    t0 = time.perf_counter()
    sink = await asyncio.to_thread(Sink, path, factory)
    pending = None
    async with docker._query(f"containers/{container}/archive", params={"path": RDB_FILE},
                             headers=IDENTITY if identity else None) as response:
        async for part in response.content.iter_chunked(chunk):
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(sink.add, part))
    if pending is not None:
        await pending
    size = await asyncio.to_thread(sink.finish)
    took = time.perf_counter() - t0
    path.unlink()
    return dict(s=took, archive_bytes=size)


def inflates_to(archive: bytes, tar: bytes) -> bool:
    """Does Python's zlib (what the store's read_tar and a user's tar xzf use) give the tar back?"""
    unzip = zlib.decompressobj(31)
    out = unzip.decompress(archive) + unzip.flush()
    return unzip.eof and not unzip.unused_data and hashlib.sha256(out).digest() == hashlib.sha256(tar).digest()


async def sync_stream(node: dict, path: Path, factory, chunk: int = 1 << 20) -> dict:
    """The RDB fetched as redis-cli --rdb fetches it (REPLCONF rdb-only 1, SYNC: the server forks and
    streams it), compressed in a worker thread as it arrives (one chunk in flight), hashed, written,
    fsynced: a backup without BGSAVE-then-read and without Docker in the data path."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(node["address"], node["port"], limit=4 << 20)
    sink = await asyncio.to_thread(Sink, path, factory)
    pending, n = None, 0
    try:
        def command(*words: str) -> bytes:
            return b"".join([f"*{len(words)}\r\n".encode()] + [f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words])

        for words in (("AUTH", "default", node["password"]), ("REPLCONF", "rdb-only", "1")):
            writer.write(command(*words))  # one at a time: SYNC is refused while replies are pending
            await writer.drain()
            line = await reader.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"{words[0]} refused before SYNC: {line[:200]!r}")
        writer.write(command("SYNC"))
        await writer.drain()
        line = b"\n"
        while line == b"\n":  # keepalive newlines while the server prepares the transfer
            line = await reader.readline()
        if not line.startswith(b"$"):
            raise RuntimeError(f"unexpected SYNC answer {line[:200]!r}")
        header = line[1:].strip()
        mark, left = (header[4:], None) if header.startswith(b"EOF:") else (None, int(header))
        tail = b""
        while True:
            data = await reader.read(chunk if left is None else min(chunk, left))
            if not data:
                if left:
                    raise RuntimeError("the server closed the sync early")
                break
            if mark is not None:  # diskless: the payload ends with the 40-byte mark
                data = tail + data
                if data.endswith(mark):
                    data, tail = data[:-len(mark)], b""
                    done = True
                else:
                    data, tail = data[:-len(mark)], data[-len(mark):]
                    done = False
            else:
                left -= len(data)
                done = left == 0
            n += len(data)
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(sink.add, data))
            if done:
                break
        if pending is not None:
            await pending
        size = await asyncio.to_thread(sink.finish)
    finally:
        writer.close()
    took = time.perf_counter() - t0
    path.unlink()
    return dict(s=took, rdb_bytes=n, archive_bytes=size, diskless=mark is not None)


async def sync_experiments(node: dict, workdir: Path, floor_s: float | None) -> list[dict]:
    client = client_for(node["url"])
    try:
        before = (await client.config_get("repl-diskless-sync-delay"))["repl-diskless-sync-delay"]
        await client.config_set("repl-diskless-sync-delay", "0")
        rows = []
        factories = compressors()
        for name in ("zlib-1 (stdlib, before isal)", "isal-1", "none (tar stored as is)"):
            if name not in factories:
                continue
            r = await sync_stream(node, workdir / "sync-test.bin", factories[name])
            rows.append(dict(compressor=name.replace("tar stored", "RDB stored"), **r, rdb_mb_s=mbs(r["rdb_bytes"], r["s"]),
                             create_ratio_estimate=ratio(floor_s, r["s"])))
    finally:
        await client.config_set("repl-diskless-sync-delay", before)
        await client.aclose()
    return rows


async def experiments(node: dict, docker: aiodocker.Docker, workdir: Path, rdb_bytes: int, floor_s: float | None,
                      bgsave_s: float | None) -> dict:
    out: dict = {}
    negotiated = await docker_read(docker, node["container"], identity=False)
    read = await docker_read(docker, node["container"], keep=True)
    tar = read.pop("tar")
    out["docker_read"] = {
        "as the engine first asked (aiohttp's default Accept-Encoding)": dict(
            s=negotiated["s"], content_encoding=negotiated["content_encoding"], mb_s=mbs(negotiated["tar_bytes"], negotiated["s"])),
        "Accept-Encoding: identity": dict(s=read["s"], content_encoding=read["content_encoding"], mb_s=mbs(len(tar), read["s"])),
    }
    out["tar_bytes"] = len(tar)
    rows = {}
    store_archive = None
    for name, factory in compressors().items():
        if factory is None:
            continue
        took, size, data = await asyncio.to_thread(compress_all, factory, tar, backup_files.CHUNK)
        rows[name] = dict(s=took, mb_s=mbs(len(tar), took), out_bytes=size, out_of_rdb=size / rdb_bytes,
                          zlib_inflates_it=True if name.startswith("zlib") else await asyncio.to_thread(inflates_to, data, tar))
        if name.startswith("zlib-1"):
            store_archive = data
        del data
    out["compress_in_memory"] = rows
    t0 = time.perf_counter()
    hashlib.sha256(store_archive).hexdigest()
    out["sha256"] = dict(s=time.perf_counter() - t0, bytes=len(store_archive))
    path = workdir / "write-test.bin"

    def write_fsync():
        with open(path, "wb") as f:
            for i in range(0, len(store_archive), backup_files.CHUNK):
                f.write(store_archive[i:i + backup_files.CHUNK])
            f.flush()
            os.fsync(f.fileno())

    t0 = time.perf_counter()
    await asyncio.to_thread(write_fsync)
    out["write_fsync"] = dict(s=time.perf_counter() - t0, bytes=len(store_archive))
    path.unlink()
    del tar, store_archive

    cases = [("zlib-1 (stdlib, before isal)", backup_files.CHUNK, False)]
    for name in compressors():
        for chunk in ((backup_files.CHUNK, 4 << 20) if name.startswith(("zlib-1", "isal-1")) else (backup_files.CHUNK,)):
            cases.append((name, chunk, True))
    factories = compressors()
    replays = []
    for name, chunk, identity in cases:
        r = await pipeline(docker, node["container"], workdir / "pipeline-test.bin", factories[name], chunk, identity)
        # What backup-create would take with this archive step: this run's raw BGSAVE plus the step.
        est = None if bgsave_s is None else bgsave_s + r["s"]
        replays.append(dict(compressor=name, chunk_mib=chunk >> 20, docker_encoding="identity" if identity else "gzip",
                            s=r["s"], archive_bytes=r["archive_bytes"], archive_of_rdb=r["archive_bytes"] / rdb_bytes,
                            rdb_mb_s=mbs(rdb_bytes, r["s"]), bgsave_plus_step_s=est,
                            create_ratio_estimate=ratio(floor_s, est)))
    out["archive_step_replays"] = replays
    out["sync_stream"] = await sync_experiments(node, workdir, floor_s)
    return out


# -- the run ------------------------------------------------------------------------------------


async def serve(engine, token: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(engine, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def bench(args) -> dict:
    run_id = secrets.token_hex(4)
    app = f"bench-bk-{run_id}"
    home, settings = temp_settings("redis-addons-bench-backup-", {"REDIS_ADDONS_SCHEDULER_TICK": "0"})
    workdir = Path(tempfile.mkdtemp(prefix="redis-addons-bench-backup-files-"))
    use_cli = CLI.exists() and not args.no_cli
    started_at = datetime.now(timezone.utc).isoformat()
    began = time.monotonic()
    token = secrets.token_urlsafe(32)
    rounds: list[dict] = []
    orders: list[list[str]] = []
    result: dict = dict(run_id=run_id, app=app, started_at=started_at, plan=PLAN, target=TARGET, rounds=rounds,
                        orders=orders, cli=str(CLI) if use_cli else None, machine=machine())
    cleanup: dict = {}
    addon = None
    probe = None
    runner = None
    docker = None
    error = None
    try:
        async with build(settings) as engine:
            try:
                result["image"] = engine.versions.default.image
                requested = await engine.add_addon(app, PLAN)
                addon = requested["addon"]
                await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
                row = await engine.addon(app, addon)
                url = (await engine.environment(app))["REDIS_URL"]
                parts = urlsplit(url)
                host = next(h for h in settings.hosts if h.name == row["host"])
                docker = aiodocker.Docker(url=host.docker_url)
                running = await docker.containers.list(filters={"label": [f"redis-addons.addon={addon}"]})
                if len(running) != 1:
                    raise RuntimeError(f"{len(running)} running containers of {addon} on {host.name}, expected 1")
                node = dict(url=url, address=parts.hostname, port=parts.port, password=unquote(parts.password or ""),
                            host=row["host"], container=running[0]._container["Names"][0].lstrip("/"))
                result["node"] = {k: v for k, v in node.items() if k not in ("url", "password")}
                print(f"  loading ~{args.mb} MB into {addon} ...", file=sys.stderr, flush=True)
                result["data"] = await load(url, args.mb * MB)
                print(f"  loaded {result['data']['payload_bytes'] / MB:.0f} MB in {result['data']['keys']} keys "
                      f"({result['data']['load_s']:.1f} s)", file=sys.stderr, flush=True)
                probe = Probe(engine)
                runner, base = await serve(engine, token)
                if use_cli:
                    result["cli_startup_s"] = [await cli_startup(home) for _ in range(2)]
                for i in range(args.rounds):
                    order = ["engine", "raw"] if i % 2 == 0 else ["raw", "engine"]
                    orders.append(order)
                    sample: dict = dict(round=i + 1)
                    for case in order:
                        label = f"{case}-{i + 1}"
                        if case == "engine":
                            sample["engine"] = await engine_round(engine, probe, app, addon, base, token, home, workdir,
                                                                  label, use_cli)
                        else:
                            sample["raw"] = await raw_round(node, docker, workdir, label)
                    rounds.append(sample)
                    e, r = sample["engine"], sample["raw"]
                    print(f"  round {i + 1} {order}: create {e['create']['s']:.2f} s, http {e['http']['s']:.2f} s"
                          + (f", cli {e['cli']['s']:.2f} s" if e["cli"] else "")
                          + "; redis-cli --rdb " + ", ".join(f"{v} {x['s']:.2f} s" for v, x in r["rdb"].items())
                          + f"; BGSAVE {r['bgsave_s']:.2f} s + docker read {r['docker_read_s']:.2f} s",
                          file=sys.stderr, flush=True)
                if not args.no_experiments:
                    probe.restore()
                    probe_calls, probe = probe.calls, None
                    result["probe_calls"] = len(probe_calls)
                    floor = raw_floor(rounds)
                    print("  experiments ...", file=sys.stderr, flush=True)
                    result["experiments"] = await experiments(
                        node, docker, workdir, int(floor["rdb_bytes"]), floor["s"], p50([s["raw"]["bgsave_s"] for s in rounds]))
            except BaseException as e:
                error = f"{type(e).__name__}: {e}"
                raise
            finally:
                if runner is not None:
                    await runner.cleanup()
                if probe is not None:
                    probe.restore()
                if docker is not None:
                    await docker.close()
                if addon is not None:
                    cleanup["engine_removal"] = await remove_addon(engine, app, addon, OP_TIMEOUT_S) or "succeeded"
    finally:
        await sweep_run(settings, app, run_id, (home, workdir), cleanup)
        result["cleanup"] = cleanup
        result["duration_s"] = time.monotonic() - began
        if error:
            print(f"run stopped: {error}; cleanup: {json.dumps(cleanup)}", file=sys.stderr)
    return result


def raw_floor(rounds: list[dict]) -> dict:
    """p50 of each redis-cli --rdb variant; the floor is the fastest."""
    per = {v: dict(s=p50([r["raw"]["rdb"][v]["s"] for r in rounds]), rdb_bytes=p50([r["raw"]["rdb"][v]["rdb_bytes"] for r in rounds]))
           for v in RAW_VARIANTS}
    for v in per.values():
        v["mb_s"] = mbs(v["rdb_bytes"], v["s"])
    best = min(per, key=lambda v: per[v]["s"])
    return dict(variant=best, label=RAW_LABELS[best], **per[best], variants=per)


def summarise(result: dict) -> dict:
    rounds = result["rounds"]
    eng = [s["engine"] for s in rounds]
    floor = raw_floor(rounds)
    configured = floor["variants"]["as configured"]
    rdb_eng = p50([e["create"]["rdb_bytes"] or e["create"]["tar_bytes"] for e in eng])
    archive = p50([e["create"]["archive_bytes"] for e in eng])

    def row(case: str, times: list[float], wire: float | None) -> dict:
        t = p50(times)
        thr = mbs(rdb_eng, t)
        r = ratio(thr, floor["mb_s"])
        return dict(case=case, n=len(times), engine_s=t, raw_s=floor["s"], engine_mb_s=thr, raw_mb_s=floor["mb_s"],
                    wire_mb_s=mbs(wire, t), ratio=r, passed=None if r is None else r >= TARGET,
                    ratio_vs_as_configured=ratio(thr, configured["mb_s"]))

    table = [row("backup-create", [e["create"]["s"] for e in eng], None),
             row("download HTTP", [e["http"]["s"] for e in eng], archive)]
    if eng and all(e["cli"] for e in eng):
        table.append(row("download CLI", [e["cli"]["s"] for e in eng], archive))
    raw = [s["raw"] for s in rounds]
    parts = dict(bgsave_s=p50([r["bgsave_s"] for r in raw]), docker_read_s=p50([r["docker_read_s"] for r in raw]),
                 bgsave_docker_read_s=p50([r["bgsave_docker_read_s"] for r in raw]),
                 docker_read_encoding=raw[0]["docker_read_encoding"] if raw else None)
    parts["engine_create_over_it"] = ratio(table[0]["engine_s"], parts["bgsave_docker_read_s"])
    steps = {}
    for name in ("save", "archive", "record"):
        steps[name] = dict(s=p50([e["create"]["steps"]["steps"].get(name, {}).get("duration_s") for e in eng]),
                           gap_before_s=p50([e["create"]["steps"]["steps"].get(name, {}).get("gap_before_s") for e in eng]))
    around = dict(create_call_s=p50([e["create"]["create_call_s"] for e in eng]),
                  after_last_step_s=p50([e["create"]["steps"]["after_last_step_s"] for e in eng]))
    effects = {}
    for e in eng:
        for name, v in e["create"]["effects"].items():
            effects.setdefault(name, dict(n=[], total_s=[], waiting_for_docker_s=[]))
            effects[name]["n"].append(v["n"])
            effects[name]["total_s"].append(v["total_s"])
            if "waiting_for_docker_s" in v:
                effects[name]["waiting_for_docker_s"].append(v["waiting_for_docker_s"])
    effects = {k: dict(n=max(v["n"]), total_p50_s=p50(v["total_s"]), waiting_for_docker_p50_s=p50(v["waiting_for_docker_s"]))
               for k, v in sorted(effects.items())}
    return dict(
        table=table, raw_floor=floor, rdb_bytes_engine=rdb_eng, archive_bytes=archive,
        archive_of_rdb=ratio(archive, rdb_eng), raw_parts=parts, engine_steps_p50=steps, engine_around_p50=around,
        engine_effects=effects,
        stored_read_s=p50([e["stored_read"]["s"] for e in eng]),
        http_first_byte_s=p50([e["http"]["first_byte_s"] for e in eng]),
        http_wall_s=p50([e["http"]["wall_s"] for e in eng]),
        cli_startup_s=p50(result.get("cli_startup_s") or []),
        targets={f"{r['case']} throughput >= {TARGET}x raw": dict(value=r["ratio"], passed=bool(r["passed"])) for r in table},
    )


def print_report(result: dict, summary: dict) -> None:
    d = result.get("data", {})
    f = summary["raw_floor"]
    print(f"\nbackup benchmark  run {result['run_id']}  {result['started_at']}  {result['plan']}  image {result.get('image')}  "
          f"({result['duration_s']:.0f} s, {result['machine']['cpus']} CPUs)")
    if d:
        kinds = ", ".join(f"{k} {v / MB:.0f}" for k, v in d["by_kind"]["bytes"].items())
        print(f"data: {d['payload_bytes'] / MB:.0f} MB written ({kinds} MB) in {d['keys']} keys, used_memory "
              f"{d['used_memory'] / MB:.0f} MB, loaded in {d['load_s']:.1f} s")
    print(f"RDB {s2(mbs(f['rdb_bytes'], 1))} MB (redis-cli --rdb), {s2(mbs(summary['rdb_bytes_engine'], 1))} MB "
          f"(dump.rdb in the archive); archive .tar.gz {s2(mbs(summary['archive_bytes'], 1))} MB = "
          f"{s2(summary['archive_of_rdb'])} x the RDB")
    print(f"rounds {len(result['rounds'])}, orders {result['orders']}; p50s; throughput = RDB MB/s (MB = 10^6 bytes), "
          f"wire = archive MB/s; raw = {f['label']} (the fastest raw variant)\n")
    header = (f"{'case':<14} | {'n':>1} | {'engine s':>8} | {'raw s':>6} | {'engine MB/s':>11} | {'raw MB/s':>8} | "
              f"{'wire MB/s':>9} | {'engine/raw':>10} | target {TARGET}x")
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        verdict = "-" if r["passed"] is None else ("PASS" if r["passed"] else "MISS")
        print(f"{r['case']:<14} | {r['n']:>1} | {s2(r['engine_s']):>8} | {s2(r['raw_s']):>6} | {s2(r['engine_mb_s']):>11} | "
              f"{s2(r['raw_mb_s']):>8} | {s2(r['wire_mb_s']):>9} | {s2(r['ratio']):>10} | {verdict}")
    print("\nraw variants (p50)")
    for v, x in f["variants"].items():
        print(f"  {RAW_LABELS[v]:<62} {s2(x['s']):>6} s  {s2(x['mb_s']):>7} MB/s" + ("   <- floor" if v == f["variant"] else ""))
    p = summary["raw_parts"]
    print(f"  {'BGSAVE + Docker archive read of dump.rdb (' + str(p['docker_read_encoding']) + '), no gzip':<62} "
          f"{s2(p['bgsave_docker_read_s']):>6} s  (BGSAVE {s2(p['bgsave_s'])} s + read {s2(p['docker_read_s'])} s; "
          f"engine backup-create is {s2(p['engine_create_over_it'])}x it)")
    print("  engine against the server as configured (5 s delay): " + ", ".join(
        f"{r['case']} {s2(r['ratio_vs_as_configured'])}x" for r in summary["table"]))
    print("\nengine backup-create, p50 s: " + "; ".join(f"{k} {s2(v['s'])} (gap {s2(v['gap_before_s'])})"
                                                       for k, v in summary["engine_steps_p50"].items())
          + f"; create call {s2(summary['engine_around_p50']['create_call_s'])}; last step -> finished "
          f"{s2(summary['engine_around_p50']['after_last_step_s'])}")
    print("  inside: " + "; ".join(
        f"{k} {s2(v['total_p50_s'])} s ({v['n']} calls"
        + (f", {s2(v['waiting_for_docker_p50_s'])} s of it waiting for Docker" if v["waiting_for_docker_p50_s"] is not None else "")
        + ")" for k, v in summary["engine_effects"].items()))
    print(f"download: stored archive read in-process {s2(summary['stored_read_s'])} s; HTTP first byte after "
          f"{s2(summary['http_first_byte_s'])} s, client process wall {s2(summary['http_wall_s'])} s; "
          f"CLI startup (`redis-addons --help`) {s2(summary['cli_startup_s'])} s")
    x = result.get("experiments")
    if x:
        print(f"\nexperiments on this run's dump.rdb (tar {s2(mbs(x['tar_bytes'], 1))} MB):")
        for name, r in x["docker_read"].items():
            print(f"  Docker archive read, {name}: {s2(r['s'])} s ({s2(r['mb_s'])} MB/s of tar), "
                  f"Content-Encoding {r['content_encoding']}")
        print(f"  SHA-256 of the archive {s2(x['sha256']['s'])} s; write + fsync of the archive {s2(x['write_fsync']['s'])} s")
        print("  compressor alone, one thread, 1 MiB chunks:")
        for name, r in x["compress_in_memory"].items():
            print(f"    {name:<24} {s2(r['s']):>6} s  {s2(r['mb_s']):>7} MB/s  output {s2(r['out_of_rdb'])} x RDB"
                  f"  zlib inflates it: {r['zlib_inflates_it']}")
        print("  archive step replayed (Docker read -> compress in a worker thread -> write -> fsync); backup-create"
              " estimated as this run's raw BGSAVE + the step:")
        print(f"    {'compressor':<24} {'chunk':>5} {'Docker':>8} | {'step s':>6} | {'RDB MB/s':>8} | {'archive/RDB':>11} | "
              f"{'BGSAVE+step s':>13} | {'vs raw floor':>12}")
        for r in x["archive_step_replays"]:
            print(f"    {r['compressor']:<24} {r['chunk_mib']:>3}Mi {r['docker_encoding']:>8} | {s2(r['s']):>6} | "
                  f"{s2(r['rdb_mb_s']):>8} | {s2(r['archive_of_rdb']):>11} | {s2(r['bgsave_plus_step_s']):>13} | "
                  f"{s2(r['create_ratio_estimate']):>12}")
        print("  RDB fetched over the replication protocol instead (REPLCONF rdb-only + SYNC, repl-diskless-sync-delay 0:"
              " what redis-cli --rdb does), compressed as it streams, hashed, written, fsynced: a whole backup-create's data path")
        for r in x.get("sync_stream", []):
            print(f"    {r['compressor']:<24} {s2(r['s']):>6} s | RDB {s2(mbs(r['rdb_bytes'], 1))} MB at {s2(r['rdb_mb_s']):>7} MB/s | archive "
                  f"{s2(r['archive_bytes'] / r['rdb_bytes'])} x RDB | vs raw floor {s2(r['create_ratio_estimate'])}")
    print("\ntargets")
    for name, t in summary["targets"].items():
        print(f"  {'PASS' if t['passed'] else 'MISS'}  {name}: {s2(t['value'])}")
    c = result["cleanup"]
    print(f"\ncleanup: addon removal {c.get('engine_removal')}, {c['leftovers_removed']} leftovers swept, temp dirs removed "
          f"{c['temp_dirs_removed']}; {remaining_text(c['remaining'])}")


# -- the Business case (bench/backup_business.py): a backup taken on the replica ---------------------


async def bench_cases(args) -> dict:
    """The Starter case (unless --business-only), then the Business one (with --business or --business-only)."""
    result = {} if args.business_only or args.encryption_only else await bench(args)
    if args.business or args.business_only:
        result["business"] = await bench_business(args, load, Probe, engine_create, raw_rdb)
    if args.encryption or args.encryption_only:  # bench/backup_encryption.py: sealed vs plain on the same bytes
        result["encryption"] = await bench_encryption(args, load)
    return result


def summarise_cases(result: dict) -> dict:
    summary = summarise(result) if result.get("rounds") else {}
    if "business" in result:
        summary["business"] = summarise_business(result["business"], TARGET)
    if "encryption" in result:
        summary["encryption"] = summarise_encryption(result["encryption"])
    return summary


def print_cases(result: dict, summary: dict) -> None:
    if result.get("rounds"):
        print_report(result, summary)
    if "business" in result:
        print_business(result["business"], summary["business"])
    if "encryption" in result:
        print_encryption(result["encryption"], summary["encryption"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs the engine cases and the raw cases once")
    parser.add_argument("--mb", type=int, default=200, help="MB of data written into the addon")
    parser.add_argument("--no-cli", action="store_true", help="leave out the CLI download")
    parser.add_argument("--no-experiments", action="store_true", help="leave out the compression experiments")
    parser.add_argument("--business", action="store_true", help="then the Business case: a redis-business-1024 "
                        "addon backed up on its replica, against redis-cli --rdb on that replica")
    parser.add_argument("--business-only", action="store_true", help="only the Business case (its JSON in "
                        "bench/results/backup_business.json, the Starter's results left as they are)")
    parser.add_argument("--encryption", action="store_true", help="then the cost of encryption at rest "
                        "(bench/backup_encryption.py): sealed vs plain on the same archive, and the saga with and without")
    parser.add_argument("--encryption-only", action="store_true", help="only the encryption case (its JSON in "
                        "bench/results/backup_encryption.json)")
    results = RESULTS_DIR / "backup_business.json" if "--business-only" in sys.argv else RESULTS
    if "--encryption-only" in sys.argv:
        results = RESULTS_DIR / "backup_encryption.json"
    run_bench(parser, bench_cases, summarise_cases, print_cases, results, stored=without_rows)


def without_rows(result: dict) -> dict:
    """The result as stored: without the backup rows the engine returned (kept in memory for the download)."""
    def create(engine: dict) -> dict:
        return {k: v for k, v in engine.items() if k != "row"}

    stored = dict(result, rounds=[{**s, "engine": {**s["engine"], "create": create(s["engine"]["create"])}}
                                  for s in result.get("rounds", [])])
    if "business" in result:
        stored["business"] = dict(result["business"], rounds=[{**s, "engine": create(s["engine"])}
                                                              for s in result["business"]["rounds"]])
    return stored


if __name__ == "__main__":
    main()
