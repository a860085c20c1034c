"""Which major upgrade steps a Business cluster takes with no downtime (issue 13, part 6): a rolling step makes
the new build's nodes replicas of the old primary, then switches (engine/cluster_upgrade.py), so a step rolls only
if a replica of the new build follows a primary of the old one. Each major step the upgrade path offers
(domain/upgrade_path.py `upgrades` over every catalogue version) is tried here on real servers: a primary of the
old build and a replica of the new one (`--replicaof`), data of every type written before and after the replica
joins; the replica must be linked, caught up to the primary's offset and hold the same data. Where both builds
serve TLS, the step is tried again as a cluster talking TLS to itself (TLS only, replication over TLS).

The catalogue records a proven step as `rolling_from` on the target's entry (domain/catalogs/versions.json), naming
the test that proved it; the last tests check it records exactly the proven steps, and that each proof exists.

Both containers run on host-a's address with host networking, carry the test's app label and are removed at the end."""

from __future__ import annotations

import ast
import asyncio
import json
import secrets
import shlex
import socket
from pathlib import Path, PurePosixPath

import aiodocker
import pytest
import redis.asyncio as redis

from adapters.docker.runtime import config_archive
from adapters.tls.certificates import CertificateAuthority
from domain.catalog import CATALOGS, EngineVersion, VersionCatalog
from domain.redis_config import TLS_DIR, TLS_FILES, tls_lines
from domain.upgrade_path import major, rolling, upgrades
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration import data
from tests.integration.conftest import docker_of, remove_everything_of

CATALOGUE = list(VersionCatalog.load())
RAW = json.loads((CATALOGS / "versions.json").read_text())["versions"]  # with the proofs' names
HOST = load_hosts(HOSTS_FILE)[0]
REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()
PROOF = "test_a_replica_of_the_new_build_follows_a_primary_of_the_old_one"


def version(number: str) -> EngineVersion:
    return next(v for v in CATALOGUE if v.version == number)


def major_steps() -> list[tuple[EngineVersion, EngineVersion]]:
    """Every major step the upgrade path offers, from any version, with or without forced TLS."""
    steps = {(current.version, step.version)
             for current in CATALOGUE for force_tls in (False, True)
             for step in upgrades(current, CATALOGUE, force_tls) if step.kind == "major"}
    return [(version(old), version(new)) for old, new in sorted(steps)]


def step_id(old: EngineVersion, new: EngineVersion) -> str:
    return f"{old.engine}-{old.version}-to-{new.engine}-{new.version}"


STEPS = major_steps()

# The steps test_a_replica_of_the_new_build_follows_a_primary_of_the_old_one showed replicating (every major step
# offered today; none failed): the catalogue marks each rolling.
PROVEN = {
    ("6.2.14", "7.0.15"),  # Redis 6 -> Redis 7
    ("6.2.7", "7.0.15"),  # Redis 6 -> Redis 7, offered to 6.2.7 when TLS is forced (no 6.2 build has it)
    ("7.0.15", "8.1.1"),  # Redis 7 -> Valkey 8, the TLS build (forced-TLS addons)
    ("7.0.15", "8.1.8"),  # Redis 7 -> Valkey 8
    ("7.0.15", "8.0.2"),  # Redis 7 -> the Redis 8 branch
    ("8.1.8", "9.1.2"),  # Valkey 8 -> Valkey 9
}


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


async def eventually(check, what: str, timeout: float = 30.0):
    """Await `check()` until it returns something true; fail naming `what` and the last answer."""
    deadline, last = asyncio.get_running_loop().time() + timeout, None
    while asyncio.get_running_loop().time() < deadline:
        try:
            if result := await check():
                return result
            last = result
        except (redis.ConnectionError, OSError) as e:
            last = e
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s; last: {last!r}")


