"""Two engine processes of one installation on one PostgreSQL (issue 16, part 2: the shared state): each has
a data directory and a process identity of its own; the passwords, the CA, the backup keyring, the tokens are
PostgreSQL's (sealed with the installation key), the backups in a directory both mount. Real Docker, real
Redis, real PostgreSQL; the served processes are stopped by their PID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis.asyncio as redis

from engine import Settings, build
from tests.conftest import HOSTS_FILE
from tests.integration import data
from tests.integration.conftest import remove_everything_of
from tests.integration.test_data_lock import CLI, Served, healthy


def installation_env(postgres_env: dict, shared: Path, home: Path, identity: str) -> dict:
    return {**postgres_env, "REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE),
            "REDIS_ADDONS_SCHEDULER_TICK": "0", "REDIS_ADDONS_WATCH_INTERVAL": "0", "REDIS_ADDONS_STATS_INTERVAL": "0",
            "REDIS_ADDONS_SECRETS_KEY_FILE": str(shared / "secrets.key"),
            "REDIS_ADDONS_BACKUPS_DIR": str(shared / "backups"), "REDIS_ADDONS_PROCESS_ID": identity}


@pytest.fixture
def installation(postgres, tmp_path):
    """(settings of process one, settings of process two) on one fresh database."""
    env, shared = postgres.new_database("two"), tmp_path / "shared"
    return tuple(Settings.from_env(installation_env(env, shared, tmp_path / name, name)) for name in ("one", "two"))


async def eventually(read, holds, timeout: float = 20.0) -> None:
    """What another process saved is heard of at its next poll of the log."""
    async with asyncio.timeout(timeout):
        while not holds(await read()):
            await asyncio.sleep(0.2)


async def test_what_one_process_makes_the_other_reads_and_operates(postgres, installation, app_name, tmp_path):
    one_settings, two_settings = installation
    known = data.expected(300)
    try:
        async with build(one_settings) as one:
            requested = await one.add_addon(app_name, "redis-starter-256")
            assert (await one.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
            addon, env_one = requested["addon"], await one.environment(app_name)
            await data.write(env_one["REDIS_URL"], known)
            backup = await one.backups.create(app_name, addon)
            assert (await one.wait_for_operation(backup["operation_id"], timeout=120))["status"] == "succeeded"
            plain = redis.from_url(env_one["REDIS_URL"])
            await plain.flushall()
            await plain.aclose()

            # The second process starts beside the first (it reads the log as it starts).
            async with build(two_settings) as two:
                env_two = await two.environment(app_name)
                assert env_one == env_two and env_one["REDIS_URL"].count(two.secrets.peek(addon)) == 1

                # The CA is the installation's: a node whose certificate one issued verifies with the other's file.
                assert one.certificates.certificate_pem == two.certificates.certificate_pem
                tls = redis.from_url(env_one["REDIS_TLS_URL"], ssl_ca_certs=str(two_settings.tls_dir / "ca.pem"),
                                     socket_connect_timeout=5)
                assert await tls.ping()
                await tls.aclose()

                # A backup taken by one restores through the other: the shared directory, the shared keyring.
                restore = await two.backups.restore(app_name, addon, backup["backup_id"])
                assert (await two.wait_for_operation(restore["operation_id"], timeout=180))["status"] == "succeeded"
                assert await data.read(env_one["REDIS_URL"], known) == known
                assert not (one_settings.home / "backups").exists() and not (two_settings.home / "backups").exists()
                assert list((tmp_path / "shared" / "backups").rglob("*"))

                # Same tokens for both, each in its own file; the secrets in the table are sealed.
                assert one_settings.token_file.read_text() == two_settings.token_file.read_text()
                dbname = one_settings.store_env["POSTGRES_DBNAME"]
                stored = postgres.psql("SELECT name || ' ' || encode(sealed, 'escape') FROM redis_addons_secrets", dbname)
                assert f"password/{addon}" in stored and "ca/ca.key" in stored and "backup-keyring" in stored
                for secret in (one.secrets.peek(addon), one_settings.token_file.read_text().strip(), "PRIVATE KEY"):
                    assert secret not in stored

                # Every process keeps the book of webhooks: one registered through the process without the
                # duties (two: one took them first) is listed by both, and removed through the other.
                assert one.duties.leading and not two.duties.leading
                made = await two.webhooks.register("http://127.0.0.1:9/hook")
                hook = made["webhook"]["id"]
                assert made["secret"] and [h["id"] for h in await two.webhooks.list()] == [hook]
                await eventually(lambda: one.webhooks.list(), lambda listed: [h["id"] for h in listed] == [hook])
                await one.webhooks.remove(hook)
                await eventually(lambda: two.webhooks.list(), lambda listed: listed == [])
    finally:
        await remove_everything_of(app_name)


async def test_two_processes_provisioning_at_once_place_their_nodes_on_different_ports(installation, app_name):
    """Each process's inventory lacks the node the other has just placed until it reads the other's save: without
    one placement at a time across the installation both chose the same lowest free port, and one node of each
    pair failed to start."""
    one_settings, two_settings = installation
    try:
        async with build(one_settings) as one, build(two_settings) as two:
            asked = await asyncio.gather(*(engine.add_addon(f"{app_name}-{i}", "redis-sandbox")
                                           for i in range(3) for engine in (one, two)))
            ended = await asyncio.gather(*(one.wait_for_operation(a["operation_id"], timeout=180) for a in asked))
            assert [e["status"] for e in ended] == ["succeeded"] * 6, ended
            where = [(v["host"], v["port"]) for v in [await one.addon(f"{app_name}-{i}", a["addon"])
                                                      for i, a in zip([0, 0, 1, 1, 2, 2], asked)]]
            assert len(set(where)) == 6, where
            for i in range(3):
                url = (await two.environment(f"{app_name}-{i}"))["REDIS_URL"]
                client = redis.from_url(url, socket_connect_timeout=5)
                assert await client.ping()
                await client.aclose()
    finally:
        for i in range(3):
            await remove_everything_of(f"{app_name}-{i}")


async def test_a_wrong_installation_key_stops_the_start_with_a_clear_error_and_no_secret(installation, tmp_path):
    one_settings, two_settings = installation
    async with build(one_settings) as one:
        token = one_settings.token_file.read_text().strip()
        assert one.secrets.password_for("app-1234")
    wrong = tmp_path / "wrong.key"
    from adapters.postgres.sealing import SecretsKeyError, write_key_file
    write_key_file(wrong)
    with pytest.raises(SecretsKeyError) as refused:
        build(Settings.from_env({**_env_of(two_settings), "REDIS_ADDONS_SECRETS_KEY_FILE": str(wrong)}))
    assert str(wrong) in str(refused.value) and "not the installation key" in str(refused.value)
    assert token not in str(refused.value)
    assert not two_settings.token_file.exists()


def _env_of(settings: Settings) -> dict:
    store = settings.store_env
    names = ("DBNAME", "HOST", "PORT", "USER", "PASSWORD")
    return {f"REDIS_ADDONS_POSTGRES_{k}": store[f"POSTGRES_{k}"] for k in names} | {
        "REDIS_ADDONS_HOME": str(settings.home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE),
        "REDIS_ADDONS_SECRETS_KEY_FILE": str(settings.secrets_key_file), "REDIS_ADDONS_PROCESS_ID": settings.process_id}


class ServedOn(Served):
    """`redis-addons serve --port 0` of one installation's process, stopped by its PID."""

    def __init__(self, env: dict):
        home = Path(env["REDIS_ADDONS_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.log = open(home.parent / f"serve-{home.name}-{len(list(home.parent.glob('serve-*')))}.log", "wb")
        self.process = subprocess.Popen([CLI, "serve", "--port", "0"], env={**os.environ, **env},
                                        stdout=self.log, stderr=subprocess.STDOUT)


async def test_one_serve_per_process_identity_freed_when_its_holder_is_killed(postgres, installation, tmp_path):
    one_settings, _ = installation
    env = _env_of(one_settings) | {"REDIS_ADDONS_SCHEDULER_TICK": "0", "REDIS_ADDONS_PROCESS_ID": "shared-id"}
    first = ServedOn(env)
    later = None
    try:
        api = await first.api()
        second = await asyncio.to_thread(
            subprocess.run, [CLI, "serve", "--port", "0"], capture_output=True, text=True, timeout=120,
            env={**os.environ, **env, "REDIS_ADDONS_HOME": str(tmp_path / "elsewhere")})
        assert second.returncode != 0
        [line] = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith("error: process identity 'shared-id' is in use by another redis-addons engine")
        assert f"pid {first.pid}" in line and f"API {api}" in line and "REDIS_ADDONS_PROCESS_ID" in line
        assert await healthy(api)

        other = ServedOn(env | {"REDIS_ADDONS_HOME": str(tmp_path / "third"), "REDIS_ADDONS_PROCESS_ID": "other-id"})
        assert await healthy(await other.api())  # two identities side by side
        assert other.stop() == 0

        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        await lock_dropped_by_the_server(postgres, one_settings, first.pid)
        later = ServedOn(env | {"REDIS_ADDONS_HOME": str(tmp_path / "elsewhere")})
        assert await healthy(await later.api())
        assert later.stop() == 0
    finally:
        for served in (first, later):
            if served is not None and served.process.poll() is None:
                served.stop(signal.SIGKILL)


async def lock_dropped_by_the_server(postgres, settings: Settings, pid: int) -> None:
    """The server ends a killed client's session (and its advisory locks) once it reads the closed socket."""
    from adapters.postgres.process_lock import lock_key

    query = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND " \
            f"((classid::bigint << 32) | objid::bigint) = ({lock_key('shared-id')} & x'ffffffffffffffff'::bigint)"
    async with asyncio.timeout(30):
        while (await asyncio.to_thread(postgres.psql, query, settings.store_env["POSTGRES_DBNAME"])).strip() != "0":
            await asyncio.sleep(0.1)
