"""The engine: command handlers over the event store, queries over the read models.

Embedders, the HTTP API and the tests all use this one class (built by engine.bootstrap).
"""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

import structlog

from domain.addon import DEFAULT_SETTINGS, Addon, addon_name, check_app_name
from domain.app import App, restart_method
from domain.catalog import PlanCatalog, VersionCatalog
from domain.errors import AddonBusy, AddonRemoved, UnknownAddon, UnknownApp, UnknownOperation
from domain.operation import Operation
from domain.placement import place
from domain.redis_config import app_environment
from engine.backups import BackupService
from engine.certificate_renewal import CertificateRenewals
from engine.database_settings import DatabaseSettings
from engine.follower import Follower
from engine.inventory import Inventory
from engine.nodes import endpoint
from engine.ports import BackupStore, Certificates, ReadModels, RedisAdmin, Runtime, SecretStore
from engine.saga import Coordinator
from engine.scheduler import Scheduler
from engine.settings import Settings
from engine.store import AggregateNotFoundError, EventLog, IntegrityError
from engine.tls_serving import MissingTls

log = structlog.get_logger("engine")

PROVIDER = "redis"


class Engine:
    def __init__(
        self,
        settings: Settings,
        events: EventLog,
        runtime: Runtime,
        redis: RedisAdmin,
        secrets: SecretStore,
        views: ReadModels,
        coordinator: Coordinator,
        plans: PlanCatalog,
        versions: VersionCatalog,
        backup_store: BackupStore,
        certificates: Certificates,
        views_factory=None,
    ):
        self.settings = settings
        self.events = events
        self.runtime = runtime
        self.redis = redis
        self.secrets = secrets
        self.views = views
        self.coordinator = coordinator
        self.plans = plans
        self.versions = versions
        self.certificates = certificates
        self.inventory = Inventory()
        self.follower = Follower(events, views)
        self._views_factory = views_factory
        self._placing = asyncio.Lock()
        events.on_saved(self.inventory.apply)
        self.backups = BackupService(self, backup_store)
        self.database = DatabaseSettings(self)
        self.certificate_renewals = CertificateRenewals(self)
        self.missing_tls = MissingTls(self)
        self.scheduler = Scheduler(self.backups, self.certificate_renewals, self.missing_tls.serve_where_missing,
                                   settings.scheduler_tick_s)

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.runtime.check()
        except Exception:
            await self.runtime.close()
            raise
        await self.events.open()
        await self._load_inventory()
        await self.follower.catch_up()
        self.follower.start()
        for operation_id, addon in list(self.inventory.unfinished.items()):
            log.info("resuming operation", operation_id=str(operation_id), addon=addon)
            self.coordinator.submit(operation_id)
        self.scheduler.start()

    async def _load_inventory(self) -> None:
        position = 0
        while batch := await self.events.select(position, 1000):
            for position, event in batch:
                self.inventory.apply(event)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.coordinator.stop()
        await self.follower.stop()
        await self.events.close()
        await self.runtime.close()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- commands -----------------------------------------------------------

    async def add_addon(self, app: str, plan_id: str, provider: str = PROVIDER, version: str | None = None) -> dict:
        """Provision an addon of `plan_id` for `app`; returns at once with the operation id."""
        check_app_name(app)
        if provider != PROVIDER:
            raise UnknownAddon(f"unknown addon provider {provider!r}; this installation provides {PROVIDER!r}")
        plan = self.plans.provisionable(plan_id)
        engine_version = self.versions.get(version) if version else self.versions.default
        # Look before acting: another installation may share these hosts (read outside the lock:
        # what this engine reserves itself is in the inventory, under the lock).
        in_use = await self.runtime.ports_in_use()
        async with self._placing:  # placement reads and reserves the inventory: one at a time
            where = place(plan.memory_mib, [h.as_domain() for h in self.settings.hosts], self.inventory.tenants(), in_use,
                          tls=engine_version.tls)
            name = self._new_addon_name(app)
            operation = Operation(kind="provision", addon=name, app=app)
            node = f"redis-addons-{name}-{operation.id.hex[:8]}"
            addon = Addon(
                name=name,
                app=app,
                plan=plan.id,
                memory_mib=plan.memory_mib,
                redis_version=engine_version.version,
                host=where.host,
                address=where.address,
                port=where.port,
                container=node,
                volume=f"{node}-data",
                operation_id=operation.id,
                settings=DEFAULT_SETTINGS,
                tls_port=where.tls_port,
            )
            recordings = await self.events.save(addon, operation)
        log.info("addon requested", addon=name, app=app, plan=plan.id, host=where.host, operation_id=str(operation.id))
        self.coordinator.submit(operation.id)
        await self.follower.wait_until(recordings[-1].notification.id)
        return {"addon": name, "operation_id": str(operation.id)}

    def _new_addon_name(self, app: str) -> str:
        while True:
            name = addon_name(app, random.randint(1000, 9999))
            if not self.inventory.name_taken(name):
                return name

    async def remove_addon(self, app: str, addon: str) -> dict:
        current = await self._addon_of(app, addon)
        operation = Operation(kind="remove", addon=current.name, app=app)
        current.request_removal(operation.id)
        recordings = await self._save_command(current, operation)
        log.info("addon removal requested", addon=current.name, app=app, operation_id=str(operation.id))
        self.coordinator.submit(operation.id)
        await self.follower.wait_until(recordings[-1].notification.id)
        return {"addon": current.name, "operation_id": str(operation.id)}

    async def change_plan(self, app: str, addon: str, plan_id: str) -> dict:
        """Reference, "Changing Plans": the same command upgrades and downgrades."""
        plan = self.plans.provisionable(plan_id)
        current = await self._addon_of(app, addon)
        current.check_can_change_to(plan)
        used = await self.redis.used_memory(endpoint(current.previous_node, self.secrets.password_for(current.name)))
        in_use = await self.runtime.ports_in_use()
        async with self._placing:
            where = place(plan.memory_mib, [h.as_domain() for h in self.settings.hosts], self.inventory.tenants(),
                          in_use, exclude_host=current.host, tls=self.versions.get(current.redis_version).tls)
            operation = Operation(kind="change_plan", addon=current.name, app=app)
            node = f"redis-addons-{current.name}-{operation.id.hex[:8]}"
            current.request_plan_change(plan, where, node, f"{node}-data", operation.id, used)
            recordings = await self._save_command(current, operation)
        log.info("plan change requested", addon=current.name, app=app, plan=plan.id, host=where.host,
                 operation_id=str(operation.id))
        self.coordinator.submit(operation.id)
        await self.follower.wait_until(recordings[-1].notification.id)
        return {"addon": current.name, "operation_id": str(operation.id)}

    async def register_app(self, app: str, restart: str = "none", label: str | None = None, url: str | None = None) -> dict:
        """Tell the engine how to restart an app when its environment changes."""
        check_app_name(app)
        method = restart_method(restart, label=label, url=url,
                                engine_api=(self.settings.api_host, self.settings.api_port))
        if method["kind"] == "docker":  # checked again at each restart: a node may be labelled later
            from domain.app import refuse_database_matches  # here: the rest of this module is being reshaped

            refuse_database_matches(label, [(c.host, c.container, c.labels)
                                            for c in await self.runtime.containers_labelled(label)])
        try:
            registered: App = await self.events.get(App.id_for(app))
            if registered.restart != method:
                registered.change_restart(method)
        except AggregateNotFoundError:
            registered = App(name=app, restart=method)
        recordings = await self.events.save(registered)
        if recordings:
            await self.follower.wait_until(recordings[-1].notification.id)
        return {"app": app, "restart": method}

    async def app(self, app: str) -> dict:
        await self._known_app(app)
        try:
            restart = (await self.events.get(App.id_for(app))).restart
        except AggregateNotFoundError:
            restart = {"kind": "none"}
        return {"app": app, "restart": restart}

    async def _save_command(self, addon: Addon, *others):
        """Save what a command decided; an addon changed meanwhile (the scheduler started an
        operation on it) is busy, not an internal error."""
        try:
            return await self.events.save(addon, *others)
        except IntegrityError:
            raise AddonBusy(f"addon {addon.name} changed while this was asked (an operation started on it): "
                            "try again when it has finished") from None

    async def _addon_of(self, app: str, name: str) -> Addon:
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

    async def addon_named(self, app: str, ref: str, allow_removed: bool = False) -> str:
        """`--addon`: an addon ID, or the provider's name when the app has one live Redis addon."""
        await self._known_app(app)
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

    async def wait_for_operation(self, operation_id: str, timeout: float = 120.0) -> dict:
        op_id = self._operation_id(operation_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                operation: Operation = await self.events.get(op_id)
            except AggregateNotFoundError:
                raise UnknownOperation(f"unknown operation {operation_id}") from None
            left = deadline - asyncio.get_running_loop().time()
            if operation.is_finished or left <= 0:
                # Read your writes: what the operation did shows in the read models on return.
                await self.follower.wait_until(await self.events.max_position())
                return describe_operation(operation)
            # Driven here: wait for its saga. Driven elsewhere (another process): poll.
            if not await self.coordinator.wait(op_id, timeout=left):
                await self.events.wait_for_save(min(left, 0.5))

    async def operation(self, operation_id: str) -> dict:
        try:
            return describe_operation(await self.events.get(self._operation_id(operation_id)))
        except AggregateNotFoundError:
            raise UnknownOperation(f"unknown operation {operation_id}") from None

    @staticmethod
    def _operation_id(text: str) -> UUID:
        try:
            return UUID(str(text))
        except ValueError:
            raise UnknownOperation(f"unknown operation {text!r}: not an operation id") from None

    # -- queries (read models) ---------------------------------------------

    def plan_list(self) -> list[dict]:
        return [
            dict(id=p.id, memory_mib=p.memory_mib, data_nodes=p.data_nodes, backups=p.backups, available=not p.is_cluster)
            for p in self.plans
        ]

    async def addons(self, app: str) -> list[dict]:
        await self._known_app(app)
        return await asyncio.to_thread(self.views.addons, app)

    async def addon(self, app: str, name: str) -> dict:
        await self._known_app(app)
        row = await asyncio.to_thread(self.views.addon, name)
        if row is None or row["app"] != app:
            raise UnknownAddon(f"app {app!r} has no addon {name!r}")
        return row

    async def environment(self, app: str) -> dict[str, str]:
        """The app's variables, with the passwords filled in: the only place a secret is shown."""
        await self._known_app(app)
        variables = {}
        for row in await asyncio.to_thread(self.views.environment, app):
            password = self.secrets.peek(row["addon"])
            if password is None:
                continue
            variables.update(app_environment(password=password, address=row["address"], port=row["port"],
                                             tls_port=row["tls_port"], force_tls=row["tls"]))
        return variables

    async def operations(self, addon: str | None = None) -> list[dict]:
        return await asyncio.to_thread(self.views.operations, addon)

    async def _known_app(self, app: str) -> None:
        check_app_name(app)
        if not self.inventory.app_known(app):
            raise UnknownApp(f"unknown app {app!r}: it has never had an addon here")

    async def event_page(self, after: int = 0, limit: int = 100) -> list[dict]:
        """Events after position `after`, as JSON-ready dicts (they hold no secret)."""
        return [event_as_dict(n, e) for n, e in await self.events.select(after, limit)]

    async def wait_for_events(self, timeout: float) -> None:
        """Return when this process records an event, or after `timeout` (other writers)."""
        await self.events.wait_for_save(timeout)

    async def replay(self) -> dict:
        """Rebuild every read model from the log into a fresh store and compare with the live one."""
        live = await asyncio.to_thread(self.views.snapshot)
        fresh = self._views_factory()
        after = 0
        while after < live["position"] and (batch := await self.events.select(after, 500)):
            for notification_id, event in batch:
                if notification_id > live["position"]:
                    break
                await asyncio.to_thread(fresh.process, notification_id, event)
            after = batch[-1][0]
        rebuilt = await asyncio.to_thread(fresh.snapshot)
        tables = sorted(set(live["tables"]) | set(rebuilt["tables"]))
        differences = [t for t in tables if live["tables"].get(t) != rebuilt["tables"].get(t)]
        return {
            "position": live["position"],
            "matches": not differences and rebuilt["position"] == live["position"],
            "differences": differences,
            "rows": {t: len(rows) for t, rows in rebuilt["tables"].items()},
        }


def event_as_dict(position: int, event) -> dict:
    data = {k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version", "timestamp")}
    return {
        "id": position,
        "type": type(event).__qualname__,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": event.timestamp.isoformat(),
        "data": json_ready(data),
    }


def json_ready(value):
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def describe_operation(operation: Operation) -> dict:
    return {
        "id": str(operation.id),
        "kind": operation.kind,
        "addon": operation.addon,
        "app": operation.app,
        "status": operation.status,
        "error": operation.error,
        "steps": [dict(s) for s in operation.steps],
    }
