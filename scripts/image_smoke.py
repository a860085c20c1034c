"""The smoke test of a freshly imported engine image (scripts/build-images.py): the server
answers PING on loopback, reports the catalog's version, writes the catalog's RDB format (a key
SAVEd, the file's header read back), and --memory shows in its cgroup; run as the engine runs it."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def docker(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*docker_command(url), *args], text=True, capture_output=True, **kw)


def docker_command(url: str) -> list[str]:
    """`docker -H URL`, and for a host over TCP the TLS files its hosts-file entry names: it takes no other call."""
    tls = next((h["tls"] for h in listed_hosts() if h["docker_url"] == url and "tls" in h), None)
    if tls is None:
        return ["docker", "-H", url]
    ca, cert, key = (str(home() / tls[k]) for k in ("ca", "cert", "key"))  # relative to the hosts files' directory
    return ["docker", "--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key, "-H", url]


def home() -> Path:
    path = Path(os.environ.get("REDIS_ADDONS_HOME", "var"))
    return path if path.is_absolute() else REPO / path


def listed_hosts() -> list[dict]:
    """Every host of the files scripts/write-hosts.sh writes (however many hosts the setup writes there)."""
    return [h for f in ("hosts.json", "fault-hosts.json", "scaleout-hosts.json") if home().joinpath(f).exists()
            for h in json.loads(home().joinpath(f).read_text())["hosts"]]


def smoke_bind(host: str) -> str:
    """The host's loopback address, as hosts.json gives it."""
    try:
        return next(h["bind"] for h in listed_hosts() if h["name"] == host)
    except (OSError, ValueError, KeyError, StopIteration):
        return {"host-a": "127.0.1.1", "host-b": "127.0.2.1", "host-c": "127.0.3.1", "host-d": "127.0.4.1"}.get(host, "127.0.0.1")


def smoke_test(host: str, url: str, image: str, engine: str, version: str, port: int = 39999,
               rdb_format: int | None = None) -> str:
    """Run the image with --memory 256m on loopback, PING it, check version and cgroup limit."""
    bind = smoke_bind(host)
    name = f"redis-addons-smoke-{host}-{re.sub(r'[^a-z0-9]', '-', image.split('/')[-1])}"
    docker(url, "rm", "-f", "-v", name)
    limit = 256 * 1024 * 1024
    # As the engine runs it (adapters/docker/container_config.py): as redis, read-only but for its data volume (an
    # anonymous one here, removed with the container), no capability, no new privileges, a pids limit.
    r = docker(url, "run", "-d", "--name", name, "--label", "redis-addons.smoke=1",
               "--network", "host", "--memory", "256m", "--user", "999:999", "--read-only", "--volume", "/data",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "256", image,
               "/usr/local/bin/redis-server", "--bind", bind, "--port", str(port),
               "--save", "", "--appendonly", "no", "--protected-mode", "no")
    if r.returncode != 0:
        raise RuntimeError(f"{host} {image}: docker run failed: {r.stderr.strip()}")
    cid = r.stdout.strip()
    try:
        deadline = time.time() + 15
        pong = ""
        while time.time() < deadline:
            p = subprocess.run(["redis-cli", "-h", bind, "-p", str(port), "ping"],
                               text=True, capture_output=True, timeout=5)
            pong = p.stdout.strip()
            if pong == "PONG":
                break
            time.sleep(0.2)
        if pong != "PONG":
            logs = docker(url, "logs", "--tail", "20", cid)
            raise RuntimeError(f"{host} {image}: no PONG on {bind}:{port}; logs:\n{logs.stdout}{logs.stderr}")
        info = subprocess.run(["redis-cli", "-h", bind, "-p", str(port), "info", "server"],
                              text=True, capture_output=True, timeout=5).stdout
        key = "valkey_version" if engine == "valkey" else "redis_version"
        m = re.search(rf"^{key}:(\S+)", info, re.M)
        if not m or m.group(1) != version:
            raise RuntimeError(f"{host} {image}: INFO {key} = {m.group(1) if m else None}, want {version}")
        insp = json.loads(docker(url, "inspect", cid).stdout)[0]
        if insp["HostConfig"]["Memory"] != limit:
            raise RuntimeError(f"{host} {image}: HostConfig.Memory = {insp['HostConfig']['Memory']}")
        cg = cgroup_memory_limit(insp["State"]["Pid"])
        if cg is not None and cg != limit:
            raise RuntimeError(f"{host} {image}: cgroup memory limit {cg}, want {limit}")
        rdb = saved_rdb_format(url, cid, bind, port)
        if rdb_format is not None and rdb != rdb_format:
            raise RuntimeError(f"{host} {image}: the server writes RDB format {rdb}, the catalog says {rdb_format}")
        return f"PONG, {key}={m.group(1)}, RDB format {rdb}, cgroup memory limit={cg}"
    finally:
        docker(url, "rm", "-f", "-v", cid)


def saved_rdb_format(url: str, cid: str, bind: str, port: int) -> int:
    """The RDB format the server writes: a key SAVEd to /data/dump.rdb, whose header says it ("REDIS0011";
    Valkey 9 writes "VALKEY080")."""
    for command in (["set", "smoke", "1"], ["save"]):
        r = subprocess.run(["redis-cli", "-h", bind, "-p", str(port), *command], text=True, capture_output=True,
                           timeout=20)
        if r.stdout.strip() != "OK":
            raise RuntimeError(f"{' '.join(command)} answered {r.stdout.strip() or r.stderr.strip()!r}")
    packed = subprocess.run([*docker_command(url), "cp", f"{cid}:/data/dump.rdb", "-"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(packed.stdout)) as tar:
        header = tar.extractfile(tar.getmembers()[0]).read(9)
    magic = re.match(rb"(?:REDIS(\d{4})|VALKEY(\d{3}))", header)
    if magic is None:
        raise RuntimeError(f"dump.rdb starts with {header!r}, not an RDB header")
    return int(magic.group(1) or magic.group(2))


def cgroup_memory_limit(pid: int) -> int | None:
    """The memory limit of a process' cgroup (v1 memory.limit_in_bytes or v2 memory.max)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None  # engine on another machine / namespace
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            f = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
            if f.exists():
                return int(f.read_text())
    for line in lines:
        if line.startswith("0::"):
            f = Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "memory.max"
            if f.exists():
                v = f.read_text().strip()
                return None if v == "max" else int(v)
    return None
