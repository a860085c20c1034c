"""The CLI's own configuration: where the API is and its token, recorded in the user's configuration
directory ($XDG_CONFIG_HOME/redis-addons, ~/.config/redis-addons by default) so that the CLI works from
any directory. `redis-addons serve` records it when it listens; `redis-addons login` records another
server's. The file holds the API token: owner-only (0600), in an owner-only directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE_NAME = "config.json"


class ConfigError(Exception):
    """The configuration file exists but cannot be used; the message names it and what to do."""


def config_file(env=os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "redis-addons" / FILE_NAME


def load(env=os.environ) -> dict:
    """{"api": URL, "token": TOKEN} as recorded; {} when nothing is."""
    path = config_file(env)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise ConfigError(f"cannot read the CLI configuration {path}: permission denied") from None
    except (ValueError, OSError) as e:
        raise ConfigError(f"the CLI configuration {path} is unreadable ({e}): run `redis-addons login` again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the CLI configuration {path} is not a JSON object: run `redis-addons login` again")
    return {k: str(data[k]).strip() for k in ("api", "token", "recorded_by") if data.get(k)}


def save(api: str, token: str, env=os.environ, recorded_by: str = "login") -> Path:
    """Record the API URL and token (and who recorded them: `serve` or `login`), replacing what was
    there, all or nothing."""
    path = config_file(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, even briefly
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"api": api.rstrip("/"), "token": token, "recorded_by": recorded_by}, f)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def serve_may_record(env=os.environ) -> bool:
    """A server that starts records itself unless the user logged in to a server: their choice stands."""
    try:
        return load(env).get("recorded_by", "serve") == "serve"
    except ConfigError:
        return True  # a damaged file is replaced


def forget(env=os.environ) -> bool:
    """Remove the recorded server; False when none was."""
    try:
        config_file(env).unlink()
        return True
    except FileNotFoundError:
        return False
