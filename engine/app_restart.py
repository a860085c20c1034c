"""An app restarted with its addon's environment, once the addon's URLs have changed (reference,
"Changing Plans": the app is restarted; "Force TLS Connections": the app must then use TLS)."""

from __future__ import annotations

from domain.addon import Addon
from domain.app import App
from domain.redis_config import app_environment
from engine.ports import AppRestarter
from engine.store import AggregateNotFoundError, EventLog


def addon_environment(addon: Addon, password: str, settings: dict | None = None) -> dict[str, str]:
    """The app's variables for this addon with its settings (or `settings`, those being applied)."""
    settings = addon.settings if settings is None else settings
    return app_environment(password=password, address=addon.address, port=addon.port, tls_port=addon.tls_port,
                           force_tls=bool(settings.get("force_tls")))


async def restart_app(events: EventLog, restarter: AppRestarter, addon: Addon, password: str,
                      settings: dict | None = None) -> str:
    """What was done, as the restarter tells it (an app registered without a method is left alone)."""
    method = await restart_method_of(events, addon.app)
    return await restarter.restart(addon.app, method, addon_environment(addon, password, settings))


async def restart_method_of(events: EventLog, app: str) -> dict:
    """How the app is restarted: {"kind": None} when it was never registered."""
    try:
        return (await events.get(App.id_for(app))).restart
    except AggregateNotFoundError:
        return {"kind": None}
