"""The engine: command handlers over the event store, queries over the read models.

Embedders, the HTTP API and the tests all use this one class (built by engine.bootstrap).
"""

from __future__ import annotations

import asyncio
import random

import structlog

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.names import addon_name, check_app_name
from domain.app import App, restart_method
from domain.catalog import PlanCatalog, VersionCatalog
from domain.errors import OperationNotStuck, UnknownAddon
from domain.operation import Operation
from domain.redis_config import app_environment
from engine.access import AccessService
from engine.backups import BackupService
from engine.certificate_renewal import CertificateRenewals
from engine.clock import Clock, system_clock
from engine.credentials_rotation import CredentialsRotations
from engine.database_settings import DatabaseSettings
from engine.database_version import DatabaseVersion
from engine.duties import Duties
from engine.first_read import catch_up_together
from engine.follower import Follower
from domain.placement import NodeRequest
from engine.addon_lookup import PROVIDER, AddonLookup
from engine.addon_stats import StatsQueries
from engine import audit
from engine.log_queries import LogQueries
from engine.described import describe_operation
from engine.adoption import adopt_clusters
from engine.claims import AddonClaims
from engine.cluster_healing import ClusterHealer
from engine.cluster_forming import business_addon, business_requests
from engine.clusters import new_cluster
from engine.hosts_check import some_hosts_answer
from engine.hosts_setup import host_management
from engine.identity_watch import IdentityWatch
from engine.inventory import Inventory
from engine.inventory_keeper import InventoryKeeper
from engine.maintenance import Builds, Maintenance
from engine.maintenance_requests import MaintenanceRequests
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.plan_requests import PlanRequests
from engine.ports import BackupStore, Certificates, Checkpoints, DataLock, ReadModels, RedisAdmin, Runtime, SecretStore
from engine.replication_view import with_replication
from engine.saga import Coordinator
from engine.scheduler import Scheduler
from engine.settings import Settings
from engine.store import AggregateNotFoundError, EventLog
from engine.takeover import Takeover
from engine.tls_serving import MissingTls
from engine.watcher import NodeWatcher
from engine.webhooks import Webhooks

log = structlog.get_logger("engine")


