"""The Business case of bench/backup.py (issue 12): `backups-create` of a redis-business-1024 addon,
which the engine takes on the replica, against the raw operation on that same replica in the same
run: `redis-cli --tls --cacert CA --rdb FILE` (the replica forks and streams its snapshot to redis-cli,
which writes and fsyncs it). The data nodes serve TLS only: every connection the bench makes to one
(redis-cli, the primary's forks, the replica's offset, CONFIG SET of a variant) is TLS verified with
the installation's CA, as the engine's own connection that takes the backup is. Run with
`bench/backup.py --business` (after the Starter case) or `--business-only`.

Data: the Starter case's (backup.load: ~--mb MB of mixed data in the 5 databases, written through
REDIS_URL, that is through HAProxy to the primary); the replica is waited for until its offset is
the primary's. Rounds alternate which side goes first; medians reported. Throughput = RDB bytes per
second (the dump.rdb in the archive; the file redis-cli wrote). Two raw variants, as for the Starter:
the replica as the engine configures it (diskless, repl-diskless-sync-delay 0 on a cluster's data
nodes) and disk-based; the floor is the fastest.

Also measured around every engine backup and every raw one: the primary's `total_forks` (INFO stats),
which must not move (neither forks on the primary), and where each backup says it was taken.
The addon is removed through the engine, leftovers by label, the temporary home and files deleted."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from common import (ca_file, cli_tls, client_for, machine, node_endpoint, over_tls, p50, ratio, remaining, remaining_text,
                    remove_addon, remove_leftovers, s2, temp_settings, wait_succeeded)

from engine import build

PLAN = "redis-business-1024"
VARIANTS = ("as configured", "disk-based")  # a cluster's data nodes have repl-diskless-sync-delay 0 already
LABELS = {"as configured": "redis-cli --rdb on the replica, as configured (diskless, delay 0)",
          "disk-based": "redis-cli --rdb on the replica, repl-diskless-sync no"}
MB = 1_000_000


async def forks(node: dict) -> int:
    client = client_for(node["url"], **node["tls"])
    try:
        return int((await client.info("stats"))["total_forks"])
    finally:
        await client.aclose()


async def in_sync(primary: dict, replica: dict, timeout: float = 120.0) -> None:
    """Until the replica has applied all the primary has written (its own offset, read on it)."""
    deadline = time.monotonic() + timeout
    p, r = client_for(primary["url"], **primary["tls"]), client_for(replica["url"], **replica["tls"])
    try:
        while True:
            head = int((await p.info("replication"))["master_repl_offset"])
            seen = await r.info("replication")
            if seen.get("master_link_status") == "up" and int(seen.get("slave_repl_offset", -1)) >= head:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica is not in sync after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await p.aclose()
        await r.aclose()


def data_nodes(rows: list[dict], password: str, ca: Path) -> tuple[dict, dict]:
    """(primary, replica) as the raw side reaches them: on their TLS port, verified with the CA."""
    def node(row: dict) -> dict:
        address, port = node_endpoint(row)
        scheme = "rediss" if row.get("tls_port") else "redis"
        return dict(address=address, port=port, host=row["host"], container=row["container"],
                    id=row["id"], password=password, tls=over_tls(row, ca), cli_tls=cli_tls(row, ca),
                    url=f"{scheme}://default:{password}@{address}:{port}")
    data = [r for r in rows if r["role"] == "data" and r["state"] == "running"]
    [primary] = [node(r) for r in data if r["is_primary"]]
    [replica] = [node(r) for r in data if not r["is_primary"]]
    return primary, replica


async def bench_business(args, load, Probe, engine_create, raw_rdb) -> dict:
    """The Business case, with the Starter case's loader, probe, engine round and raw round (bench/backup.py)."""
    run_id = secrets.token_hex(4)
    app = f"bench-bkb-{run_id}"
    home, settings = temp_settings("redis-addons-bench-backup-business-", {"REDIS_ADDONS_SCHEDULER_TICK": "0"})
    workdir = Path(tempfile.mkdtemp(prefix="redis-addons-bench-backup-business-files-"))
    began = time.monotonic()
    rounds: list[dict] = []
    result: dict = dict(run_id=run_id, app=app, plan=PLAN, rounds=rounds, orders=[], machine=machine())
    cleanup: dict = {}
    addon = probe = None
    try:
        async with build(settings) as engine:
            try:
                requested = await engine.add_addon(app, PLAN)
                addon = requested["addon"]
                await wait_succeeded(engine, requested["operation_id"], f"provisioning {addon}", 300)
                url = (await engine.environment(app))["REDIS_URL"]
                primary, replica = data_nodes(await engine.nodes(app, addon), unquote(urlsplit(url).password or ""),
                                              ca_file(engine))
                result["nodes"] = {k: {**{f: v[f] for f in ("id", "host", "address", "port")}, "tls": bool(v["tls"])}
                                   for k, v in (("primary", primary), ("replica", replica))}
                print(f"  Business: loading ~{args.mb} MB into {addon} through REDIS_URL ...", file=sys.stderr, flush=True)
                result["data"] = await load(url, args.mb * MB)
                await in_sync(primary, replica)
                probe = Probe(engine)
                for i in range(args.rounds):
                    order = ["engine", "raw"] if i % 2 == 0 else ["raw", "engine"]
                    result["orders"].append(order)
                    sample: dict = dict(round=i + 1, load_1m_before=os.getloadavg()[0])
                    for case in order:
                        before = await forks(primary)
                        if case == "engine":
                            created = await engine_create(engine, probe, app, addon)
                            sample["engine"] = dict(created, taken_on=created["row"]["taken_on"])
                        else:
                            sample["raw"] = {v: await raw_rdb(replica, workdir / f"raw-{i}.rdb", v) for v in VARIANTS}
                        sample[f"{case}_primary_forks"] = await forks(primary) - before
                    sample["load_1m_after"] = os.getloadavg()[0]
                    rounds.append(sample)
                    e, r = sample["engine"], sample["raw"]
                    print(f"  Business round {i + 1} {order}: create {e['s']:.2f} s on {e['taken_on']['role']} "
                          f"(primary forks {sample['engine_primary_forks']}); redis-cli --rdb on the replica "
                          + ", ".join(f"{v} {x['s']:.2f} s" for v, x in r.items()), file=sys.stderr, flush=True)
            finally:
                if probe is not None:
                    probe.restore()
                if addon is not None:
                    cleanup["engine_removal"] = await remove_addon(engine, app, addon, 300) or "succeeded"
    finally:
        await sweep_run(settings, app, run_id, (home, workdir), cleanup)
        result["cleanup"] = cleanup
        result["duration_s"] = time.monotonic() - began
    return result


