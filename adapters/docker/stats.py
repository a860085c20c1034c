"""A container's figures from the Docker engine (the runtime delegates here): its stats, read one-shot,
and the size of a node's data files from the archive API's path stat (the images have no shell or
`du`, and the archive API answers for any host, remote ones too)."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import aiodocker
from aiodocker.exceptions import DockerError

from engine.ports import ContainerReading

DIRECTORY_BIT = 1 << 31  # Go's os.ModeDir, as the path stat's "mode" has it


def memory_used(memory_stats: dict) -> int:
    """Usage less the inactive file cache, as `docker stats` shows it: total_inactive_file under
    cgroup v1, inactive_file under v2; the cache the kernel drops first is not the node's."""
    usage = int(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # v1 first: its stats hold both names
        if key in stats and int(stats[key]) < usage:
            return usage - int(stats[key])
    return usage


def reading_from(stats: dict, inspected: dict) -> ContainerReading:
    """A ContainerReading of a one-shot stats answer and the container's inspection."""
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    host_config = inspected.get("HostConfig") or {}
    limit = int(memory.get("limit") or host_config.get("Memory") or 0)
    # The engine makes every node with MemorySwap == Memory: it may not swap at all.
    swap_limit = host_config.get("MemorySwap") or 0
    swap_allowed = swap_limit == -1 or swap_limit > (host_config.get("Memory") or 0)
    swap_used = None
    if swap_allowed and "swap" in (memory.get("stats") or {}):  # cgroup v1 with swap accounting
        swap_used = int(memory["stats"]["swap"])
    state = inspected.get("State") or {}
    return ContainerReading(
        running=bool(state.get("Running")),
        started_at=state.get("StartedAt") or "",
        cpu_total_ns=int(usage.get("total_usage") or 0),
        system_cpu_ns=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 1),
        memory_used_bytes=memory_used(memory),
        memory_limit_bytes=limit,
        swap_allowed=swap_allowed,
        swap_used_bytes=swap_used,
    )


async def container_reading(docker: aiodocker.Docker, container: str) -> ContainerReading | None:
    try:
        inspected = await docker._query_json(f"containers/{container}/json")
    except DockerError as e:
        if e.status == 404:
            return None
        raise
    if not (inspected.get("State") or {}).get("Running"):
        return reading_from({}, inspected)
    # one-shot (API 1.41+): dockerd answers at once instead of waiting a second for a second CPU read.
    stats = await docker._query_json(f"containers/{container}/stats", params={"stream": "0", "one-shot": "1"})
    return reading_from(stats, inspected)


async def path_stat(docker: aiodocker.Docker, container: str, path: str) -> dict | None:
    """The archive API's stat of one path ({name, size, mode, ...}); None when it does not exist."""
    # Through the session: aiodocker reads an error's body as JSON, and a HEAD answer has none.
    async with docker.session.head(docker._canonicalize_url(f"containers/{container}/archive"),
                                   params={"path": path}) as response:
        if response.status == 404:
            return None
        if response.status >= 400:
            raise DockerError(response.status, f"stat of {path} answered {response.reason}")
        header = response.headers.get("X-Docker-Container-Path-Stat")
    return json.loads(base64.b64decode(header)) if header else None


async def small_file(docker: aiodocker.Docker, container: str, path: str) -> bytes:
    """One small file's content, from the tar the archive API answers with."""
    async with docker._query(f"containers/{container}/archive", params={"path": path},
                             headers={"Accept-Encoding": "identity"}) as response:
        data = await response.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
        return tar.extractfile(member).read()


def manifest_files(manifest: str) -> list[str]:
    """The file names a Redis 7+ AOF manifest lists ("file appendonly.aof.1.base.rdb seq 1 type b")."""
    names = []
    for line in manifest.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "file":
            names.append(words[1])
    return names


async def stored_bytes(docker: aiodocker.Docker, container: str, directory: str, rdb: str, aof_dir: str,
                       aof_file: str) -> int:
    total = 0
    rdb_stat = await path_stat(docker, container, f"{directory}/{rdb}")
    total += int(rdb_stat["size"]) if rdb_stat else 0
    aof_stat = await path_stat(docker, container, f"{directory}/{aof_dir}")
    if aof_stat and int(aof_stat.get("mode", 0)) & DIRECTORY_BIT:
        manifest_path = f"{directory}/{aof_dir}/{aof_file}.manifest"
        manifest = await path_stat(docker, container, manifest_path)
        if manifest:
            total += int(manifest["size"])
            for name in manifest_files((await small_file(docker, container, manifest_path)).decode()):
                found = await path_stat(docker, container, f"{directory}/{aof_dir}/{name}")
                total += int(found["size"]) if found else 0
    else:  # before Redis 7: one file
        single = await path_stat(docker, container, f"{directory}/{aof_file}")
        total += int(single["size"]) if single else 0
    return total
