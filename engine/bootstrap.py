"""The one composition root: settings in, a wired Engine out."""

from __future__ import annotations

from pathlib import Path

import structlog

from adapters.apps.docker_app import DockerAppRestarter
from adapters.apps.restarter import AppRestarter
from adapters.docker.runtime import DockerRuntime
from adapters.redis_admin import RedisAdmin
from adapters.redis_credentials import RedisCredentials
from adapters.postgres.shared_state import shared_state
from adapters.postgres.reachability import refuse_unreachable_store, store_diagnosis
from adapters.webhooks import HttpWebhookSender
from adapters.stats_history import MemoryStatsHistory
from adapters.storage.backup_files import FileBackupStore
from adapters.checkpoints import FileCheckpoints
from adapters.secrets_store import FileSecretStore
from adapters.storage.backup_keys import BackupKeys
from adapters.tls import CA_CERT_FILE
from adapters.tls.certificates import CA_KEY_FILE
from adapters.fresh_home import fresh_data_directory
from adapters.storage.control_plane_archive import PassphraseArchive
from adapters.storage.file_items import FileItems, HostTLSFiles
from domain.catalog import ComponentCatalog, PlanCatalog, VersionCatalog
from engine.app import Engine
from engine.backup_saga import BackupSaga
from engine.cluster_plan_change import ClusterPlanChange
from engine.cluster_upgrade import ClusterUpgrade
from engine.cluster_upgrade_stopped import ClusterUpgradeStopped
from engine.kind_change_to_business import ChangeToBusiness
from engine.kind_change_to_starter import ChangeToStarter
from engine.certificate_renewal import CertificateRenewal
from engine.clock import Clock, system_clock
from engine.credentials_rotation import CredentialsRotation
from engine.logs import configure_logging
from engine.plan_change import PlanChange
from engine.upgrade import Upgrade
from engine.safety_backup import SafetyBackup
from engine.cluster_provisioning import ClusterProvisioning
from engine.node_replacement import NodeReplacement
from engine.provisioning import Provisioning, Removal
from engine.restore import Restore
from engine.cluster_restore import ClusterRestore
from engine.settings_change import SettingsChange
from engine.tls_change import TlsChange
from engine.tls_serving import TlsServing
from engine.leases import leases_for
from engine.saga import Coordinator
from engine.control_plane_export import ControlPlaneState, LedgerRecords
from engine.settings import Settings
from engine.store import EventLog
from projections import ReadModels