class Engine(StatsQueries, LogQueries):  # stats: engine/addon_stats.py; operations, events, replay: engine/log_queries.py
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
        data_lock: DataLock | None = None,
        checkpoints: Checkpoints | None = None,
        webhook_sender=None, webhook_secrets: SecretStore | None = None,  # engine.ports.WebhookSender: None, none sent
        stats_history=None,  # engine.ports.StatsHistory; None: no history kept
        clock: Clock = system_clock,  # the time of day schedules and windows are decided by (engine/clock.py)
        duties_lock=None,  # engine.duties.DutiesLock: which process runs the duties; None: this one, alone
        placement_lock=None,  # engine.placing.PlacementLock: one placement at a time across processes; None: alone
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
        self.data_lock = data_lock  # None: nothing keeps a second engine off this data (in-memory tests)
        self.inventory = Inventory()
        self.follower = Follower(events, views)
        self._views_factory = views_factory
        self.inventory_keeper = InventoryKeeper(events, self.inventory, checkpoints)
        self.lookup = AddonLookup(events, views, self.inventory)
        self.placing = Placing(settings.hosts, self.inventory, runtime, placement_lock)
        self.placing.while_held.append(events.tell_new)  # a shared store: the others' nodes, in the inventory
        claims = AddonClaims()
        self.operations_starter = starter = OperationStarter(events, coordinator, self.follower, claims)
        self.backups = BackupService(events, views, plans, versions, self.lookup, starter, self.follower,
                                     self.inventory, backup_store, clock=clock, placing=self.placing)
        self.plan_requests = PlanRequests(events, self.lookup, plans, versions, redis, secrets, self.placing, starter)
        self.database = DatabaseSettings(self.lookup, starter, versions, certificates, redis, secrets, plans)
        self.credentials = CredentialsRotations(self.lookup, starter)  # engine/credentials_rotation.py
        builds = Builds(runtime, versions)  # whether each node runs its version's current build
        self.database_version = DatabaseVersion(self.lookup, versions, plans, starter, self.placing, builds)
        self.certificate_renewals = CertificateRenewals(events, views, redis, secrets, starter, clock=clock)
        self.missing_tls = MissingTls(events, views, versions, self.placing, starter, plans)
        healer = ClusterHealer(events, views, self.inventory, claims, runtime, redis, secrets, self.placing, starter,
                               plans, settings.host_grace_s, versions)
        self.watcher = NodeWatcher(events, views, self.inventory, claims, runtime, redis, secrets, versions,
                                   certificates, settings.watch_interval_s, plans, healer)
        self.watcher.on_host_back = coordinator.retry_stuck  # undos that waited for a host's engine try again now
        self.maintenance = Maintenance(events, views, self.lookup, self.follower, builds,
                                       MaintenanceRequests(events, plans, starter, self.placing), clock=clock)
        self.scheduler = Scheduler(self.backups, self.certificate_renewals, self.missing_tls.serve_where_missing,
                                   settings.scheduler_tick_s, self.maintenance.run_due)
        self.webhooks = Webhooks(events, webhook_secrets or secrets, webhook_sender, checkpoints, self.maintenance, self.lookup)
        self.stats_sampler = self.new_stats_sampler(stats_history)
        # Run here, or by the one process holding the duties lock on a shared store (engine/duties.py).
        self.hosts = host_management(self)  # list, add, drain, remove hosts (engine/hosts.py)
        self.duties = Duties(coordinator.leases, [self.scheduler, self.watcher, self.webhooks, self.hosts.drainer],
                             Takeover(events, coordinator.leases, self.inventory, coordinator), duties_lock)
        self.access = AccessService(events, self.lookup)  # tokens scoped to apps; who may see what
        # Leases are held by identity: once another process holds it, this one drives nothing more.
        self.identity = IdentityWatch(data_lock, coordinator.leases, [self.duties.stop, coordinator.stop])

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        if self.data_lock is not None:
            self.data_lock.acquire()  # first: a refused engine touches nothing
        try:
            await self._start()
        except BaseException:
            await self.stop()  # what started is stopped, and the data directory is free again
            raise

    async def _start(self) -> None:
        await some_hosts_answer(self.runtime, self.settings.hosts)
        await self.events.open()
        await catch_up_together(self.events, self.inventory_keeper, self.follower)
        await adopt_clusters(self.events, self.inventory)
        await self.follower.catch_up()  # what adoption recorded
        await self.hosts.load()  # the hosts file seeds the log; hosts added since are reached too
        await self.webhooks.load()
        self.follower.start()
        for operation_id, addon in list(self.inventory.unfinished.items()):
            log.info("resuming operation", operation_id=str(operation_id), addon=addon)
            self.coordinator.submit(operation_id)
        await self.duties.start()  # the scheduler, the node watcher, webhook sending
        self.stats_sampler.start()
        self.inventory_keeper.start()
        self.identity.start()

    async def stop(self) -> None:
        await self.identity.stop()
        await self.stats_sampler.stop()
        await self.duties.stop()
        await self.coordinator.stop()
        await self.follower.stop()
        await self.inventory_keeper.stop()
        await self.events.close()
        await self.runtime.close()
        if self.data_lock is not None:
            self.data_lock.release()  # last: until here operations may still be recorded

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
        engine_version = self.versions.provisionable(version)
        if plan.is_cluster:
            return await self._add_cluster(app, plan, engine_version.version)
        async with self.placing.held() as placer:
            [where] = placer.nodes([NodeRequest("data", plan.memory_mib, tls=engine_version.tls)])
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
            # Recorded under the placement lock (the inventory holds the node from then on); the read
            # models are caught up after it, so concurrent placements do not wait for them.
            position = await self.operations_starter.record(operation, addon, new_cluster(addon, operation.id))
        await self.operations_starter.caught_up(position)
        log.info("addon requested", addon=name, app=app, plan=plan.id, host=where.host, operation_id=str(operation.id))
        return {"addon": name, "operation_id": str(operation.id)}

    async def _add_cluster(self, app: str, plan, version: str) -> dict:
        """Reference, "Cluster Setup": a Business addon is seven nodes over three hosts."""
        async with self.placing.held() as placer:
            tls = self.versions.get(version).tls  # its nodes serve TLS only, its entry both (engine/cluster_forming.py)
            placed = placer.nodes(business_requests(plan, tls))
            name = self._new_addon_name(app)
            operation = Operation(kind="provision_cluster", addon=name, app=app)
            addon, cluster = business_addon(name, app, plan, version, placed, operation, tls=tls)
            position = await self.operations_starter.record(operation, addon, cluster)
        await self.operations_starter.caught_up(position)
        log.info("cluster addon requested", addon=name, app=app, plan=plan.id, operation_id=str(operation.id))
        return {"addon": name, "operation_id": str(operation.id)}

    def _new_addon_name(self, app: str) -> str:
        while True:
            name = addon_name(app, random.randint(1000, 9999))
            if not self.inventory.name_taken(name):
                return name

    async def remove_addon(self, app: str, addon: str) -> dict:
        current = await self.lookup.of(app, addon)
        operation = Operation(kind="remove", addon=current.name, app=app)
        stuck = None
        if current.needs_attention:  # given up: removal takes what it left behind
            stuck = await self.events.get(current.operation_id)
            stuck.abandon(f"abandoned for the addon's removal (operation {operation.id})")
            self.coordinator.forget(stuck.id)  # first: an attempt ending meanwhile must not record over it
        current.request_removal(operation.id)
        try:
            await self.operations_starter.start(operation, current, *([stuck] if stuck else []))
        except Exception:
            if stuck:
                self.coordinator.submit(stuck.id)  # not given up after all: drive it again
            raise
        log.info("addon removal requested", addon=current.name, app=app, operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id)}

    async def change_plan(self, app: str, addon: str, plan_id: str) -> dict:
        """Reference, "Changing Plans": the same command upgrades and downgrades."""
        return await self.plan_requests.change(app, addon, plan_id)

    async def retry_operation(self, operation_id: str) -> dict:
        """An operator's retry of an operation whose compensation could not finish ("needs attention")."""
        op_id = self._operation_id(operation_id)
        operation = await self._the_operation(op_id, operation_id)  # another aggregate's ID: unknown, as none
        if operation.status != "needs-attention":
            raise OperationNotStuck(f"operation {operation_id} is {operation.status}: only an operation that needs "
                                    "attention can be retried")
        log.info("operation retried", operation_id=str(op_id), addon=operation.addon,  # who: the audit trail
                 requested_by=audit.current().shown())
        self.coordinator.retry(op_id)
        return describe_operation(operation)

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

    async def _addon_of(self, app: str, name: str) -> Addon:
        return await self.lookup.of(app, name)

    async def addon_named(self, app: str, ref: str, allow_removed: bool = False) -> str:
        """`--addon`: an addon ID, or the provider's name when the app has one live Redis addon."""
        return await self.lookup.named(app, ref, allow_removed)

    # -- queries (read models) ---------------------------------------------

    def plan_list(self) -> list[dict]:
        return [
            dict(id=p.id, memory_mib=p.memory_mib, data_nodes=p.data_nodes, backups=p.backups, available=True)
            for p in self.plans
        ]

    async def version_list(self) -> list[dict]:
        from engine.versions import version_list  # each catalog version and what its image holds on each host
        return await version_list(self.runtime, self.versions, [h.name for h in self.settings.hosts])

    async def addons(self, app: str) -> list[dict]:
        await self._known_app(app)
        return await asyncio.to_thread(self.views.addons, app)

    async def addon(self, app: str, name: str) -> dict:
        await self._known_app(app)
        row = await asyncio.to_thread(self.views.addon, name)
        if row is None or row["app"] != app:
            raise UnknownAddon(f"app {app!r} has no addon {name!r}")
        return row

    async def nodes(self, app: str, addon: str) -> list[dict]:
        """The addon's cluster: each node's role, place, version and state, which is the primary, and
        the replication offsets read live (`addon` takes an ID or `redis`, as for backups); a removed
        addon's nodes show retired."""
        name = await self.lookup.named(app, addon, allow_removed=True)
        rows = [dict(row, is_primary=bool(row["is_primary"])) for row in await asyncio.to_thread(self.views.nodes, name)]
        return await with_replication(self.redis, self.secrets.peek(name), rows)

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
        await self.lookup.known_app(app)