class Servers:
    """Raw engine containers on one host, labelled with the test's app (removed by the fixture); over TLS only,
    replication included, when given a CA (each server's certificate issued by it, as the engine's nodes)."""

    def __init__(self, app: str, authority: CertificateAuthority | None = None, ca_file: Path | None = None):
        self.app, self.password = app, secrets.token_hex(16)
        self.authority, self.ca_file = authority, ca_file
        self.docker = docker_of(HOST)
        self.containers: dict[int, aiodocker.containers.DockerContainer] = {}

    async def start(self, build: EngineVersion, *extra: str) -> int:
        """A server of `build` on the host's address, without persistence (the replica loads its copy in /tmp);
        its port, once it answers."""
        port = free_port(HOST.address)
        listen = ["--port", str(port)]
        if self.authority:
            listen = ["--port", "0", *arguments(tls_lines(port, TLS_DIR, replication=True))]
        cmd = ["/usr/local/bin/redis-server", "--bind", HOST.address, *listen, "--dir", "/tmp",
               "--requirepass", self.password, "--masterauth", self.password, "--save", "", "--appendonly", "no",
               # As the engine's data nodes: a full sync starts at once, not after the default 5 s wait for others.
               "--repl-diskless-sync-delay", "0", *extra]
        config = {"Image": build.image, "Cmd": cmd, "Labels": {"redis-addons.app": self.app},
                  "HostConfig": {"NetworkMode": "host", "Memory": 256 << 20}}
        container = await self.docker.containers.create(config, name=f"{self.app}-{build.version}-{port}")
        if self.authority:
            cert, key = self.authority.issue_server_certificate(HOST.address)
            files = {"cert": cert, "key": key, "ca": self.authority.certificate_pem}
            await container.put_archive(str(PurePosixPath(TLS_DIR).parent), config_archive(
                {f"{PurePosixPath(TLS_DIR).name}/{TLS_FILES[kind]}": text for kind, text in files.items()}))
        await container.start()
        self.containers[port] = container
        client = self.client(port)
        try:
            await eventually(client.ping, f"{build.engine} {build.version} answering on {HOST.address}:{port}")
        finally:
            await client.aclose()
        return port

    def client(self, port: int, db: int = 0) -> redis.Redis:
        return redis.Redis(host=HOST.address, port=port, password=self.password, db=db, ssl=bool(self.authority),
                           ssl_ca_certs=str(self.ca_file) if self.authority else None)

    def url(self, port: int) -> str:
        if self.authority:
            return f"rediss://:{self.password}@{HOST.address}:{port}?ssl_ca_certs={self.ca_file}"
        return f"redis://:{self.password}@{HOST.address}:{port}"

    async def info(self, port: int, section: str) -> dict:
        client = self.client(port)
        try:
            return await client.info(section)
        finally:
            await client.aclose()

    async def log(self, port: int) -> str:
        return "".join(await self.containers[port].log(stdout=True, stderr=True, tail=20))


def arguments(config_lines: list[str]) -> list[str]:
    """redis.conf lines (the engine's own TLS lines) as command-line arguments: `--name value...`."""
    return [arg for line in config_lines for name, _, value in [line.partition(" ")]
            for arg in ("--" + name, *shlex.split(value))]


@pytest.fixture
async def servers(request, app_name, tmp_path):
    """Plaintext servers; TLS-only ones with `indirect` parametrization "tls"."""
    authority = None
    if getattr(request, "param", None) == "tls":
        authority = CertificateAuthority.load_or_create(tmp_path / "ca")
        (tmp_path / "ca.crt").write_text(authority.certificate_pem)
    made = Servers(app_name, authority, tmp_path / "ca.crt")
    try:
        yield made
    finally:
        await made.docker.close()
        await remove_everything_of(app_name)


