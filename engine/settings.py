"""Settings of one installation, read from the environment and the data directory."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from domain.placement import Host
from engine.host_tls import HostTLS, HostTLSError, host_tls


class SettingsError(Exception):
    """The installation is misconfigured; the message says what to fix."""


@dataclass(frozen=True)
class DockerHost:
    """A Docker engine that runs nodes, and the room it offers."""

    name: str
    docker_url: str
    address: str
    first_port: int
    last_port: int
    memory_mib: int
    tls: HostTLS | None = None  # a tcp:// host's CA, client certificate and key (engine/host_tls.py)

    def as_domain(self) -> Host:
        return Host(self.name, self.address, self.first_port, self.last_port, self.memory_mib)


@dataclass(frozen=True)
class Settings:
    home: Path
    hosts: tuple[DockerHost, ...]
    api_host: str = "127.0.0.1"
    api_port: int = 8470
    store_env: dict = field(default_factory=dict, repr=False)  # eventsourcing persistence settings: a DB password
    crash_at: str | None = None  # fault injection: "provision.create:after" kills the process there
    step_deadline_s: float = 60.0
    scheduler_tick_s: float = 60.0  # how often due backups and retention are looked at; 0: never (tests drive it)
    watch_interval_s: float = 2.0  # how often the node watcher looks at the nodes; 0: never (tests drive it)
    host_grace_s: float = 30.0  # a cluster's node on a host that does not answer is replaced after this long
    stats_interval_s: float = 10.0  # how often the nodes' stats are sampled; 0: never (tests drive it)
    public_url: str | None = None  # the origin browsers reach the dashboard at, behind a reverse proxy
    backup_key: str | None = field(default=None, repr=False)  # REDIS_ADDONS_BACKUP_KEY: base64 keys, current first
    lease_s: float = 15.0  # several processes on PostgreSQL: how long an operation's or the duties' lease lasts
    # Several processes on one PostgreSQL (adapters/postgres): the backup directory they all mount, the file of
    # the installation key that seals the secrets kept in PostgreSQL, and this process's identity.
    backups_root: Path | None = None  # REDIS_ADDONS_BACKUPS_DIR; None: <home>/backups
    secrets_key_path: Path | None = None  # REDIS_ADDONS_SECRETS_KEY_FILE; None: <home>/secrets.key
    process_identity: str | None = None  # REDIS_ADDONS_PROCESS_ID; None: this machine's name and the home

    @property
    def on_postgres(self) -> bool:
        return self.store_env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"

    @property
    def secrets_key_file(self) -> Path:
        return self.secrets_key_path or self.home / "secrets.key"

    @property
    def process_id(self) -> str:
        """Stable across restarts: one engine per identity runs at a time (adapters/postgres/process_lock.py)."""
        return self.process_identity or f"{socket.gethostname()}:{self.home}"

    @property
    def token_file(self) -> Path:
        return self.home / "api-token"

    @property
    def metrics_token_file(self) -> Path:
        """The read-only scrape token: it opens GET /metrics and nothing else."""
        return self.home / "metrics-token"

    @property
    def backup_keys_file(self) -> Path:
        """The keyring that seals backup archives (outside the backup store), unless REDIS_ADDONS_BACKUP_KEY is set."""
        return self.home / "backup-keys.json"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def backups_dir(self) -> Path:
        return self.backups_root or self.home / "backups"

    @property
    def tls_dir(self) -> Path:
        """The installation's certificate authority (ca.pem, ca.key)."""
        return self.home / "tls"

    @property
    def checkpoints_dir(self) -> Path:
        """Read models kept in memory (the inventory) write their checkpoints here."""
        return self.home / "checkpoints"

    @property
    def read_models_file(self) -> Path:
        return self.home / "read-models.sqlite"

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("REDIS_ADDONS_HOME", "var")).resolve()
        hosts_file = Path(env.get("REDIS_ADDONS_HOSTS", home / "hosts.json"))
        values = dict(
            home=home,
            hosts=overrides.pop("hosts") if "hosts" in overrides else load_hosts(hosts_file),  # given: no file needed
            api_host=env.get("REDIS_ADDONS_API_HOST", "127.0.0.1"),
            api_port=int(env.get("REDIS_ADDONS_API_PORT", "8470")),
            store_env=store_env(env, home),
            crash_at=env.get("REDIS_ADDONS_CRASH_AT") or None,
            step_deadline_s=float(env.get("REDIS_ADDONS_STEP_DEADLINE", "60")),
            scheduler_tick_s=float(env.get("REDIS_ADDONS_SCHEDULER_TICK", "60")),
            watch_interval_s=float(env.get("REDIS_ADDONS_WATCH_INTERVAL", "2")),
            host_grace_s=float(env.get("REDIS_ADDONS_HOST_GRACE", "30")),
            stats_interval_s=float(env.get("REDIS_ADDONS_STATS_INTERVAL", "10")),
            public_url=public_origin(env.get("REDIS_ADDONS_PUBLIC_URL", "")),
            backup_key=env.get("REDIS_ADDONS_BACKUP_KEY") or None,
            lease_s=lease_seconds(env.get("REDIS_ADDONS_LEASE_SECONDS", "15")),
            backups_root=Path(env["REDIS_ADDONS_BACKUPS_DIR"]).resolve() if env.get("REDIS_ADDONS_BACKUPS_DIR") else None,
            secrets_key_path=Path(env["REDIS_ADDONS_SECRETS_KEY_FILE"]).resolve()
            if env.get("REDIS_ADDONS_SECRETS_KEY_FILE") else None,
            process_identity=env.get("REDIS_ADDONS_PROCESS_ID") or None,
        )
        values.update(overrides)
        return cls(**values)


