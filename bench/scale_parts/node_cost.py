"""What an idle Sandbox node costs a host, measured on real nodes provisioned through the engine on the hosts
of var/hosts.json, then removed through it (and anything left swept by label, on failure too).

  memory   the container's cgroup memory as `docker stats` reads it: usage, and its working set (usage less
           inactive file pages, what docker stats shows and what the kernel cannot simply drop)
  beside    what the host spends on it outside its cgroup: its containerd-shim process (proportional set
           size, from /proc: these Docker engines are local) and its directory in the engine's data root
           (its config and json log)
  disk     the container's writable layer (SizeRw; its root is read-only) and its volumes (data and
           configuration, /system/df); the image is shared by every node of a host, counted once
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from uuid import uuid4

import aiodocker

from common import remaining, remaining_text, remove_addon, remove_leftovers, wait_succeeded
from domain.catalog import PlanCatalog
from engine.bootstrap import build

PLAN = "redis-sandbox"
AT_ONCE = 10  # provisionings in flight: this 2-core machine and the other engines' users share the hosts
IDLE_S = 5.0  # let each node settle (its first RDB? none: it is empty) before reading it
MIB = 1024 * 1024


def shim_pss(container_id: str) -> int:
    """The proportional set size of the containerd-shim serving this container (0 when none is found)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in cmdline[0] and container_id.encode() in cmdline:
                pss = [line for line in (proc / "smaps_rollup").read_text().splitlines() if line.startswith("Pss:")]
                return int(pss[0].split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return 0


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


async def container_figures(docker: aiodocker.Docker, app: str) -> list[dict]:
    """Memory and writable-layer size of each of `app`'s containers on one host, and its volume's size."""
    listed = await docker._query_json("containers/json", method="GET",
                                      params={"all": "1", "size": "1",
                                              "filters": f'{{"label": ["redis-addons.app={app}"]}}'})
    df = await docker._query_json("system/df", method="GET", params={"type": "volume"})
    volume_size = {v["Name"]: (v.get("UsageData") or {}).get("Size", -1) for v in df.get("Volumes") or []}
    root = Path((await docker.system.info())["DockerRootDir"])
    out = []
    for c in listed:
        stats = await docker._query_json(f"containers/{c['Id']}/stats", method="GET", params={"stream": "0"})
        memory = stats["memory_stats"]
        inactive = memory.get("stats", {}).get("inactive_file", memory.get("stats", {}).get("total_inactive_file", 0))
        volumes = [m["Name"] for m in c.get("Mounts", []) if m.get("Type") == "volume"]
        out.append(dict(container=c["Names"][0].lstrip("/"), usage=memory["usage"], working_set=memory["usage"] - inactive,
                        limit=memory.get("limit"), size_rw=c.get("SizeRw", 0), image_size=c.get("SizeRootFs", 0) - c.get("SizeRw", 0),
                        volume=sum(max(0, volume_size.get(v, 0)) for v in volumes), shim=shim_pss(c["Id"]),
                        metadata=directory_size(root / "containers" / c["Id"])))
    return out


async def provision(engine, app: str, nodes: int, names: list[str], log) -> list[str]:
    """`nodes` sandbox addons, AT_ONCE at a time; every one requested goes into `names` (all are removed at
    the end), the failures are returned (the hosts are shared with other work: a port taken meanwhile)."""
    failures: list[str] = []
    for start in range(0, nodes, AT_ONCE):
        requested = [await engine.add_addon(app, PLAN) for _ in range(min(AT_ONCE, nodes - start))]
        names += [r["addon"] for r in requested]
        ended = await asyncio.gather(*(wait_succeeded(engine, r["operation_id"], f"provisioning {r['addon']}", 180)
                                       for r in requested), return_exceptions=True)
        failures += [str(e) for e in ended if isinstance(e, Exception)]
        log(f"node cost: {len(names)}/{nodes} sandbox nodes requested, {len(failures)} failed")
    if len(failures) > nodes // 5:
        raise RuntimeError(f"{len(failures)} of {nodes} provisionings failed: {failures[:3]}")
    return failures


async def node_cost(settings, nodes: int, log) -> dict:
    run = uuid4().hex[:6]
    app = f"scalenodes-{run}"
    engine = build(settings)
    await engine.start()
    names: list[str] = []
    try:
        t0 = time.perf_counter()
        failed = await provision(engine, app, nodes, names, log)
        provision_s = time.perf_counter() - t0
        await asyncio.sleep(IDLE_S)
        figures = []
        for h in settings.hosts:
            docker = aiodocker.Docker(url=h.docker_url)
            try:
                figures += [dict(f, host=h.name) for f in await container_figures(docker, app)]
            finally:
                await docker.close()
        if len(figures) != nodes - len(failed):
            raise RuntimeError(f"{nodes - len(failed)} nodes provisioned, {len(figures)} containers found")
    finally:
        failures = [f for f in await asyncio.gather(*(remove_addon(engine, app, n, 180) for n in names)) if f]
        await engine.stop()
        swept = await remove_leftovers(settings, app)
        left = remaining_text(await remaining(settings, app))
        log(f"node cost: removed ({len(failures)} removal failures, {swept} swept by label); {left}")
    return dict(summarise_nodes(settings, figures, provision_s, failures, left), provisioning_failures=failed)


def summarise_nodes(settings, figures: list[dict], provision_s: float, failures: list, left: str) -> dict:
    plan = PlanCatalog.load().get(PLAN)
    mean = {k: statistics.mean(f[k] for f in figures)
            for k in ("usage", "working_set", "size_rw", "volume", "shim", "metadata")}
    per_node_disk = mean["size_rw"] + mean["volume"] + mean["metadata"]
    per_node_memory = mean["working_set"] + mean["shim"]
    hosts = []
    for h in settings.hosts:
        by_memory = h.memory_mib // plan.memory_mib
        by_ports = (h.last_port - h.first_port + 1) // 2  # a node takes a plaintext and a TLS port
        capacity = min(by_memory, by_ports)
        hosts.append(dict(host=h.name, memory_mib=h.memory_mib, capacity=capacity, by_memory=by_memory, by_ports=by_ports,
                          idle_memory_mib=capacity * per_node_memory / MIB, disk_mib=capacity * per_node_disk / MIB))
    return dict(nodes=len(figures), plan=PLAN, plan_memory_mib=plan.memory_mib, provision_s=provision_s,
                mean_usage_mib=mean["usage"] / MIB, mean_working_set_mib=mean["working_set"] / MIB,
                max_working_set_mib=max(f["working_set"] for f in figures) / MIB,
                mean_shim_mib=mean["shim"] / MIB, mean_metadata_kib=mean["metadata"] / 1024,
                mean_size_rw_kib=mean["size_rw"] / 1024, mean_volume_kib=mean["volume"] / 1024,
                image_mib=max(f["image_size"] for f in figures) / MIB,
                per_1000_memory_gib=1000 * per_node_memory / MIB / 1024,
                per_1000_disk_mib=1000 * per_node_disk / MIB, hosts=hosts, removal_failures=failures, left=left,
                samples=figures)