def build(settings: Settings | None = None, clock: Clock = system_clock) -> Engine:
    """`clock`: the engine's time of day (engine/clock.py), the machine's unless a test moves it."""
    settings = settings or Settings.from_env()
    if not structlog.is_configured():  # an embedder's own configuration wins
        configure_logging()
    refuse_unreachable_store(settings)  # first: a typo in REDIS_ADDONS_POSTGRES_* is said as such
    settings.home.mkdir(parents=True, exist_ok=True)
    plans, versions = PlanCatalog.load(), VersionCatalog.load()
    events = EventLog(settings.store_env, diagnose=store_diagnosis(settings))
    runtime = DockerRuntime(settings.hosts)
    shared = shared_state(settings)  # the data directory's files, or PostgreSQL for several processes
    secrets, authority = shared.secrets, shared.authority
    redis = RedisAdmin(ca_file=settings.tls_dir / CA_CERT_FILE)
    store = FileBackupStore(settings.backups_dir, shared.backup_keys)
    restarter = AppRestarter(DockerAppRestarter(runtime))
    sagas = {
        "provision": Provisioning(events, runtime, redis, secrets, versions, authority),
        "remove": Removal(events, runtime, secrets),
        "provision_cluster": ClusterProvisioning(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                                 authority),
        "replace_node": NodeReplacement(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                        certificates=authority),
        "change_plan": PlanChange(events, runtime, redis, secrets, versions, restarter, authority),
        "upgrade": Upgrade(events, runtime, redis, secrets, versions, restarter, authority,
                           safety_backup=SafetyBackup(events, runtime, redis, secrets, store, plans)),
        "change_cluster_plan": ClusterPlanChange(events, runtime, redis, secrets, versions, ComponentCatalog.load(),
                                                 certificates=authority),
        "backup": BackupSaga(events, runtime, redis, secrets, store),
        "restore": Restore(events, runtime, redis, secrets, versions, store, authority),
        "change_settings": SettingsChange(events, runtime, redis, secrets, versions),
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
    sagas["rotate_credentials"] = CredentialsRotation(events, runtime, redis, RedisCredentials(redis), secrets,
                                                      restarter)
    coordinator = Coordinator(events, sagas, settings.step_deadline_s, settings.crash_at,
                              leases=leases_for(events, settings.process_id, settings.lease_s))
    return Engine(
        settings=settings,
        events=events,
        runtime=runtime,
        redis=redis,
        secrets=secrets,
        views=ReadModels(settings.read_models_file),
        coordinator=coordinator,
        plans=plans,
        versions=versions,
        backup_store=store,
        certificates=authority,
        views_factory=ReadModels,
        data_lock=shared.data_lock,
        checkpoints=shared.checkpoints,
        webhook_sender=HttpWebhookSender(),
        webhook_secrets=shared.webhook_secrets,
        stats_history=MemoryStatsHistory(settings.stats_interval_s),
        clock=clock,
        duties_lock=shared.duties_lock,  # PostgreSQL: an advisory lock, nothing recorded (engine/duties.py)
        placement_lock=shared.placement_lock,  # PostgreSQL: an advisory lock per placement (engine/placing.py)
    )


def build_control_plane_state(settings: Settings, hosts_file: Path | None = None) -> ControlPlaneState:
    """The control plane's state on the stores `build` wires, for its export and restore: `hosts_file` is
    where the hosts are read from (REDIS_ADDONS_HOSTS); a restore writes them to the data directory's."""
    tls, home = settings.tls_dir, settings.home
    hosts = {"hosts": FileItems({"hosts.json": (hosts_file or home / "hosts.json", 0o644)}),
             "docker-host-tls": HostTLSFiles(hosts_file or home / "hosts.json", base=home)}  # beside the hosts file
    if settings.store_env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":  # shared by every process there
        from adapters.postgres.reachability import refuse_unreachable_store
        from adapters.postgres.shared_state import postgres_item_stores

        refuse_unreachable_store(settings)  # the database's own words, not the pool's time-out

        shared = postgres_item_stores(settings)
        return ControlPlaneState(LedgerRecords(settings.store_env), {**shared, **hosts}, PassphraseArchive(),
                                 on_close=shared["checkpoints"].database.close)  # the one connection they share
    stores = {
        "addon-passwords": FileSecretStore(settings.secrets_dir),
        "webhook-secrets": FileSecretStore(home / "webhook-secrets"),
        "certificate-authority": FileItems({CA_CERT_FILE: (tls / CA_CERT_FILE, 0o644), CA_KEY_FILE: (tls / CA_KEY_FILE, 0o600)}),
        "backup-keyring": BackupKeys(settings.backup_keys_file, settings.backup_key),
        "tokens": FileItems({"api-token": (settings.token_file, 0o600),
                             "metrics-token": (settings.metrics_token_file, 0o600)}),
        **hosts,
        "checkpoints": FileCheckpoints(settings.checkpoints_dir),
    }
    return ControlPlaneState(LedgerRecords(settings.store_env), stores, PassphraseArchive())


def export_control_plane(settings: Settings, to: Path, passphrase: str, hosts_file: Path | None = None) -> dict:
    """The whole control plane in one archive sealed with `passphrase` (engine/control_plane_export.py)."""
    state = build_control_plane_state(settings, hosts_file)
    try:
        return state.export(to, passphrase)
    finally:
        state.close()


def restore_control_plane(settings: Settings, source: Path, passphrase: str) -> dict:
    """Restore the archive at `source` into `settings.home`, which must be new or empty (and the event store
    empty); on any failure the data directory is left as it was found."""
    records = PassphraseArchive().read(Path(source), passphrase)  # whole first: a wrong passphrase touches nothing
    with fresh_data_directory(settings.home):
        state = build_control_plane_state(settings)
        try:
            return state.restore_records(Path(source), records)
        except BaseException:
            if settings.store_env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
                _forget_key_check(state, settings)
            raise
        finally:
            state.close()


def _forget_key_check(state: ControlPlaneState, settings: Settings) -> None:
    """A restore into PostgreSQL that failed: the installation key it made goes with the data directory, so the
    row sealed with that key to check it (adapters/postgres/vault.py) goes too when it is all the vault holds
    (a database left with it would refuse the next attempt for want of that key)."""
    from adapters.postgres.vault import CHECK

    vault = state.stores["addon-passwords"].vault
    if settings.home in settings.secrets_key_file.parents and set(vault.under("")) <= {CHECK}:
        vault.delete(CHECK)
