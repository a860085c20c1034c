"""The three local Docker engines `make setup` starts (host-a, host-b, host-c: three failure domains
for Business clusters): each answers on its own socket, runs like the others with no bridge, and its
containers listen only on its own loopback address. Also var/hosts.json as scripts/write-hosts.sh
writes it, for local engines and for one external engine shared by the three host names."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from pathlib import Path

import aiodocker

from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE, REPO
from tests.integration.conftest import containers_of

NAMES = ["host-a", "host-b", "host-c"]
EXTERNAL = "unix:///var/run/docker.sock"


def hosts_json() -> list[dict]:
    return json.loads(HOSTS_FILE.read_text())["hosts"]


def local_engines() -> bool:
    """True when `make setup` started its own dockerd (the case here); False for an external engine."""
    urls = {h["docker_url"] for h in hosts_json()}
    assert urls == {f"unix:///run/redis-addons/{n}/docker.sock" for n in NAMES} or urls == {EXTERNAL}, urls
    return urls != {EXTERNAL}


def dockerd_command_line(name: str) -> list[str]:
    """The command line of the dockerd named in /run/redis-addons/<name>/docker.pid."""
    pid = Path(f"/run/redis-addons/{name}/docker.pid").read_text().strip()
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs process `pid` listens on over TCP (IPv4 and IPv6), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if size == 4:
                raw = raw[::-1]
            else:  # four 32-bit words, each in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
            found.add((str(ipaddress.ip_address(raw)), int(port, 16)))
    return found


def refused(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) != 0


def test_hosts_json_lists_three_hosts_with_their_own_loopback_address_and_port_range():
    hosts = hosts_json()
    assert [h["name"] for h in hosts] == NAMES
    assert [h["bind"] for h in hosts] == ["127.0.1.1", "127.0.2.1", "127.0.3.1"]
    assert all(ipaddress.ip_address(h["bind"]).is_loopback for h in hosts)
    ranges = sorted((range(h["ports"][0], h["ports"][1] + 1) for h in hosts), key=lambda r: r.start)
    assert all(len(r) > 0 for r in ranges)
    assert all(a[-1] < b[0] for a, b in zip(ranges, ranges[1:])), "port ranges overlap"
    # Below the kernel's ephemeral ports: an outgoing connection from a host's address cannot hold a node's port.
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert ranges[-1][-1] < ephemeral_start
    assert [h.name for h in load_hosts(HOSTS_FILE)] == NAMES  # and the engine reads it


def test_write_hosts_gives_an_external_engine_the_same_three_hosts_on_one_socket(tmp_path):
    env = dict(os.environ, REDIS_ADDONS_HOME=str(tmp_path), REDIS_ADDONS_ENGINES="external")
    subprocess.run([str(REPO / "scripts" / "write-hosts.sh")], env=env, check=True, capture_output=True, timeout=30)
    external = json.loads((tmp_path / "hosts.json").read_text())["hosts"]
    assert [h["docker_url"] for h in external] == [EXTERNAL] * 3
    local = hosts_json()
    assert [{**h, "docker_url": None} for h in external] == [{**h, "docker_url": None} for h in local]


async def test_the_three_engines_answer_each_on_its_own_socket():
    roots = {}  # (the daemon ID is the same for all three: it comes from /etc/docker, not the data root)
    for host in load_hosts(HOSTS_FILE):
        docker = aiodocker.Docker(url=host.docker_url)
        try:
            info = await docker.system.info()
            roots[host.name] = info["DockerRootDir"]
            assert (await docker.version())["ApiVersion"]
            if local_engines():
                assert info["DockerRootDir"] == f"/var/lib/redis-addons/{host.name}"
                assert info["Driver"] == "vfs"
        finally:
            await docker.close()
    assert list(roots) == NAMES
    assert len(set(roots.values())) == (3 if local_engines() else 1)


def test_engines_status_reports_every_engine_up():
    status = subprocess.run([str(REPO / "scripts" / "engines.sh"), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    if local_engines():
        lines = status.stdout.splitlines()
        # the fault tests' engine and the second stream's, started by make setup beside the three (one over TCP, TLS)
        hosts = [h for f in ("hosts.json", "fault-hosts.json", "scaleout-hosts.json") for h in load_hosts(HOSTS_FILE.with_name(f))]
        pids = [Path(f"/run/redis-addons/{h.name}/docker.pid").read_text().strip() for h in hosts]
        assert lines == [f"{h.name}: up ({h.docker_url}{' with mutual TLS' if h.tls else ''}, dockerd pid {p})"
                         for h, p in zip(hosts, pids)]
    else:
        assert f"using the existing Docker engine at /var/run/docker.sock for {' '.join(NAMES)}" in status.stderr


async def test_each_daemon_runs_like_the_others_with_no_bridge_and_no_iptables():
    for host in load_hosts(HOSTS_FILE):
        docker = aiodocker.Docker(url=host.docker_url)
        try:
            networks = await docker.networks.list()
        finally:
            await docker.close()
        if local_engines():
            assert sorted(n["Driver"] for n in networks) == ["host", "null"], networks
        else:  # a developer's engine has its own networks; ours only ever use the host's
            assert "host" in {n["Driver"] for n in networks}
    if local_engines():
        lines = {n: dockerd_command_line(n) for n in NAMES}
        for flag in ("--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
                     "--userland-proxy=false"):
            assert all(flag in line for line in lines.values()), flag
        for name, line in lines.items():
            assert line[line.index("-H") + 1] == f"unix:///run/redis-addons/{name}/docker.sock"
            assert line[line.index("--data-root") + 1] == f"/var/lib/redis-addons/{name}"
            assert line[line.index("--exec-root") + 1] == f"/run/redis-addons/{name}/exec"
            assert line[line.index("--pidfile") + 1] == f"/run/redis-addons/{name}/docker.pid"
            assert line[line.index("--cgroup-parent") + 1] == f"/redis-addons/{name}"
        # The same daemon but for its own paths: host-c is started exactly like the other two.
        same = {tuple(arg.replace(name, "host-?") for arg in line) for name, line in lines.items()}
        assert len(same) == 1, same


def test_the_tls_engine_listens_only_on_its_tcp_address_and_requires_a_client_certificate():
    """host-g (scaleout-hosts.json) has no unix socket: every use of it goes through TLS."""
    [host] = [h for h in load_hosts(HOSTS_FILE.with_name("scaleout-hosts.json")) if h.tls]
    line = dockerd_command_line(host.name)
    assert [line[i + 1] for i, arg in enumerate(line) if arg == "-H"] == [host.docker_url]
    assert "--tlsverify" in line and not any(arg.startswith("--tls=") for arg in line)
    address, port = host.docker_url.removeprefix("tcp://").rsplit(":", 1)
    pid = int(Path(f"/run/redis-addons/{host.name}/docker.pid").read_text())
    assert listening(pid) == {(address, int(port))}
    assert not Path(f"/run/redis-addons/{host.name}/docker.sock").exists()


async def test_each_hosts_nodes_listen_only_on_that_hosts_address(engine, app_name):
    """Three addons on an empty engine go one to each host (the most free memory first); each node,
    plaintext and TLS, listens on its host's 127.x address and nowhere else."""
    addresses = {h.name: h.address for h in engine.settings.hosts}
    placed = {}
    for _ in NAMES:
        requested = await engine.add_addon(app_name, "redis-starter-256")
        operation = await engine.wait_for_operation(requested["operation_id"], timeout=90)
        assert operation["status"] == "succeeded", operation
        row = await engine.addon(app_name, requested["addon"])
        placed[row["host"]] = (requested["addon"], row)
    assert sorted(placed) == NAMES

    for host, (addon, row) in placed.items():
        [node] = await containers_of(addon)
        assert node["Config"]["Labels"]["redis-addons.host"] == host
        assert node["HostConfig"]["NetworkMode"] == "host"
        pid = node["State"]["Pid"]
        assert listening(pid) == {(addresses[host], row["port"]), (addresses[host], row["tls_port"])}
        for other in ["127.0.0.1", *(a for h, a in addresses.items() if h != host)]:
            assert refused(other, row["port"]), (host, other)
        assert not refused(addresses[host], row["port"])
        if local_engines():  # run by that host's own dockerd
            assert f"/redis-addons/{host}/" in Path(f"/proc/{pid}/cgroup").read_text()
