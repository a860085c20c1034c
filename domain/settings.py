"""An addon's database settings as users name them (reference, "Scalingo for Redis® Configuration")."""

from __future__ import annotations

from domain.errors import UnknownSetting

# Settings every new addon starts with (reference: "Scalingo for Redis® Configuration").
DEFAULT_SETTINGS = {"rdb": True, "aof": False, "cache_mode": False, "force_tls": False}

# What users type (the reference's words) -> the key in an addon's settings.
SETTINGS = {"rdb": "rdb", "aof": "aof", "cache-mode": "cache_mode", "force-tls": "force_tls"}
# An addon made before nodes served TLS here: its engine build has TLS, its node no TLS port yet.
NO_TLS_PORT = ("serves no TLS port yet (it was made before TLS was served here): the engine gives it one within "
               "a few minutes, without a restart")
SHOWN = {"rdb": "RDB persistence", "aof": "AOF persistence", "cache_mode": "cache mode", "force_tls": "force TLS"}


def setting_key(name: str) -> str:
    key = SETTINGS.get(str(name).strip().lower().replace("_", "-"))
    if key is None:
        raise UnknownSetting(f"unknown setting {name!r}: the settings are {', '.join(SETTINGS)}")
    return key


def settings_warnings(settings: dict) -> list[str]:
    """Where data can be lost (reference, "Persistence Mode")."""
    if not settings.get("rdb") and not settings.get("aof"):
        return ["neither RDB nor AOF persistence: every key is lost when the node restarts"]
    return []