async def sweep_run(settings, app: str, run_id: str, directories, cleanup: dict) -> None:
    """What a run leaves: the app's containers and volumes swept by label, what the hosts still hold
    of the run listed (must be nothing), the temporary directories deleted."""
    cleanup["leftovers_removed"] = await remove_leftovers(settings, app)
    cleanup["remaining"] = await remaining(settings, run_id)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
    cleanup["temp_dirs_removed"] = not any(directory.exists() for directory in directories)


def mbs(nbytes, seconds) -> float | None:
    return None if not nbytes or not seconds else nbytes / MB / seconds


def summarise_business(result: dict, target: float) -> dict:
    rounds = result["rounds"]
    eng = [s["engine"] for s in rounds]
    variants = {v: dict(s=p50([s["raw"][v]["s"] for s in rounds]), rdb_bytes=p50([s["raw"][v]["rdb_bytes"] for s in rounds]))
                for v in VARIANTS}
    for v in variants.values():
        v["mb_s"] = mbs(v["rdb_bytes"], v["s"])
    floor = min(variants, key=lambda v: variants[v]["s"])
    rdb = p50([e["rdb_bytes"] or e["tar_bytes"] for e in eng])
    engine_s = p50([e["s"] for e in eng])
    r = ratio(mbs(rdb, engine_s), variants[floor]["mb_s"])
    return dict(
        engine_s=engine_s, engine_mb_s=mbs(rdb, engine_s), rdb_bytes=rdb, archive_bytes=p50([e["archive_bytes"] for e in eng]),
        raw_floor=dict(variant=floor, label=LABELS[floor], **variants[floor]), raw_variants=variants, ratio=r,
        passed=None if r is None else r >= target, target=target,
        steps={n: p50([e["steps"]["steps"].get(n, {}).get("duration_s") for e in eng]) for n in ("save", "archive", "record")},
        taken_on=sorted({e["taken_on"]["role"] for e in eng}),
        primary_forks_engine=[s["engine_primary_forks"] for s in rounds],
        primary_forks_raw=[s["raw_primary_forks"] for s in rounds])


