"""A real Engine wired with the in-memory ports, the way engine/bootstrap.py wires the real ones.

The `World` is everything outside the engine: the event store, the Docker hosts with their Redis
servers, the secrets, the CA, the backup store, the apps. It outlives an engine: a crash of the
engine's process leaves the containers running and the store on disk, and an engine built again
over the same world resumes what was unfinished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from domain.addon import Addon
from domain.catalog import ComponentCatalog, PlanCatalog, VersionCatalog
from domain.operation import Operation
from engine.app import Engine
from engine.backup_saga import BackupSaga
from engine.certificate_renewal import CertificateRenewal
from engine.credentials_rotation import CredentialsRotation
from engine.cluster_provisioning import ClusterProvisioning
from engine.node_replacement import NodeReplacement
from engine.cluster_plan_change import ClusterPlanChange
from engine.cluster_upgrade import ClusterUpgrade
from engine.cluster_upgrade_stopped import ClusterUpgradeStopped
from engine.kind_change_to_business import ChangeToBusiness
from engine.kind_change_to_starter import ChangeToStarter
from engine.plan_change import PlanChange
from engine.upgrade import Upgrade
from engine.safety_backup import SafetyBackup
from engine.provisioning import Provisioning, Removal
from engine.restore import Restore
from engine.cluster_restore import ClusterRestore
from engine.saga import Coordinator
from engine.settings import DockerHost, Settings
from engine.settings_change import SettingsChange
from engine.tls_change import TlsChange
from engine.tls_serving import TlsServing
from projections import ReadModels
from tests.unit.fakes.credentials import FakeCredentialsAdmin
from tests.unit.fakes import (CrashSwitch, FakeAppRestarter, FakeBackupStore, FakeCertificates, FakeDataLock,
                              FakeRedisAdmin, FakeRuntime, FakeSecretStore, InMemoryEventLog)

HOSTS = (
    DockerHost("host-a", "fake://host-a", "127.0.1.1", 30000, 30019, 4096),
    DockerHost("host-b", "fake://host-b", "127.0.2.1", 30000, 30019, 4096),
)
# A Business plan spreads each group of its cluster over three hosts: `World(hosts=THREE_HOSTS)`.
THREE_HOSTS = HOSTS + (DockerHost("host-c", "fake://host-c", "127.0.3.1", 30000, 30019, 4096),)
STEP_DEADLINE_S = 5.0  # never met by a step that works, however loaded the machine (the real default: a minute)
SHORT_DEADLINE_S = 0.3  # for a test that waits for a step still failing for now to fail
ATTENTION_RETRY_S = 0.01  # the first retry of a compensation that missed its deadline (the real one: 5 s)


@dataclass
class World:
    """Everything outside the engine, in memory."""

    events: InMemoryEventLog = field(default_factory=InMemoryEventLog)
    hosts: tuple[DockerHost, ...] = HOSTS  # the engine's settings name these; the fake Docker runs them
    runtime: FakeRuntime = None
    secrets: FakeSecretStore = field(default_factory=FakeSecretStore)
    certificates: FakeCertificates = field(default_factory=FakeCertificates)
    backups: FakeBackupStore = field(default_factory=FakeBackupStore)
    restarter: FakeAppRestarter = field(default_factory=FakeAppRestarter)
    redis: FakeRedisAdmin = None
    engines: list[Engine] = field(default_factory=list)
    crash_switch: CrashSwitch = field(default_factory=CrashSwitch)
    data_directory: dict = field(default_factory=dict)  # who holds its lock

    def __post_init__(self):
        self.runtime = self.runtime or FakeRuntime([h.name for h in self.hosts])
        self.redis = self.redis or FakeRedisAdmin(self.runtime)
        for fake in (self.runtime, self.redis, self.secrets, self.certificates, self.backups, self.restarter):
            fake.crash_switch = self.crash_switch

    # -- what the tests read -----------------------------------------------------------

    async def addon(self, name: str) -> Addon:
        return await self.events.get(Addon.id_for(name))

    async def operation(self, operation_id) -> Operation:
        return await self.events.get(operation_id)

    async def addon_events(self, name: str) -> list[str]:
        return [type(e).__name__ for e in await self.events.events_of(Addon.id_for(name))]

    def node_of(self, addon: Addon) -> tuple[str, str]:
        return addon.host, addon.container

    def key_counts(self, addon: Addon) -> dict:
        """The keys per database that the addon's running server holds."""
        server = self.runtime.server(addon.host, addon.container)
        assert server is not None, f"{addon.container} on {addon.host} does not run"
        return {db: n for db, n in server.keys.items() if n}

    def write_keys(self, addon: Addon, keys: dict[str, int], expires: dict[str, int] | None = None) -> None:
        """The app writes keys into its addon (per database: how many, and how many of them expire)."""
        server = self.runtime.server(addon.host, addon.container)
        assert server is not None, f"{addon.container} on {addon.host} does not run"
        for db, n in keys.items():
            server.keys[db] = server.keys.get(db, 0) + n
        for db, n in (expires or {}).items():
            server.expires[db] = server.expires.get(db, 0) + n


