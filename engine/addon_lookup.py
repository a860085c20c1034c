"""Finding an app's addons, as commands and queries name them."""

from __future__ import annotations

import asyncio

from domain.addon import Addon
from domain.names import check_app_name
from domain.errors import AddonRemoved, UnknownAddon, UnknownApp
from engine.inventory import Inventory
from engine.ports import ReadModels
from engine.store import AggregateNotFoundError, EventLog

PROVIDER = "redis"


class AddonLookup:
    def __init__(self, events: EventLog, views: ReadModels, inventory: Inventory):
        self.events, self.views, self.inventory = events, views, inventory

    async def of(self, app: str, name: str) -> Addon:
        """The live addon `name` of `app`, as the event store has it now."""
        check_app_name(app)
        try:
            addon: Addon = await self.events.get(Addon.id_for(name))
        except AggregateNotFoundError:
            addon = None
        if addon is None or addon.app != app:
            raise UnknownAddon(f"app {app!r} has no addon {name!r}")
        if addon.status == "removed":
            raise AddonRemoved(f"addon {name} of app {app} was removed")
        return addon

    async def named(self, app: str, ref: str, allow_removed: bool = False) -> str:
        """`--addon`: an addon ID, or the provider's name when the app has one live Redis addon."""
        await self.known_app(app)
        rows = await asyncio.to_thread(self.views.addons, app)
        if ref == PROVIDER:
            live = [r["name"] for r in rows if r["status"] != "removed"]
            if len(live) != 1:
                which = f"{len(live)} Redis addons ({', '.join(live)})" if live else "no Redis addon"
                raise UnknownAddon(f"app {app!r} has {which}: pass --addon with an addon ID")
            return live[0]
        row = next((r for r in rows if r["name"] == ref), None)
        if row is None:
            raise UnknownAddon(f"app {app!r} has no addon {ref!r}")
        if row["status"] == "removed" and not allow_removed:
            raise AddonRemoved(f"addon {ref} of app {app} was removed (its backups are kept)")
        return ref

    async def live(self, app: str, ref: str) -> Addon:
        return await self.of(app, await self.named(app, ref))

    async def known_app(self, app: str) -> None:
        check_app_name(app)
        if not self.inventory.app_known(app):
            raise UnknownApp(f"unknown app {app!r}: it has never had an addon here")
