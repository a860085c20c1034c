"""Force TLS (reference, "Force TLS Connections"), proven by what real clients experience on a
real node: TLS is served beside plaintext and verified with the installation's CA; forced, a
plaintext connection is refused (and one already open is dropped), TLS works with redis-py and
`redis-cli --tls`, a client trusting another CA fails verification, and the app is restarted with
the rediss:// URL; turned off, plaintext works again. Forced TLS survives a node restart, a plan
change, a backup and a restore."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from adapters.tls import CertificateAuthority
from domain.errors import TlsNotAvailable
from engine import build
from tests.integration.conftest import remove_everything_of, running_addon, settings_for
from tests.integration.test_settings import change, kill_and_start

REDIS_CLI = shutil.which("redis-cli")


@pytest.fixture
def ca_file(engine, tmp_path):
    """The CA as a client gets it (`tls-ca > ca.pem`)."""
    return write(tmp_path / "ca.pem", engine.certificates.certificate_pem)


@pytest.fixture
def ca_file_of_home(tmp_path):
    """The same, for a test that builds its own engine."""
    return lambda engine: write(tmp_path / "ca.pem", engine.certificates.certificate_pem)


def write(path, text: str):
    path.write_text(text)
    return str(path)


async def environment(engine, app) -> dict[str, str]:
    return await engine.environment(app)


async def answers(url: str, **tls) -> bool:
    """A fresh connection answers PING (a refused or unverified one does not)."""
    client = redis.from_url(url, socket_connect_timeout=2, **tls)
    try:
        return await client.ping()
    except (redis.ConnectionError, OSError):
        return False
    finally:
        await client.aclose()


def plaintext_url(env: dict[str, str], engine_row: dict) -> str:
    """The redis:// URL of the node's plaintext port, as it was before TLS was forced."""
    tls = urlsplit(env["REDIS_TLS_URL"])
    return tls._replace(scheme="redis", netloc=tls.netloc.rsplit(":", 1)[0] + f":{engine_row['port']}").geturl()


def redis_cli_tls(url: str, ca: str, *command: str) -> subprocess.CompletedProcess:
    parts = urlsplit(url)
    return subprocess.run(
        [REDIS_CLI, "--tls", "--cacert", ca, "-h", parts.hostname, "-p", str(parts.port), "--user", "default",
         "--no-auth-warning", *command],
        env={**os.environ, "REDISCLI_AUTH": parts.password}, capture_output=True, text=True, timeout=20)


async def test_tls_is_served_beside_plaintext_and_verified_with_the_ca(engine, app_name, ca_file):
    addon = await running_addon(engine, app_name)
    env = await environment(engine, app_name)
    assert urlsplit(env["REDIS_URL"]).scheme == "redis" and urlsplit(env["REDIS_TLS_URL"]).scheme == "rediss"
    assert env["SCALINGO_REDIS_TLS_URL"] == env["REDIS_TLS_URL"]
    assert urlsplit(env["REDIS_TLS_URL"]).port == (await engine.addon(app_name, addon))["tls_port"]

    assert await answers(env["REDIS_URL"])
    assert await answers(env["REDIS_TLS_URL"], ssl_ca_certs=ca_file)
    # The certificate names the address clients connect to: the host name is checked, not only the chain.
    assert await answers(env["REDIS_TLS_URL"], ssl_ca_certs=ca_file, ssl_check_hostname=True)


async def test_forced_tls_refuses_plaintext_drops_open_plaintext_connections_and_restarts_the_app(
        engine, app_name, ca_file, tmp_path, restart_hook):
    hook, received = await restart_hook(200)
    addon = await running_addon(engine, app_name)
    await engine.register_app(app_name, restart="hook", url=hook)
    before = await environment(engine, app_name)
    plaintext = before["REDIS_URL"]
    already_open = redis.from_url(plaintext, decode_responses=True)
    await already_open.set("written", "over plaintext")

    operation = await change(engine, app_name, addon, "force-tls")

    # The app moved to the rediss:// URL first, while plaintext still worked; then plaintext closed.
    assert [s["name"] for s in operation["steps"]] == ["restart_app", "apply", "verify", "publish"]
    assert not await answers(plaintext)  # refused
    with pytest.raises(redis.ConnectionError):  # dropped: no plaintext connection stays open
        await already_open.get("written")
    await already_open.aclose()
    after = await environment(engine, app_name)
    assert after["REDIS_URL"] == after["SCALINGO_REDIS_URL"] == after["REDIS_TLS_URL"] == before["REDIS_TLS_URL"]
    assert received == [{"app": app_name, "environment": after}]  # the app restarted with the rediss:// URL

    client = redis.from_url(after["REDIS_URL"], ssl_ca_certs=ca_file, decode_responses=True)
    assert await client.get("written") == "over plaintext"  # TLS, verified with the CA
    await client.aclose()
    cli = redis_cli_tls(after["REDIS_URL"], ca_file, "GET", "written")
    assert (cli.returncode, cli.stdout.strip()) == (0, "over plaintext"), cli.stderr

    other_ca = write(tmp_path / "other-ca.pem", CertificateAuthority.load_or_create(tmp_path / "other").certificate_pem)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        other = redis.from_url(after["REDIS_URL"], ssl_ca_certs=other_ca)
        try:
            await other.ping()
        finally:
            await other.aclose()
    refused = redis_cli_tls(after["REDIS_URL"], other_ca, "PING")
    assert refused.stdout.strip() != "PONG" and "certificate verify failed" in (refused.stderr + refused.stdout)

    operation = await change(engine, app_name, addon, "force-tls", enabled=False)
    assert await answers(plaintext)  # plaintext works again
    assert (await environment(engine, app_name))["REDIS_URL"] == plaintext
    assert received[-1] == {"app": app_name, "environment": before}
    assert await answers(before["REDIS_TLS_URL"], ssl_ca_certs=ca_file)  # and TLS beside it