def build_engine(world: World, step_deadline_s: float = STEP_DEADLINE_S,
                 attention_retry_s: float = ATTENTION_RETRY_S, host_grace_s: float = 30.0) -> Engine:
    """engine/bootstrap.py's wiring, with the world's in-memory ports."""
    # The scheduler and the node watcher do not run by themselves: tests drive them.
    settings = Settings(home=Path("/nonexistent/redis-addons-unit"), hosts=world.hosts, scheduler_tick_s=0,
                        watch_interval_s=0, step_deadline_s=step_deadline_s, host_grace_s=host_grace_s)
    plans, versions = PlanCatalog.load(), VersionCatalog.load()
    events, runtime, redis, secrets = world.events, world.runtime, world.redis, world.secrets
    authority, store, restarter = world.certificates, world.backups, world.restarter
    sagas = {
        "provision": Provisioning(events, runtime, redis, secrets, versions, authority),
        "remove": Removal(events, runtime, secrets),
        "change_plan": PlanChange(events, runtime, redis, secrets, versions, restarter, authority),
        "upgrade": Upgrade(events, runtime, redis, secrets, versions, restarter, authority,
                           safety_backup=SafetyBackup(events, runtime, redis, secrets, store, plans)),
        "backup": BackupSaga(events, runtime, redis, secrets, store),
        "restore": Restore(events, runtime, redis, secrets, versions, store, authority),
        "change_settings": SettingsChange(events, runtime, redis, secrets, versions),
        "provision_cluster": ClusterProvisioning(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                                 authority),
        "replace_node": NodeReplacement(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                        certificates=authority),
        "change_cluster_plan": ClusterPlanChange(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                                 certificates=authority),
        "restore_cluster": ClusterRestore(events, runtime, redis, secrets, versions, store, ComponentCatalog.load(),
                                          certificates=authority),
    }
    sagas["renew_certificate"] = CertificateRenewal(events, runtime, redis, secrets, versions, authority)
    safety_backup = SafetyBackup(events, runtime, redis, secrets, store, plans)
    sagas["upgrade_cluster"] = ClusterUpgrade(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                              certificates=authority, restarter=restarter, safety_backup=safety_backup)
    sagas["upgrade_cluster_stopped"] = ClusterUpgradeStopped(events, runtime, redis, secrets, versions, store,
                                                             ComponentCatalog.load(), certificates=authority,
                                                             restarter=restarter, safety_backup=safety_backup)
    for saga in (ChangeToBusiness, ChangeToStarter):  # between a single node and a cluster, both ways
        sagas[saga.kind] = saga(events, runtime, redis, secrets, versions, ComponentCatalog.load(), restarter, authority)
    # Maintenance onto the current build of the version an addon runs: the upgrade's sagas (engine/maintenance.py).
    sagas["maintenance"], sagas["maintenance_cluster"] = sagas["upgrade"], sagas["upgrade_cluster"]
    sagas["serve_tls"] = TlsServing(events, runtime, redis, secrets, versions, authority)
    sagas["enable_force_tls"] = sagas["disable_force_tls"] = TlsChange(events, runtime, redis, secrets, versions,
                                                                        restarter=restarter)
    sagas["rotate_credentials"] = CredentialsRotation(events, runtime, redis, FakeCredentialsAdmin(redis), secrets,
                                                      restarter)
    coordinator = Coordinator(events, sagas, settings.step_deadline_s, settings.crash_at,
                              attention_retry_s=attention_retry_s)
    engine = Engine(
        settings=settings,
        events=events,
        runtime=runtime,
        redis=redis,
        secrets=secrets,
        views=ReadModels(":memory:"),
        coordinator=coordinator,
        plans=plans,
        versions=versions,
        backup_store=store,
        certificates=authority,
        views_factory=ReadModels,
        data_lock=FakeDataLock(world.data_directory, f"engine {len(world.engines) + 1}"),
    )
    world.engines.append(engine)
    return engine


async def started_engine(world: World, **options) -> Engine:
    engine = build_engine(world, **options)
    await engine.start()
    return engine


async def crashed(engine: Engine) -> None:
    """The engine's process is gone: its tasks end where they are; the store and Docker stay as they are,
    and its lock on the data directory goes with it."""
    await engine.watcher.stop()
    await engine.scheduler.stop()
    await engine.coordinator.stop()
    await engine.follower.stop()
    engine.data_lock.release()


async def restarted(world: World, engine: Engine, **options) -> Engine:
    """A crash, then a new engine over the same world: it resumes every unfinished operation."""
    await crashed(engine)
    return await started_engine(world, **options)


async def settled(engine: Engine, timeout: float = 10.0) -> None:
    """Every unfinished operation of the store has finished (or needs attention)."""
    for operation_id in list(engine.inventory.unfinished):
        await engine.wait_for_operation(str(operation_id), timeout=timeout)


async def caught_up(engine: Engine) -> None:
    """The read models show everything recorded so far."""
    await engine.follower.wait_until(await engine.events.max_position())


async def shut_down(world: World) -> None:
    for engine in world.engines:
        await crashed(engine)
        await engine.runtime.close()
    await world.events.shutdown()


# -- givens for the saga tests (the fixtures `world` and `engine` are in conftest.py) -----------------------

APP = "my-app"
SOME_KEYS = {"0": 120, "1": 7, "4": 3}
SOME_EXPIRING = {"0": 20}


async def finished(engine: Engine, started: dict) -> dict:
    """The operation a command started, once it has finished."""
    return await engine.wait_for_operation(started["operation_id"], timeout=10)


async def a_running_addon(world: World, engine: Engine, plan: str = "redis-starter-256", keys=SOME_KEYS,
                          expiring=SOME_EXPIRING) -> Addon:
    """Given: an addon provisioned for the app, holding some keys."""
    operation = await finished(engine, await engine.add_addon(APP, plan))
    assert operation["status"] == "succeeded", operation
    addon = await world.addon(operation["addon"])
    world.write_keys(addon, keys, expiring)
    return addon
