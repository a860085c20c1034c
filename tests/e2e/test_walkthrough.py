"""The README's walk-through, as a user types it: `redis-addons serve` in one terminal,
the CLI and redis-cli in another."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HOSTS_FILE

CLI = str(Path(sys.executable).with_name("redis-addons"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A real `redis-addons serve` on its own data directory and port; stopped with SIGTERM."""
    home = tmp_path / "var"
    env = dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE),
               REDIS_ADDONS_API_PORT=str(free_port()), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("REDIS_ADDONS_API", None)
    env.pop("REDIS_ADDONS_TOKEN", None)
    log = open(tmp_path / "serve.log", "w+")
    process = subprocess.Popen([CLI, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not (home / "api-url").exists():
        assert process.poll() is None, Path(log.name).read_text()
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.1)
    # The CLI gets no REDIS_ADDONS_HOME: run from the folder that holds var/, it finds server and token there.
    client_env = {k: v for k, v in env.items() if k != "REDIS_ADDONS_HOME"}
    yield client_env, tmp_path, Path(log.name)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def run(env, cwd, *argv, check=True) -> subprocess.CompletedProcess:
    """The CLI run from the directory that holds var/: it finds the server and token itself."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_a_user_adds_uses_and_removes_a_redis_addon_with_the_cli(server):
    env, cwd, log = server
    app = f"e2e-{os.getpid()}"

    plans = run(env, cwd, CLI, "addons-plans", "redis").stdout
    assert re.search(r"\| redis-starter-1024\s+\| 1024 MiB", plans)

    added = run(env, cwd, CLI, "--app", app, "addons-add", "redis", "redis-starter-1024").stdout
    assert added.startswith("-----> Addon redis has been provisioned\n")
    addon = re.search(r"ID: (\S+)", added).group(1)
    assert re.fullmatch(rf"{app}-\d{{4}}", addon)
    assert "Modified variables: [REDIS_URL SCALINGO_REDIS_URL REDIS_TLS_URL SCALINGO_REDIS_TLS_URL]" in added
    assert "Message from addon provider: Database successfully created" in added

    listing = run(env, cwd, CLI, "--app", app, "addons").stdout
    assert re.search(rf"\| Redis \| {addon} \| redis-starter-1024 \| 7\.0\.15\s+\| running", listing)

    variables = dict(line.split("=", 1) for line in run(env, cwd, CLI, "--app", app, "env").stdout.splitlines())
    assert variables["REDIS_URL"] == variables["SCALINGO_REDIS_URL"]
    url = variables["REDIS_URL"]
    try:
        assert run(env, cwd, "redis-cli", "--no-auth-warning", "-u", url, "set", "k", "v").stdout.strip() == "OK"
        assert run(env, cwd, "redis-cli", "--no-auth-warning", "-u", url, "get", "k").stdout.strip() == "v"
        # The README's force-TLS walk: the CA from tls-ca, force-tls, then redis-cli on the rediss:// URL.
        (cwd / "ca.pem").write_text(run(env, cwd, CLI, "--app", app, "--addon", "redis", "tls-ca").stdout)
        forced = run(env, cwd, CLI, "--app", app, "--addon", "redis", "settings-enable", "force-tls").stdout
        assert f"-----> Force TLS enabled on {addon}" in forced
        tls_url = dict(line.split("=", 1) for line in run(env, cwd, CLI, "--app", app, "env").stdout.splitlines())["REDIS_URL"]
        assert tls_url.startswith("rediss://")
        assert run(env, cwd, "redis-cli", "--no-auth-warning", "-u", tls_url, "--cacert", "ca.pem",
                   "get", "k").stdout.strip() == "v"
        assert "v" not in run(env, cwd, "redis-cli", "--no-auth-warning", "-u", url, "get", "k", check=False).stdout
    finally:
        removed = run(env, cwd, CLI, "--app", app, "addons-remove", addon).stdout
    assert f"Addon {addon} has been removed" in removed
    refused = run(env, cwd, "redis-cli", "--no-auth-warning", "-u", url, "ping", check=False)
    assert "PONG" not in refused.stdout

    password = re.match(r"redis://default:([^@]+)@", url).group(1)
    server_log = log.read_text()
    assert '"event": "step succeeded"' in server_log and addon in server_log
    assert password not in server_log, "a password leaked into the server's log"


def test_the_cli_finds_the_server_from_any_directory(server, tmp_path):
    """`serve` records its API and token in the user's configuration directory, owner-only."""
    env, _, _ = server
    recorded = Path(env["XDG_CONFIG_HOME"]) / "redis-addons" / "config.json"
    assert recorded.stat().st_mode & 0o777 == 0o600
    assert recorded.parent.stat().st_mode & 0o077 == 0
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    plans = run(env, elsewhere, CLI, "addons-plans", "redis").stdout
    assert re.search(r"\| redis-starter-1024\s+\| 1024 MiB", plans)
    # The environment variables still win over what is recorded.
    wrong = run(dict(env, REDIS_ADDONS_TOKEN="not-the-token"), elsewhere, CLI, "addons-plans", "redis", check=False)
    assert wrong.returncode == 1 and "invalid bearer token" in wrong.stderr


def test_the_cli_says_when_no_server_answers(tmp_path):
    env = dict(os.environ, REDIS_ADDONS_HOME=str(tmp_path), REDIS_ADDONS_API=f"http://127.0.0.1:{free_port()}",
               REDIS_ADDONS_TOKEN="x")
    done = run(env, tmp_path, CLI, "addons-plans", "redis", check=False)
    assert done.returncode == 1
    assert "cannot reach the redis-addons API" in done.stderr and "Traceback" not in done.stderr
