"""The Redis configuration of a node, derived from the addon's plan and settings (DESIGN §5)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

# Reference, "Snapshot Persistence aka RDB": every 15 min if 1 write, 5 min if 10, 1 min if 10,000.
RDB_SAVE_RULES = ("900 1", "300 10", "60 10000")
# AOF written to disk once a second (Redis's default): at most a second of writes lost in a crash
# of the machine; none when only the server process dies (the kernel has the data).
AOF_FSYNC = "everysec"


def password_hash(password: str) -> str:
    """Redis ACL '#<sha256>' form: the config file never holds the password itself."""
    return hashlib.sha256(password.encode()).hexdigest()


# Where a node finds its TLS files (put in by the engine when it creates the node).
TLS_DIR = "/etc/redis/tls"
TLS_FILES = {"cert": "server.crt", "key": "server.key", "ca": "ca.crt"}


def redis_conf(*, address: str, port: int, memory_mib: int, password: str, settings: dict,
               tls_port: int | None = None) -> str:
    lines = [
        f"bind {address}",
        # Reference, "Force TLS Connections": forced, the database denies any non-TLS connection.
        f"port {plaintext_port(port, tls_port, settings)}",
        "protected-mode yes",
        "daemonize no",
        "dir /data",
        "databases 5",
        "timeout 150",
        "loglevel notice",
        'logfile ""',
    ]
    if settings.get("rdb", True):
        lines += [f"save {rule}" for rule in RDB_SAVE_RULES]
    else:
        lines.append('save ""')
    lines.append(f"appendonly {'yes' if settings.get('aof') else 'no'}")
    lines.append(f"appendfsync {AOF_FSYNC}")
    lines.append(f"maxmemory {memory_mib}mb")
    lines.append(f"maxmemory-policy {'allkeys-lru' if settings.get('cache_mode') else 'noeviction'}")
    # One user, as in the reference ("user default on <password> ~* &* +@all").
    lines.append(f"user default on resetpass #{password_hash(password)} ~* &* +@all")
    if tls_port:
        lines += tls_lines(tls_port, TLS_DIR, replication=tls_only(port, tls_port))
    return "\n".join(lines) + "\n"


def tls_lines(tls_port: int, directory: str = TLS_DIR, replication: bool = False) -> list[str]:
    """TLS on `tls_port`, its files in `directory`. Clients authenticate with the password, not a
    certificate. With `replication`, the server also speaks TLS to the primary it replicates (a
    Sentinel: to the nodes and Sentinels it watches)."""
    lines = [
        f"tls-port {tls_port}",
        f"tls-cert-file {directory}/{TLS_FILES['cert']}",
        f"tls-key-file {directory}/{TLS_FILES['key']}",
        f"tls-ca-cert-file {directory}/{TLS_FILES['ca']}",
        "tls-auth-clients no",
        'tls-protocols "TLSv1.2 TLSv1.3"',
    ]
    return lines + (["tls-replication yes"] if replication else [])


def tls_only(port: int, tls_port: int | None) -> bool:
    """A node whose one port serves TLS (a Business cluster's data node or Sentinel: only HAProxy and
    the engine reach it, and both speak TLS): it has no plaintext port at all."""
    return tls_port is not None and tls_port == port


def plaintext_port(port: int, tls_port: int | None, settings: dict) -> int:
    """The `port` the server listens on for plaintext: 0 (none) when TLS is forced, or on a node
    that serves TLS only."""
    return 0 if (settings.get("force_tls") and tls_port) or tls_only(port, tls_port) else port


def live_settings(settings: dict) -> dict[str, str]:
    """What CONFIG SET changes on a running server (and CONFIG GET shows) for these settings."""
    return {
        "save": save_rules(settings),
        "appendonly": "yes" if settings.get("aof") else "no",
        "maxmemory-policy": "allkeys-lru" if settings.get("cache_mode") else "noeviction",
    }


def save_rules(settings: dict) -> str:
    """The `save` setting: the reference's three rules with RDB on, none with it off."""
    return " ".join(RDB_SAVE_RULES) if settings.get("rdb", True) else ""


def redis_url(*, password: str, address: str, port: int, tls: bool = False) -> str:
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://default:{quote(password, safe='')}@{address}:{port}"


def app_environment(*, password: str, address: str, port: int, tls_port: int | None, force_tls: bool) -> dict[str, str]:
    """The variables an app gets (reference: SCALINGO_REDIS_URL, and REDIS_URL its alias). A node
    serving TLS also publishes its rediss:// URL; with TLS forced, that is the only URL left."""
    variables = {}
    if tls_port:
        tls_url = redis_url(password=password, address=address, port=tls_port, tls=True)
        variables["SCALINGO_REDIS_TLS_URL"] = variables["REDIS_TLS_URL"] = tls_url
    if force_tls and tls_port:
        url = variables["SCALINGO_REDIS_TLS_URL"]
    else:
        url = redis_url(password=password, address=address, port=port)
    variables["SCALINGO_REDIS_URL"] = variables["REDIS_URL"] = url
    return variables


def container_memory_bytes(memory_mib: int) -> int:
    """maxmemory counts data only; the process needs room for buffers and forks on top."""
    return (memory_mib + max(64, memory_mib // 4)) * 1024 * 1024