def public_origin(url: str) -> str | None:
    """REDIS_ADDONS_PUBLIC_URL (e.g. https://redis.example.com) as a browser's Origin header says it:
    scheme://host[:port], the default port left out; None when unset."""
    if not (url := url.strip()):
        return None
    parts = urlsplit(url)
    if parts.username or parts.password:  # not echoed: it would print a password
        raise SettingsError("REDIS_ADDONS_PUBLIC_URL must not carry credentials: give http(s)://host[:port]")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise SettingsError(f"REDIS_ADDONS_PUBLIC_URL {url!r}: give the dashboard's public origin as "
                            "http(s)://host[:port], with no path, e.g. https://redis.example.com")
    netloc = parts.netloc.lower()
    if port == {"http": 80, "https": 443}[parts.scheme]:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


def lease_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"REDIS_ADDONS_LEASE_SECONDS {text!r}: give a number of seconds above 0, e.g. 15")
    return value


def store_env(env: dict, home: Path) -> dict:
    """SQLite file under the data directory by default; PostgreSQL when REDIS_ADDONS_POSTGRES_DBNAME is set."""
    if not env.get(f"{POSTGRES}DBNAME"):
        if stray := [name for name in POSTGRES_NAMES if env.get(name)]:  # not silently an SQLite file instead
            raise SettingsError(f"{stray[0]} is set but {POSTGRES}DBNAME is not: set it to use PostgreSQL as the "
                                "event store, or unset the REDIS_ADDONS_POSTGRES_* variables to use SQLite")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(home / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10"}
    for key in ("HOST", "USER"):
        if not env.get(f"{POSTGRES}{key}", "").strip():
            raise SettingsError(f"{POSTGRES}DBNAME is set but {POSTGRES}{key} is not: give the PostgreSQL server's "
                                "host and the user the engine logs in as")
    port = env.get(f"{POSTGRES}PORT") or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{POSTGRES}PORT {port!r}: give the PostgreSQL server's port, a number, e.g. 5432")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": env[f"{POSTGRES}DBNAME"], "POSTGRES_HOST": env[f"{POSTGRES}HOST"].strip(),
        "POSTGRES_PORT": port, "POSTGRES_USER": env[f"{POSTGRES}USER"], "POSTGRES_PASSWORD": postgres_password(env),
        # One worker thread uses the store (engine/store.py): two connections, two more while one is replaced,
        # so that ten engine processes hold tens of PostgreSQL's connections, not eventsourcing's 15 each.
        "POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2",
        # Checked before use: a connection PostgreSQL dropped (a restart, a failover) is replaced, not failed on.
        "POSTGRES_PRE_PING": "y",
        # The wait for a pooled connection (one more is being opened meanwhile). eventsourcing tries each call 10
        # times: a store that does not answer fails a call in about 12 s with 1 s here, 5 minutes with its 30.
        "POSTGRES_CONNECT_TIMEOUT": "1",
        # The event table is locked for each write (notification IDs commit in order): a write queued behind
        # another process's for this long fails as unavailable (and is retried), rather than waiting forever.
        "POSTGRES_LOCK_TIMEOUT": "10",
    }


POSTGRES = "REDIS_ADDONS_POSTGRES_"
POSTGRES_NAMES = tuple(f"{POSTGRES}{key}" for key in ("HOST", "PORT", "USER", "PASSWORD", "PASSWORD_FILE"))


def postgres_password(env: dict) -> str:
    """REDIS_ADDONS_POSTGRES_PASSWORD, or the first line of the file REDIS_ADDONS_POSTGRES_PASSWORD_FILE names
    (a mounted secret: the password then appears in no process's environment)."""
    path, given = env.get(f"{POSTGRES}PASSWORD_FILE"), env.get(f"{POSTGRES}PASSWORD")
    if path and given is not None:
        raise SettingsError(f"both {POSTGRES}PASSWORD and {POSTGRES}PASSWORD_FILE are set: give one")
    if not path:
        if given is None:
            raise SettingsError(f"{POSTGRES}DBNAME is set but neither {POSTGRES}PASSWORD nor "
                                f"{POSTGRES}PASSWORD_FILE is: give the PostgreSQL user's password, or a file holding it")
        return given
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise SettingsError(f"{POSTGRES}PASSWORD_FILE {path}: cannot be read ({e.strerror or e})") from None
    if not lines or not lines[0]:
        raise SettingsError(f"{POSTGRES}PASSWORD_FILE {path} is empty: its first line is the password")
    return lines[0]


def load_hosts(path: Path) -> tuple[DockerHost, ...]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SettingsError(f"no hosts file at {path}: run `make setup`, or point REDIS_ADDONS_HOSTS at one") from None
    except json.JSONDecodeError as e:
        raise SettingsError(f"hosts file {path} is not valid JSON: {e}") from None
    try:
        return tuple(
            DockerHost(h["name"], h["docker_url"], h["bind"], h["ports"][0], h["ports"][1], h["memory_mib"],
                       host_tls(h["name"], h["docker_url"], h.get("tls"), Path(path).parent))
            for h in data["hosts"]
        )
    except (KeyError, IndexError, TypeError) as e:
        raise SettingsError(f"hosts file {path}: each host needs name, docker_url, bind, ports [first, last] and memory_mib ({e!r} missing)") from None
    except HostTLSError as e:
        raise SettingsError(f"hosts file {path}: {e}") from None