def halves(keys: int = 2_000) -> tuple[dict, dict]:
    """data.expected's keys of every type, split in two sets of distinct keys (each still of every type)."""
    full = data.expected(keys)
    first = {db: {k: v for k, v in values.items() if int(k.split(":")[1]) < keys // 2} for db, values in full.items()}
    second = {db: {k: v for k, v in values.items() if k not in first[db]} for db, values in full.items()}
    return first, second


@pytest.mark.parametrize(("old", "new"), STEPS, ids=[step_id(*step) for step in STEPS])
async def test_a_replica_of_the_new_build_follows_a_primary_of_the_old_one(servers, old, new):
    await replicates(servers, old, new)


TLS_STEPS = [(old, new) for old, new in STEPS if old.tls and new.tls]


@pytest.mark.parametrize("servers", ["tls"], indirect=True)
@pytest.mark.parametrize(("old", "new"), TLS_STEPS, ids=[step_id(*step) for step in TLS_STEPS])
async def test_a_replica_of_the_new_build_follows_a_primary_of_the_old_one_over_tls(servers, old, new):
    """As a cluster talking TLS to itself: both serve TLS only, the replica reaches the primary over TLS."""
    for port in await replicates(servers, old, new):
        client = servers.client(port)
        assert await client.config_get("port") == {"port": "0"}
        assert await client.config_get("tls-replication") == {"tls-replication": "yes"}
        await client.aclose()


async def replicates(servers: Servers, old: EngineVersion, new: EngineVersion) -> tuple[int, int]:
    """A replica of `new` follows a primary of `old` with data of every type; their ports."""
    before, after = halves()
    primary = await servers.start(old)
    await data.write(servers.url(primary), before)

    replica = await servers.start(new, "--replicaof", HOST.address, str(primary))
    assert (await servers.info(replica, "server")).get(f"{new.engine}_version") == new.version

    async def linked() -> bool:
        return (await servers.info(replica, "replication")).get("master_link_status") == "up"

    try:
        await eventually(linked, f"the {new.engine} {new.version} replica linked to the {old.engine} {old.version} "
                                 "primary (master_link_status:up)")
    except AssertionError as e:
        raise AssertionError(f"{e}\nreplica log:\n{await servers.log(replica)}"
                             f"\nprimary log:\n{await servers.log(primary)}") from None
    await data.write(servers.url(primary), after)

    async def caught_up() -> bool:
        offset = (await servers.info(primary, "replication"))["master_repl_offset"]
        return (await servers.info(replica, "replication")).get("slave_repl_offset") == offset

    await eventually(caught_up, "the replica's offset at the primary's")
    everything = {db: {**before[db], **after[db]} for db in data.DATABASES}
    assert await data.read(servers.url(replica), everything) == everything
    primary_sees = (await servers.info(primary, "replication"))
    assert primary_sees["connected_slaves"] == 1 and primary_sees["slave0"]["state"] == "online"
    return primary, replica


def test_the_upgrade_path_offers_major_steps_to_prove():
    """The proof above runs over what the catalogue offers: a catalogue offering no major step would prove nothing."""
    assert {(old.version, new.version) for old, new in STEPS} >= PROVEN


@pytest.mark.parametrize(("old", "new"), STEPS, ids=[step_id(*step) for step in STEPS])
def test_the_catalogue_marks_rolling_exactly_the_major_steps_proven_to_replicate(old, new):
    assert rolling(old, new) == ((old.version, new.version) in PROVEN)


def test_each_rolling_step_in_the_catalogue_names_a_test_that_exists():
    named = [(entry, old, proof) for entry in RAW for old, proof in entry.get("rolling_from", {}).items()]
    assert named, "the catalogue names no proof"
    for entry, old, proof in named:
        path, _, test = proof.partition("::")
        name, _, param = test.partition("[")
        assert path == THIS_FILE or Path(path).name.startswith("test_business_upgrade"), \
            f"{proof}: a proof is a test of {THIS_FILE} or tests/integration/test_business_upgrade*.py"
        assert (REPO / path).is_file(), f"{proof}: no such file"
        assert name in functions_of(REPO / path), f"{proof}: no such test in {path}"
        if path == THIS_FILE:  # one step of the proof above: a step onto this entry from the major it is listed for
            proven = {step_id(o, n): (o, n) for o, n in STEPS if (o.version, n.version) in PROVEN}
            assert name == PROOF and param.endswith("]") and param[:-1] in proven, f"{proof}: no such proven step"
            o, n = proven[param[:-1]]
            assert (n.version, f"{o.engine} {major(o)}") == (entry["version"], old), \
                f"{proof} proves {o.engine} {o.version} -> {n.engine} {n.version}, not {old} -> {entry['version']}"


def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
