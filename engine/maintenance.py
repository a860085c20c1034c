"""Security updates reaching running nodes. A rebuilt image of the same version (a Debian security update)
takes its version's tag, and the nodes made before run the old one (scripts/build-images.py): such an
addon runs an outdated build. Its maintenance moves it onto the current build with the upgrade's sagas, to
the version it runs: a Starter addon's node restarted on the new image with its data (a short downtime,
then the app restarted, engine/upgrade.py), a Business addon's data nodes replaced one at a time with no
downtime (engine/cluster_upgrade.py). The user asks for it (`database-maintenance`), or the scheduler
does while the addon's weekly window is open (domain/maintenance_window.py), as managed services do.

`addon` arguments take an addon ID or `redis` (the app's only Redis addon), as for backups."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog

from domain.addon import Addon
from domain.addon_maintenance import BuildCurrent
from domain.catalog import VersionCatalog
from domain.cluster import Cluster
from domain.errors import AddonBusy, AddonNotRunning, UnknownVersion
from domain.maintenance_window import MaintenanceWindow
from engine.addon_lookup import AddonLookup
from engine.clusters import cluster_of
from engine.follower import Follower
from engine.maintenance_requests import MaintenanceRequests
from engine.ports import EffectError, ReadModels, Runtime, TransientError
from engine.store import EventLog, IntegrityError

log = structlog.get_logger("maintenance")

CURRENT, OUTDATED, UNKNOWN = "current", "outdated", "unknown"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def advice(version: str) -> str:
    return f"a security update of {version} is available: run database-maintenance"


class Builds:
    """Which build each data node runs: the image its version's tag names now on its host (current), or
    one that tag named before (outdated); unknown when Docker cannot say (a host down, no such image)."""

    def __init__(self, runtime: Runtime, versions: VersionCatalog):
        self.runtime, self.versions = runtime, versions

    async def of(self, cluster: Cluster) -> list[dict]:
        tags: dict[tuple[str, str], str | None] = {}  # each host's tag read once
        return [await self._node(n, tags) for n in cluster.live_nodes if n["role"] == "data"]

    async def _node(self, node: dict, tags: dict) -> dict:
        shown = {"id": node["id"], "host": node["host"], "version": node["version"]}
        try:
            image = self.versions.get(node["version"]).image
        except UnknownVersion:
            return {**shown, "build": UNKNOWN, "why": f"{node['version']} is no longer in the version catalogue"}
        try:
            running = await self.runtime.container_image_id(node["host"], node["container"])
            if (node["host"], image) not in tags:
                tags[node["host"], image] = await self.runtime.image_id(node["host"], image)
        except (EffectError, TransientError) as e:
            return {**shown, "build": UNKNOWN, "why": f"Docker on {node['host']} did not say: {e}"}
        current = tags[node["host"], image]
        if running is None or current is None:
            missing = f"no container {node['container']}" if running is None else f"no image {image}"
            return {**shown, "build": UNKNOWN, "why": f"{missing} on {node['host']}"}
        return {**shown, "build": CURRENT if running == current else OUTDATED}


def outdated(nodes: list[dict]) -> bool:
    return any(n["build"] == OUTDATED for n in nodes)


class Maintenance:
    def __init__(self, events: EventLog, views: ReadModels, lookup: AddonLookup, follower: Follower, builds: Builds,
                 requests: MaintenanceRequests, clock=utc_now):
        self.events, self.views, self.lookup, self.follower = events, views, lookup, follower
        self.builds, self.requests, self.clock = builds, requests, clock

    async def outdated(self, app: str | None = None) -> list[dict]:
        """Every addon (of `app`) with a data node on an outdated build, and when its window opens next."""
        if app is not None:
            await self.lookup.known_app(app)
        rows = [r for r in await asyncio.to_thread(self.views.addons, app) if r["status"] not in ("removed", "failed")]
        found = await asyncio.gather(*(self._outdated_row(r) for r in rows))
        return [row for row in found if row is not None]

    async def _outdated_row(self, row: dict) -> dict | None:
        nodes = await self.builds.of(await cluster_of(self.events, row["name"]))
        if not outdated(nodes):
            return None
        addon: Addon = await self.events.get(Addon.id_for(row["name"]))
        return {"app": row["app"], "addon": row["name"], "plan": row["plan"], "version": row["version"],
                "status": row["status"], "nodes": [n for n in nodes if n["build"] == OUTDATED],
                "window": self._window(addon.maintenance_window)}

    async def start(self, app: str, addon: str) -> dict:
        """`database-maintenance`: the addon onto its version's current build, now."""
        current = await self.lookup.live(app, addon)
        nodes = await self.builds.of(await cluster_of(self.events, current.name))
        if not outdated(nodes):
            unknown = [f"{n['id']}: {n['why']}" for n in nodes if n["build"] == UNKNOWN]
            if unknown:  # Docker could not say: not taken for current, nor for outdated
                raise BuildCurrent(f"addon {current.name}: its build is not known for {'; '.join(unknown)}; no "
                                   "maintenance is started until it is known to be outdated")
            raise BuildCurrent(f"addon {current.name} runs the current build of {current.redis_version}: "
                               "there is no security update to take")
        operation = await self.requests.start(current)
        log.info("maintenance requested", addon=current.name, app=app, version=current.redis_version,
                 operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id), "version": current.redis_version,
                "kind": operation.kind, "nodes": [n["id"] for n in nodes if n["build"] == OUTDATED]}

    # -- the window ---------------------------------------------------------------------

    async def window(self, app: str, addon: str) -> dict | None:
        return self._window((await self._addon(app, addon)).maintenance_window)

    async def set_window(self, app: str, addon: str, window_at: str | None, local_zone: str) -> dict | None:
        """`window_at` like "sunday 3" (in `local_zone`) or "sun 4:00 UTC"; None: no window."""
        current = await self._addon(app, addon)
        window = MaintenanceWindow.parse(window_at, local_zone) if window_at is not None else None
        current.set_maintenance_window(window)
        try:
            recordings = await self.events.save(current)
        except IntegrityError:  # another command changed the addon meanwhile (optimistic concurrency)
            raise AddonBusy(f"addon {current.name} changed while this was asked: try again") from None
        if recordings:
            await self.follower.wait_until(recordings[-1].notification.id)
        return self._window(window)

    async def _addon(self, app: str, addon: str) -> Addon:
        return await self.lookup.of(app, await self.lookup.named(app, addon))

    def _window(self, window: MaintenanceWindow | None) -> dict | None:
        if window is None:
            return None
        return {**window.as_dict(), "description": window.describe(),
                "next_opening": window.next_opening(self.clock()).isoformat()}

    # -- driven by engine.scheduler -----------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> list[str]:
        """Start the maintenance of each addon running an outdated build whose window is open at `now`,
        once per window: a failed one is tried again at the next window. A busy addon is tried again at
        the next tick, while the window is still open."""
        now = now or self.clock()
        started = []
        for row in await asyncio.to_thread(self.views.addons):
            if row["status"] != "running":
                continue
            addon: Addon = await self.events.get(Addon.id_for(row["name"]))
            window = addon.maintenance_window
            opened = window.open_since(now) if window else None
            if opened is None or addon.used_maintenance_window(opened):
                continue
            try:
                if not outdated(await self.builds.of(await cluster_of(self.events, row["name"]))):
                    continue
                operation = await self.requests.start(addon, window_opened=opened)
            except (AddonBusy, AddonNotRunning) as e:
                log.info("maintenance waits for the addon", addon=row["name"], reason=str(e))
                continue
            except Exception as error:  # one addon's trouble never stops the others' maintenance
                log.warning("maintenance could not start", addon=row["name"], error=str(error) or type(error).__name__)
                continue
            log.info("maintenance started in its window", addon=row["name"], operation_id=str(operation.id))
            started.append(row["name"])
        return started