def print_business(result: dict, summary: dict) -> None:
    d, f = result.get("data", {}), summary["raw_floor"]
    print(f"\nBusiness backup  run {result['run_id']}  {result['plan']}  ({result['duration_s']:.0f} s, "
          f"{result['machine']['cpus']} CPUs)")
    if d:
        print(f"data: {d['payload_bytes'] / MB:.0f} MB written through REDIS_URL in {d['keys']} keys, used_memory "
              f"{d['used_memory'] / MB:.0f} MB; RDB {s2(mbs(summary['rdb_bytes'], 1))} MB (dump.rdb in the archive), "
              f"archive {s2(mbs(summary['archive_bytes'], 1))} MB")
    tls = (result.get("nodes") or {}).get("replica", {}).get("tls")
    print(f"rounds {len(result['rounds'])}, orders {result['orders']}; p50s; raw = {f['label']} (the fastest)"
          + ("; redis-cli over TLS (--tls --cacert the installation's CA): the data nodes serve TLS only" if tls else ""))
    loads = [x for r in result["rounds"] for x in (r.get("load_1m_before"), r.get("load_1m_after")) if x is not None]
    if loads:
        print(f"machine load (1-min average) around the rounds: {min(loads):.2f} .. {max(loads):.2f}")
    print()
    header = (f"{'case':<24} | {'n':>1} | {'engine s':>8} | {'raw s':>6} | {'engine MB/s':>11} | {'raw MB/s':>8} | "
              f"{'engine/raw':>10} | target {summary['target']}x")
    print(header)
    print("-" * len(header))
    verdict = "-" if summary["passed"] is None else ("PASS" if summary["passed"] else "MISS")
    print(f"{'business backup-create':<24} | {len(result['rounds']):>1} | {s2(summary['engine_s']):>8} | {s2(f['s']):>6} | "
          f"{s2(summary['engine_mb_s']):>11} | {s2(f['mb_s']):>8} | {s2(summary['ratio']):>10} | {verdict}")
    print("\nraw variants (p50)")
    for v, x in summary["raw_variants"].items():
        print(f"  {LABELS[v]:<66} {s2(x['s']):>6} s  {s2(x['mb_s']):>7} MB/s" + ("   <- floor" if v == f["variant"] else ""))
    print("engine backup-create, p50 s: " + "; ".join(f"{k} {s2(v)}" for k, v in summary["steps"].items())
          + f"; taken on: {', '.join(summary['taken_on'])}")
    print(f"primary's forks during each engine backup: {summary['primary_forks_engine']}; during each raw round: "
          f"{summary['primary_forks_raw']}")
    c = result["cleanup"]
    print(f"cleanup: addon removal {c.get('engine_removal')}, {c['leftovers_removed']} leftovers swept, temp dirs removed "
          f"{c['temp_dirs_removed']}; {remaining_text(c['remaining'])}")
