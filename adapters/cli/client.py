"""A small client of the HTTP API (urllib: the CLI makes one request at a time)."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from adapters.cli import config

DEFAULT_API = "http://127.0.0.1:8470"


class CliError(Exception):
    """An expected failure: printed as `error: <message>`, exit code 1."""


class ApiError(CliError):
    def __init__(self, status: int, rule: str, message: str, body: dict | None = None):
        super().__init__(message)
        self.status, self.rule, self.body = status, rule, body or {}


def home(env=os.environ) -> Path:
    return Path(env.get("REDIS_ADDONS_HOME", "var"))


def recorded(env=os.environ) -> dict:
    """The server the user's configuration names (`serve` and `login` record it); {} if none."""
    try:
        return config.load(env)
    except config.ConfigError as e:
        raise CliError(str(e)) from None


def api_url(env=os.environ) -> str:
    """$REDIS_ADDONS_API; else the api-url that a server on $REDIS_ADDONS_HOME wrote; else the one the
    user's configuration records; else ./var's (run from the repository); else the default."""
    if env.get("REDIS_ADDONS_API"):
        return env["REDIS_ADDONS_API"].rstrip("/")
    written = home(env) / "api-url"
    if "REDIS_ADDONS_HOME" not in env and recorded(env).get("api"):
        return recorded(env)["api"].rstrip("/")
    if written.is_file() and written.read_text().strip():
        return written.read_text().strip().rstrip("/")
    return DEFAULT_API


def api_token(env=os.environ) -> str:
    """$REDIS_ADDONS_TOKEN; else $REDIS_ADDONS_HOME's api-token; else the user's configuration's; else
    ./var's."""
    if env.get("REDIS_ADDONS_TOKEN"):
        return env["REDIS_ADDONS_TOKEN"].strip()
    server = recorded(env)
    if "REDIS_ADDONS_HOME" not in env and server.get("token"):
        # The recorded token is that server's: never sent to another one that $REDIS_ADDONS_API names.
        wanted = env.get("REDIS_ADDONS_API", "").rstrip("/")
        if not wanted or wanted == server.get("api", "").rstrip("/"):
            return server["token"]
    token_file = home(env) / "api-token"
    try:
        token = token_file.read_text().strip()
    except FileNotFoundError:
        token = ""
    except PermissionError:
        raise CliError(f"cannot read the API token in {token_file}: permission denied; set REDIS_ADDONS_TOKEN") from None
    if not token:
        raise CliError(
            f"no API token: set REDIS_ADDONS_TOKEN, run `redis-addons login --api URL`, or set REDIS_ADDONS_HOME "
            f"to the server's data directory (looked for {token_file.resolve()} and {config.config_file(env)}; "
            "`redis-addons serve` records both on first start)"
        )
    return token


class Api:
    def __init__(self, base: str, token: str, timeout: float = 30.0):
        self.base, self.token, self.timeout = base, token, timeout

    @classmethod
    def from_env(cls, env=os.environ) -> Api:
        return cls(api_url(env), api_token(env))

    def get(self, path: str, **query) -> dict:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict | None = None, **query) -> dict:
        return self.request("POST", path, body=body, query=query)

    def patch(self, path: str, body: dict, **query) -> dict:
        return self.request("PATCH", path, body=body, query=query)

    def put(self, path: str, body: dict, **query) -> dict:
        return self.request("PUT", path, body=body, query=query)

    def delete(self, path: str, **query) -> dict:
        return self.request("DELETE", path, query=query)

    def request(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        url = self.base + path
        query = {k: v for k, v in (query or {}).items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise api_error(e) from None
        except urllib.error.URLError as e:
            raise self.unreachable(e.reason) from None
        except (ConnectionError, socket.timeout, TimeoutError) as e:
            raise self.unreachable(e) from None

    def stream(self, path: str, headers: dict | None = None):
        """GET `path` and return the open response, to be read in chunks and closed by the caller
        (`with api.stream(...) as response:`); an HTTP error status raises ApiError as `request` does."""
        request = urllib.request.Request(
            self.base + path, method="GET", headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise api_error(e) from None
        except urllib.error.URLError as e:
            raise self.unreachable(e.reason) from None
        except (ConnectionError, socket.timeout, TimeoutError) as e:
            raise self.unreachable(e) from None

    def unreachable(self, reason) -> CliError:
        if isinstance(reason, ConnectionRefusedError):
            return CliError(f"cannot reach the redis-addons API at {self.base}: is `make run` (redis-addons serve) running?")
        return CliError(f"cannot reach the redis-addons API at {self.base}: {reason}")


def api_error(e: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(e.read() or b"{}")
        error = body.get("error") or {}
        return ApiError(e.code, error.get("rule", "http-error"), error.get("message") or f"HTTP {e.code}", body)
    except (ValueError, AttributeError):
        return ApiError(e.code, "http-error", f"the API answered HTTP {e.code} {e.reason}")
