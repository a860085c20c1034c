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


def redis_conf(*, address: str, port: int, memory_mib: int, password: str, settings: dict) -> str:
    lines = [
        f"bind {address}",
        f"port {port}",
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
    return "\n".join(lines) + "\n"


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


def container_memory_bytes(memory_mib: int) -> int:
    """maxmemory counts data only; the process needs room for buffers and forks on top."""
    return (memory_mib + max(64, memory_mib // 4)) * 1024 * 1024
