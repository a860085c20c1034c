"""The App aggregate: an app that uses addons, and how the engine restarts it."""

from __future__ import annotations

import ipaddress
import socket
import re
from urllib.parse import urlparse
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.names import check_app_name
from domain.errors import HookAtEngineApi, InvalidRestartMethod, LabelMatchesDatabase, ReservedLabel

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*=[^\s]+$")

# The engine's own label namespace (engine/nodes.py LABEL): its database containers carry these, and a
# docker restart recreates whatever its label matches with the app's environment (its passwords included).
ENGINE_NAMESPACE = "redis-addons"
MANAGED_MARKS = (f"{ENGINE_NAMESPACE}.addon", f"{ENGINE_NAMESPACE}.role")


def is_engine_managed(labels: dict | None) -> bool:
    """A container the engine runs (a database node), whoever labelled it what else."""
    return any(mark in (labels or {}) for mark in MANAGED_MARKS)


def refuse_database_matches(label: str, matches: list[tuple[str, str, dict]]) -> None:
    """`matches`: (host, container, labels) of every container the label finds now. A label that finds a
    database node would have it recreated by the app's next restart: refused, naming the nodes."""
    nodes = sorted(f"{container} on {host}" for host, container, labels in matches if is_engine_managed(labels))
    if nodes:
        raise LabelMatchesDatabase(f"label {label} matches database containers the engine runs ({', '.join(nodes)}): "
                                   "a docker restart recreates only the app's own containers; choose a label only they carry")


def restart_method(kind: str, label: str | None = None, url: str | None = None,
                   engine_api: tuple[str, int] | None = None) -> dict:
    """How to restart an app: its Docker containers found by label, an HTTP hook, or nothing.

    `engine_api` is the (host, port) the engine's HTTP API listens on: no hook may point there."""
    if kind == "docker":
        if not label or not LABEL.fullmatch(label):
            raise InvalidRestartMethod(f"a docker restart needs a container label KEY=VALUE, got {label!r}")
        key = label.split("=", 1)[0].lower()
        if key == ENGINE_NAMESPACE or key.startswith(ENGINE_NAMESPACE + "."):
            raise ReservedLabel(f"label key {key!r} is in the engine's namespace ({ENGINE_NAMESPACE}.*), which marks "
                                "its database containers: label the app's containers with a key of its own")
        return {"kind": "docker", "label": label}
    if kind == "hook":
        url = loopback_url(url)
        if engine_api is not None and reaches_engine_api(url, *engine_api):
            raise HookAtEngineApi(f"hook URL {url!r} is the engine's own API ({engine_api[0]}:{engine_api[1]}): a hook "
                                  "is sent the app's environment, passwords included, so it must be the app's own server")
        return {"kind": "hook", "url": url}
    if kind == "none":
        return {"kind": "none"}
    raise InvalidRestartMethod(f"unknown restart method {kind!r}: use docker, hook or none")


def is_loopback_host(host: str) -> bool:
    """localhost (and its subdomains, RFC 6761), or a loopback address in any spelling a resolver accepts
    (127.1 and 2130706433 are 127.0.0.1 to inet_aton)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        return ipaddress.ip_address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False


def loopback_url(url: str | None) -> str:
    """Hooks are called on this machine only: the engine never sends traffic elsewhere."""
    try:  # malformed brackets ("http://[::1", "http://[zz]/") raise ValueError
        parsed = urlparse(url or "")
        host = parsed.hostname
    except ValueError as e:
        raise InvalidRestartMethod(f"a hook needs an http(s) URL, got {url!r} ({e})") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidRestartMethod(f"a hook needs an http(s) URL, got {url!r}")
    if not is_loopback_host(host):
        raise InvalidRestartMethod(f"hook URL {url!r} is not on loopback (127.0.0.0/8, ::1 or localhost)")
    try:
        parsed.port
    except ValueError:
        raise InvalidRestartMethod(f"hook URL {url!r} has an invalid port") from None
    return url


WILDCARDS = {"", "0.0.0.0", "::"}


def reaches_engine_api(url: str, api_host: str, api_port: int) -> bool:
    """Whether a loopback hook URL lands on a server listening on api_host:api_port. A server bound to
    0.0.0.0 or :: answers on every loopback address; localhost may be either 127.0.0.1 or ::1."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if port != api_port:
        return False
    if api_host.strip("[]") in WILDCARDS:
        return True
    return bool(_addresses(parsed.hostname) & _addresses(api_host.strip("[]")))


def _addresses(host: str) -> set:
    if host.lower() == "localhost":
        return {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        return {host.lower()}


class App(Aggregate):
    @staticmethod
    def create_id(name: str, **_) -> UUID:
        return App.id_for(name)

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/apps/{name}")

    @event("Registered")
    def __init__(self, name: str, restart: dict):
        check_app_name(name)
        self.name = name
        self.restart = restart

    @event("RestartMethodChanged")
    def change_restart(self, restart: dict) -> None:
        self.restart = restart
