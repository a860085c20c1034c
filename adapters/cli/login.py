"""`login` and `logout`: record (or forget) the server the CLI talks to, in the user's configuration."""

from __future__ import annotations

import getpass
import ipaddress
import os
import sys
import urllib.parse

from adapters.cli import config
from adapters.cli.client import Api, CliError


def login(args, env=os.environ, stdin=None) -> int:
    """Check the token against the server first: a wrong one is never recorded."""
    stdin = stdin or sys.stdin
    url = (args.api or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or not host_of(url):
        raise CliError(f"--api {args.api!r} is not an http(s) URL, e.g. http://127.0.0.1:8470")
    if url.startswith("http://") and not loopback(url):
        print(f"warning: {url} is plain http off this machine: the token travels unencrypted", file=sys.stderr)
    token = env.get("REDIS_ADDONS_TOKEN", "").strip()
    if not token:
        # The token is never an argument: arguments show in `ps` and in the shell's history.
        token = (getpass.getpass("API token: ") if stdin.isatty() else stdin.readline()).strip()
    if not token:
        raise CliError("no API token given: type it at the prompt, pipe it on standard input, or set REDIS_ADDONS_TOKEN")
    Api(url, token).get("/v1/addon_providers/redis/plans")  # an ApiError names a wrong token
    path = config.save(url, token, env)
    print(f"-----> Logged in to {url}; the CLI now finds it from any directory (recorded in {path})")
    return 0


def host_of(url: str) -> str:
    try:
        return urllib.parse.urlparse(url).hostname or ""
    except ValueError:  # malformed brackets
        return ""


def loopback(url: str) -> bool:
    host = host_of(url)
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def logout(args, env=os.environ) -> int:
    if config.forget(env):
        print(f"-----> Logged out: {config.config_file(env)} removed")
    else:
        print("-----> No server was recorded: nothing to do")
    return 0
