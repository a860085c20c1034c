"""The cost of encryption at rest (issue 15, part 4), for bench/backup.py --encryption (after the Starter
case) or --encryption-only: each case against the raw operation on the same bytes in the same run.

Bytes: a real archive, the .tar.gz of a backup of a redis-starter-1024 addon holding ~--mb MB of the
Starter case's mixed data (backup.load), made by the engine in this run.

  seal in memory     sealed.Sealer over the .tar.gz in 1 MiB pieces (AES-256-GCM, a tag a chunk)
                     vs a copy of the same bytes (bytes(memoryview) per piece): the crypto alone
  open in memory     sealed.Opener on each chunk vs the same copy
  store write        the store's sink with a sealer (hash, seal, write, fsync) vs without (hash, write,
                     fsync): the archive step's write side on the same .tar.gz, no compression
  store read         FileBackupStore.read of the sealed archive (a download's source: read + decrypt
                     in worker threads) vs of the same .tar.gz stored plain (read only)
  restore check      FileBackupStore.checksum (every chunk authenticated + SHA-256) vs plain (SHA-256)
  backup-create      the whole saga (save, archive: Docker read, gzip, hash, seal, write, fsync; record)
                     with the engine's store sealing vs the same store with no keys (plain, as before)

Rounds alternate which side goes first (3x --rounds for the cases on bytes, cheap); medians reported;
ratio = sealed time / raw time (1.00: free). On a machine shared with other work, the saga's times vary
by more than encryption costs: read its ratio with the per-round samples in the JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import machine, p50, parse_ts, ratio, remove_addon, remove_leftovers, temp_settings, wait_succeeded

import adapters.storage.backup_files as backup_files
from adapters.storage import sealed
from adapters.storage.backup_files import FileBackupStore
from engine import build

PLAN = "redis-starter-1024"
MB = 1_000_000
OP_TIMEOUT_S = 900


def pieces(data: bytes, size: int = sealed.CHUNK):
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield view[i:i + size]


def seal_in_memory(key: bytes, name: str, data: bytes, keep: bool = False) -> tuple[float, bytes]:
    """Sealed pieces dropped as they come (as the store writes them), like the copy it is compared with;
    `keep` for the blob the opening case reads (not timed then)."""
    t0, sealer, out = time.perf_counter(), sealed.Sealer(key, name), []
    for piece in pieces(data):
        sealed_piece = sealer.add(piece)
        if keep:
            out.append(sealed_piece)
    out.append(sealer.finish())
    return time.perf_counter() - t0, b"".join(out) if keep else b""


def copy_in_memory(data: bytes) -> float:
    t0 = time.perf_counter()
    for piece in pieces(data):
        bytes(piece)
    return time.perf_counter() - t0


def open_in_memory(name: str, keys, blob: bytes) -> float:
    t0 = time.perf_counter()
    shape = sealed.layout(name, blob, len(blob))
    opener = sealed.Opener(name, shape, keys.get)
    for i in range(shape.chunks):
        offset, length = shape.span(i)
        opener.open(i, blob[offset:offset + length])
    return time.perf_counter() - t0


def sink_write(root: Path, name: str, data: bytes, key: bytes | None) -> float:
    t0 = time.perf_counter()
    sink = backup_files._GzipSink(root / name, sealed.Sealer(key, name) if key else None, compress=False)
    for piece in pieces(data):
        sink.add(bytes(piece))
    sink.finish()
    return time.perf_counter() - t0


async def store_read(store: FileBackupStore, name: str) -> float:
    t0 = time.perf_counter()
    async for _ in store.read(name):
        pass
    return time.perf_counter() - t0


async def timed(coro) -> float:
    t0 = time.perf_counter()
    await coro
    return time.perf_counter() - t0


async def backup_create(engine, app: str) -> dict:
    t0 = time.perf_counter()
    requested = await engine.backups.create(app, "redis")
    await wait_succeeded(engine, requested["operation_id"], "backup", OP_TIMEOUT_S)
    took = time.perf_counter() - t0
    row = await engine.backups.get(app, "redis", requested["backup_id"])
    op = next(o for o in await engine.operations(row["addon"]) if o["id"] == requested["operation_id"])
    archive = next(s for s in op["steps"] if s["name"] == "archive")
    return dict(s=took, archive_step_s=parse_ts(archive["ended_at"]) - parse_ts(archive["started_at"]),
                size=int(row["size"]), location=row["location"], id=row["id"])


async def bench_encryption(args, load) -> dict:
    run_id = secrets.token_hex(4)
    app = f"bench-enc-{run_id}"
    home, settings = temp_settings("redis-addons-bench-enc-", {"REDIS_ADDONS_SCHEDULER_TICK": "0"})
    workdir = Path(tempfile.mkdtemp(prefix="redis-addons-bench-enc-files-"))
    result: dict = dict(run_id=run_id, plan=PLAN, chunk=sealed.CHUNK, rounds=[], machine=machine())
    addon = None
    try:
        async with build(settings) as engine:
            try:
                requested = await engine.add_addon(app, PLAN)
                addon = requested["addon"]
                await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", OP_TIMEOUT_S)
                print(f"  encryption: loading ~{args.mb} MB into {addon} ...", file=sys.stderr, flush=True)
                result["data"] = await load((await engine.environment(app))["REDIS_URL"], args.mb * MB)
                store = engine.backups.store
                keys = store.keys
                for i in range(args.rounds):
                    sample: dict = dict(round=i + 1)
                    for case in (("sealed", "plain") if i % 2 == 0 else ("plain", "sealed")):
                        store.keys = keys if case == "sealed" else None  # the engine's own store, sealing or not
                        sample[f"create_{case}"] = await backup_create(engine, app)
                    store.keys = keys
                    result["rounds"].append(sample)
                made = result["rounds"][-1]["create_sealed"]
                tar_gz = b"".join([c async for c in store.read(made["location"])])
                result["archive_bytes"] = len(tar_gz)
                result["micro"] = await micro(tar_gz, keys, workdir, 3 * args.rounds)  # cheap: more rounds, less noise
            finally:
                if addon:
                    result["removal_error"] = await remove_addon(engine, app, addon, OP_TIMEOUT_S)
    finally:
        result["leftovers"] = await remove_leftovers(settings, app)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


async def micro(data: bytes, keys, workdir: Path, rounds: int) -> list[dict]:
    key = keys.current()[1]
    plain_store, sealed_store = FileBackupStore(workdir / "plain"), FileBackupStore(workdir / "sealed", keys)
    name = "bench/b/x.tar.gz"
    for store in (plain_store, sealed_store):
        (store.root / "bench/b").mkdir(parents=True)
    samples = []
    for i in range(rounds):
        row: dict = {}
        first = i % 2 == 0
        for side in ((True, False) if first else (False, True)):
            if side:
                row["seal_mem"], _ = await asyncio.to_thread(seal_in_memory, key, name, data)
                blob = (await asyncio.to_thread(seal_in_memory, key, name, data, True))[1]
                row["open_mem"] = await asyncio.to_thread(open_in_memory, name, keys, blob)
                row["write_sealed"] = await asyncio.to_thread(sink_write, sealed_store.root, name, data, key)
                row["read_sealed"] = await store_read(sealed_store, name)
                row["check_sealed"] = await timed(sealed_store.checksum(name))
            else:
                row["copy_mem"] = await asyncio.to_thread(copy_in_memory, data)
                row["write_plain"] = await asyncio.to_thread(sink_write, plain_store.root, name, data, None)
                row["read_plain"] = await store_read(plain_store, name)
                row["check_plain"] = await timed(plain_store.checksum(name))
        assert await sealed_store.checksum(name) == await plain_store.checksum(name) == (len(data), hashlib.sha256(data).hexdigest())
        samples.append(row)
    return samples


CASES = (("seal in memory", "seal_mem", "copy_mem"), ("open in memory", "open_mem", "copy_mem"),
         ("store write (hash, seal, write, fsync)", "write_sealed", "write_plain"),
         ("store read (download source)", "read_sealed", "read_plain"),
         ("restore check (whole archive)", "check_sealed", "check_plain"))


def summarise_encryption(result: dict) -> dict:
    size = result.get("archive_bytes") or 0
    micro_rows = result.get("micro") or []
    out = {}
    for label, sealed_key, raw_key in CASES:
        s, r = p50([m[sealed_key] for m in micro_rows]), p50([m[raw_key] for m in micro_rows])
        out[label] = dict(sealed_s=s, raw_s=r, sealed_mb_s=size / s / MB if s else None,
                          raw_mb_s=size / r / MB if r else None, ratio=ratio(s, r))
    rounds = result.get("rounds") or []
    for label, key in (("backup-create (whole saga)", "s"), ("  its archive step", "archive_step_s")):
        s, r = p50([x["create_sealed"][key] for x in rounds]), p50([x["create_plain"][key] for x in rounds])
        out[label] = dict(sealed_s=s, raw_s=r, ratio=ratio(s, r), sealed_mb_s=None, raw_mb_s=None)
    return out


def print_encryption(result: dict, summary: dict) -> None:
    print(f"\nencryption at rest: archive {result.get('archive_bytes', 0) / MB:.1f} MB (.tar.gz), "
          f"{len(result.get('rounds', []))} rounds, chunk {result['chunk'] >> 10} KiB")
    print(f"  {'case':40} {'sealed':>9} {'raw':>9} {'sealed MB/s':>12} {'raw MB/s':>10} {'ratio':>6}")
    for label, row in summary.items():
        def cell(x, width, form):
            return f"{x:{width}{form}}" if x is not None else "-".rjust(width)
        print(f"  {label:40} {cell(row['sealed_s'], 9, '.3f')} {cell(row['raw_s'], 9, '.3f')} "
              f"{cell(row['sealed_mb_s'], 12, '.0f')} {cell(row['raw_mb_s'], 10, '.0f')} {cell(row['ratio'], 6, '.2f')}")
