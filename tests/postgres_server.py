"""A throwaway PostgreSQL server for the tests and benchmarks: Debian's `postgresql` package, a cluster in a
temporary directory, listening on a free loopback port only, run as the `postgres` user (the server refuses
root). Stopped by its own data directory's `pg_ctl stop`, which signals the pid in that directory's pid file
and nothing else."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

HOST = "127.0.0.1"
USER = "postgres"


def pg_bin(tool: str) -> str:
    """The newest installed major version's tool (Debian keeps them under /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError(f"no PostgreSQL {tool} under /usr/lib/postgresql: run `make setup` (Debian's postgresql)")
    return found[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    def __init__(self):
        self.password = secrets.token_urlsafe(18)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="redis-addons-pg-"))
        self.data = self.root / "data"
        self._created = 0

    def _as_postgres(self, *argv: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", USER, "--", *argv], check=True, capture_output=True, text=True, **kw)

    def start(self) -> ThrowawayPostgres:
        shutil.chown(self.root, USER, USER)
        self.root.chmod(0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        shutil.chown(pwfile, USER, USER)
        self._as_postgres(pg_bin("initdb"), "-D", str(self.data), "-U", USER, "--auth=scram-sha-256",
                          f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8")
        pwfile.unlink()
        options = f"-h {HOST} -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                          "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run([pg_bin("psql"), "-h", HOST, "-p", str(self.port), "-U", USER, "-d", dbname,
                               "-v", "ON_ERROR_STOP=1", "-Atc", sql], check=True, capture_output=True, text=True,
                              env=env)
        return done.stdout

    def new_database(self, prefix: str = "addons") -> dict[str, str]:
        """A fresh empty database; the environment that points an engine at it."""
        self._created += 1
        name = f"{prefix}_{os.getpid()}_{self._created}"
        self.psql(f"CREATE DATABASE {name}")
        return self.env(name)

    def env(self, dbname: str) -> dict[str, str]:
        return {"REDIS_ADDONS_POSTGRES_DBNAME": dbname, "REDIS_ADDONS_POSTGRES_HOST": HOST,
                "REDIS_ADDONS_POSTGRES_PORT": str(self.port), "REDIS_ADDONS_POSTGRES_USER": USER,
                "REDIS_ADDONS_POSTGRES_PASSWORD": self.password}