async def test_forced_tls_survives_a_node_restart_a_plan_change_a_backup_and_a_restore(engine, app_name, ca_file):
    addon = await running_addon(engine, app_name)
    await change(engine, app_name, addon, "aof")  # the last write survives the kill below
    await change(engine, app_name, addon, "force-tls")
    env = await environment(engine, app_name)
    client = redis.from_url(env["REDIS_URL"], ssl_ca_certs=ca_file, decode_responses=True)
    await client.set("kept", "through everything")
    await client.aclose()

    await kill_and_start(engine, app_name, addon)
    assert await eventually_answers(env["REDIS_URL"], ssl_ca_certs=ca_file)
    assert not await answers(plaintext_url(env, await engine.addon(app_name, addon)))

    moved = await engine.change_plan(app_name, addon, "redis-starter-512")
    assert (await engine.wait_for_operation(moved["operation_id"], timeout=120))["status"] == "succeeded"
    row, env = await engine.addon(app_name, addon), await environment(engine, app_name)
    assert row["host"] == "host-b" and urlsplit(env["REDIS_URL"]).port == row["tls_port"]
    assert urlsplit(env["REDIS_URL"]).scheme == "rediss"
    assert not await answers(plaintext_url(env, row))
    client = redis.from_url(env["REDIS_URL"], ssl_ca_certs=ca_file, ssl_check_hostname=True, decode_responses=True)
    assert await client.get("kept") == "through everything"

    backup = await engine.backups.create(app_name, addon)
    assert (await engine.wait_for_operation(backup["operation_id"], timeout=120))["status"] == "succeeded"
    await client.set("kept", "changed after the backup")
    await client.aclose()
    restored = await engine.backups.restore(app_name, addon, backup["backup_id"])
    assert (await engine.wait_for_operation(restored["operation_id"], timeout=120))["status"] == "succeeded"
    client = redis.from_url(env["REDIS_URL"], ssl_ca_certs=ca_file, decode_responses=True)
    assert await client.get("kept") == "through everything"
    await client.aclose()
    assert not await answers(plaintext_url(env, row))
    assert (await engine.database.show(app_name, addon))["force_tls"] is True


async def eventually_answers(url: str, **tls) -> bool:
    for _ in range(200):
        if await answers(url, **tls):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_an_engine_build_without_tls_has_no_tls_url_and_no_ca_to_give(engine, app_name):
    requested = await engine.add_addon(app_name, "redis-starter-256", version="6.2.14")
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=90))["status"] == "succeeded"
    assert set(await environment(engine, app_name)) == {"REDIS_URL", "SCALINGO_REDIS_URL"}
    with pytest.raises(TlsNotAvailable, match="runs 6.2.14, built without TLS; the versions with TLS are: 7.0.15"):
        await engine.database.tls_ca(app_name, requested["addon"])
    assert [op["kind"] for op in await engine.operations(requested["addon"])] == ["provision"]


async def test_a_failed_turning_off_leaves_tls_forced_and_plaintext_refused(home, app_name, ca_file_of_home):
    """A real failure: while TLS is forced, something else took the plaintext port, so the server
    cannot open it again. The change is undone: still forced, plaintext still refused."""
    try:
        async with build(settings_for(home, step_deadline_s=3)) as engine:
            addon = await running_addon(engine, app_name)
            await change(engine, app_name, addon, "force-tls")
            row, forced_env = await engine.addon(app_name, addon), await environment(engine, app_name)
            squatter = socket.socket()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((row["address"], row["port"]))
            squatter.listen()
            try:
                requested = await engine.database.change(app_name, addon, "force-tls", False)
                operation = await engine.wait_for_operation(requested["operation_id"], timeout=60)
            finally:
                squatter.close()

            assert operation["status"] == "failed" and "apply" in operation["error"], operation
            assert (await engine.database.show(app_name, addon))["force_tls"] is True
            assert await environment(engine, app_name) == forced_env
            assert not await answers(plaintext_url(forced_env, row))  # the port was not opened after all
            assert await answers(forced_env["REDIS_URL"], ssl_ca_certs=ca_file_of_home(engine))
    finally:
        await remove_everything_of(app_name)
