"""The App aggregate: an app that uses addons, and how the engine restarts it."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlparse
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.addon import check_app_name
from domain.errors import InvalidRestartMethod

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*=[^\s]+$")


def restart_method(kind: str, label: str | None = None, url: str | None = None) -> dict:
    """How to restart an app: its Docker containers found by label, an HTTP hook, or nothing."""
    if kind == "docker":
        if not label or not LABEL.fullmatch(label):
            raise InvalidRestartMethod(f"a docker restart needs a container label KEY=VALUE, got {label!r}")
        return {"kind": "docker", "label": label}
    if kind == "hook":
        return {"kind": "hook", "url": loopback_url(url)}
    if kind == "none":
        return {"kind": "none"}
    raise InvalidRestartMethod(f"unknown restart method {kind!r}: use docker, hook or none")


def loopback_url(url: str | None) -> str:
    """Hooks are called on this machine only: the engine never sends traffic elsewhere."""
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidRestartMethod(f"a hook needs an http(s) URL, got {url!r}")
    host = parsed.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidRestartMethod(f"hook URL {url!r} is not on loopback (127.0.0.0/8, ::1 or localhost)")
    return url


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
