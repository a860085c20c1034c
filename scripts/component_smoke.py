"""The smoke test of a freshly imported Sentinel or HAProxy image (scripts/build-images.py), run as the
component will run: host networking on the host's 127.x address, the image's non-root user, a
read-only root filesystem, and its configuration on a fresh volume (no tmpfs).

  sentinel  a minimal sentinel.conf (port, bind) answers PING, reports redis_mode:sentinel and the
            catalog's version, and has rewritten its own file on the volume (it adds `sentinel myid`)
  haproxy   `haproxy -c -f` accepts a minimal haproxy.cfg, then the proxy forwards a TCP connection
            to a listener of this script's and back
Everything it makes (containers and the volume, label redis-addons.smoke=1) is removed.
"""
from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from image_smoke import docker, docker_command, smoke_bind

SENTINEL_PORT, HAPROXY_PORT = 39998, 39997


def config_tar(name: str, text: str, uid: int, gid: int, mode: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.uid, info.gid, info.mode, info.mtime = len(data), uid, gid, mode, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_file(url: str, container: str, path: str) -> tuple[bytes, int]:
    """(content, owner uid) of one file of a container, volumes included (`docker cp` to stdout)."""
    r = subprocess.run([*docker_command(url), "cp", f"{container}:{path}", "-"], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"docker cp {container}:{path}: {r.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        member = tar.next()
        return tar.extractfile(member).read(), member.uid


def process_uid(url: str, container: str) -> int | None:
    """The real uid of the container's first process, from /proc (None: the engine is elsewhere)."""
    pid = json.loads(docker(url, "inspect", container).stdout)[0]["State"]["Pid"]
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


class Run:
    """Containers and one volume made for a smoke test, removed at the end."""

    def __init__(self, host: str, url: str, component: dict):
        self.host, self.url, self.component = host, url, component
        self.name = f"redis-addons-smoke-{host}-{component['role']}"
        self.volume = f"{self.name}-config"
        self.containers: list[str] = []

    def __enter__(self) -> Run:
        self.clean()
        self.must(docker(self.url, "volume", "create", "--label", "redis-addons.smoke=1", self.volume), "volume create")
        return self

    def __exit__(self, *_):
        self.clean()

    def clean(self) -> None:
        for name in self.containers or [self.name, self.name + "-check"]:
            docker(self.url, "rm", "-f", "-v", name)
        docker(self.url, "volume", "rm", "-f", self.volume)

    def must(self, r: subprocess.CompletedProcess, doing: str) -> subprocess.CompletedProcess:
        if r.returncode != 0:
            raise RuntimeError(f"{self.host} {self.component['image']}: {doing} failed: {r.stderr.strip()}")
        return r

    def create(self, name: str, *cmd: str) -> str:
        """A container as the component runs (adapters/docker/container_config.py): host network, image user, read-only
        root, config volume, no capability, no new privileges, a pids limit."""
        c = self.component
        self.containers.append(name)
        self.must(docker(self.url, "create", "--name", name, "--label", "redis-addons.smoke=1", "--network", "host",
                         "--read-only", "--memory", "128m", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                         "--pids-limit", "256",
                         "--mount", f"type=volume,src={self.volume},dst={c['config_dir']}", c["image"], *cmd),
                  "docker create")
        return name

    def put_config(self, container: str, text: str) -> None:
        c = self.component
        uid, gid = (int(x) for x in c["user"].split(":")) if c["config_writable"] else (0, 0)
        tar = config_tar(c["config_file"], text, uid, gid, 0o600 if c["config_writable"] else 0o644)
        r = subprocess.run([*docker_command(self.url), "cp", "-", f"{container}:{c['config_dir']}"], input=tar,
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"{self.host} {c['image']}: docker cp of {c['config_file']} failed: "
                               f"{r.stderr.decode(errors='replace').strip()}")

    def logs(self, container: str) -> str:
        r = docker(self.url, "logs", "--tail", "20", container)
        return (r.stdout + r.stderr).strip()

    def check_user(self, container: str) -> str:
        c = self.component
        user = json.loads(docker(self.url, "inspect", container).stdout)[0]["Config"]["User"]
        uid = process_uid(self.url, container)
        if user != c["user"] or uid not in (None, int(c["user"].split(":")[0])):
            raise RuntimeError(f"{self.host} {c['image']}: runs as {user!r} (process uid {uid}), want {c['user']}")
        return f"uid {uid if uid is not None else user}"


def smoke_sentinel(run: Run) -> str:
    c, bind = run.component, smoke_bind(run.host)
    name = run.create(run.name)
    run.put_config(name, f"port {SENTINEL_PORT}\nbind {bind}\n")
    run.must(docker(run.url, "start", name), "docker start")
    cli = ["redis-cli", "-h", bind, "-p", str(SENTINEL_PORT)]
    deadline, pong = time.time() + 15, ""
    while time.time() < deadline and pong != "PONG":
        pong = subprocess.run([*cli, "ping"], text=True, capture_output=True, timeout=5).stdout.strip()
        if pong != "PONG":
            time.sleep(0.2)
    if pong != "PONG":
        raise RuntimeError(f"{run.host} {c['image']}: no PONG on {bind}:{SENTINEL_PORT}; logs:\n{run.logs(name)}")
    info = subprocess.run([*cli, "info", "server"], text=True, capture_output=True, timeout=5).stdout
    mode = re.search(r"^redis_mode:(\S+)", info, re.M)
    version = re.search(r"^redis_version:(\S+)", info, re.M)
    if not mode or mode.group(1) != "sentinel" or not version or version.group(1) != c["version"]:
        raise RuntimeError(f"{run.host} {c['image']}: INFO says mode {mode and mode.group(1)}, version "
                           f"{version and version.group(1)}; want sentinel {c['version']}")
    user = run.check_user(name)
    text, owner = read_file(run.url, name, f"{c['config_dir']}/{c['config_file']}")
    if b"\nsentinel myid " not in b"\n" + text or owner != int(c["user"].split(":")[0]):
        raise RuntimeError(f"{run.host} {c['image']}: {c['config_file']} not rewritten by the Sentinel on its "
                           f"volume (owner uid {owner}):\n{text.decode(errors='replace')}")
    return f"PONG, redis_mode:sentinel {c['version']}, {user}, read-only root, {c['config_file']} rewritten"


def echo_listener(bind: str) -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server((bind, 0))
    server.settimeout(15)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def smoke_haproxy(run: Run) -> str:
    c, bind = run.component, smoke_bind(run.host)
    server, thread = echo_listener(bind)
    try:
        config = (f"global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n"
                  f"  timeout server 10s\nfrontend smoke\n  bind {bind}:{HAPROXY_PORT}\n  default_backend echo\n"
                  f"backend echo\n  server echo {bind}:{server.getsockname()[1]}\n")
        check = run.create(run.name + "-check", "/usr/local/sbin/haproxy", "-c", "-f",
                           f"{c['config_dir']}/{c['config_file']}")
        run.put_config(check, config)
        r = docker(run.url, "start", "-a", check)
        if r.returncode != 0 or "Configuration file is valid" not in r.stdout + r.stderr:
            raise RuntimeError(f"{run.host} {c['image']}: haproxy -c refused a minimal config: {(r.stdout + r.stderr).strip()}")
        name = run.create(run.name)
        run.must(docker(run.url, "start", name), "docker start")
        deadline, answer = time.time() + 15, b""
        message = f"redis-addons smoke {run.host}\n".encode()
        while time.time() < deadline and answer != message:
            try:
                with socket.create_connection((bind, HAPROXY_PORT), timeout=5) as conn:
                    conn.sendall(message)
                    answer = conn.recv(4096)
            except OSError:
                time.sleep(0.2)
        if answer != message:
            raise RuntimeError(f"{run.host} {c['image']}: nothing forwarded through {bind}:{HAPROXY_PORT} "
                               f"(got {answer!r}); logs:\n{run.logs(name)}")
        user = run.check_user(name)
    finally:
        server.close()
        thread.join(timeout=5)
    return f"config valid, TCP forwarded through {bind}:{HAPROXY_PORT}, {user}, read-only root"


def smoke_component(host: str, url: str, component: dict) -> str:
    with Run(host, url, component) as run:
        if component["role"] == "sentinel":
            return smoke_sentinel(run)
        if component["role"] == "haproxy":
            return smoke_haproxy(run)
        raise RuntimeError(f"no smoke test for component {component['role']!r}")
