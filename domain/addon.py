"""The Addon aggregate: one managed Redis database of one app."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain import addon_credentials as credentials, addon_maintenance as maintenance, addon_tls as tls, addon_upgrades as upgrades
from domain.addon_rules import check_free, check_running
from domain.catalog import Plan
from domain.errors import AddonRemoved, DatasetTooLarge, NoBackupsOnSandbox, SamePlan, SettingUnchanged, TlsNotAvailable
from domain.placement import Placement
from domain.schedule import DEFAULT as DEFAULT_SCHEDULE, Schedule
from domain.settings import NO_TLS_PORT, SHOWN, setting_key

MiB = 1024 * 1024


class Addon(Aggregate):
    """Status moves provisioning -> running -> removing -> removed, or to failed."""

    @staticmethod
    def create_id(name: str, **_) -> UUID:
        return Addon.id_for(name)

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/addons/{name}")

    @event("Requested")
    def __init__(
        self,
        name: str,
        app: str,
        plan: str,
        memory_mib: int,
        redis_version: str,
        host: str,
        address: str,
        port: int,
        container: str,
        volume: str,
        operation_id: UUID,
        settings: dict,
        tls_port: int | None = None,
    ):
        self.name = name
        self.app = app
        self.plan = plan
        self.memory_mib = memory_mib
        self.redis_version = redis_version
        self.host = host
        self.address = address
        self.port = port
        self.tls_port = tls_port  # None: the engine build has no TLS (or the addon predates it here)
        self.container = container
        self.volume = volume
        self.settings = dict(settings)
        self.status = "provisioning"
        self.operation_id: UUID | None = operation_id
        self.failure: str | None = None
        self.failure_kind: str | None = None
        self.target: dict | None = None  # where a plan change is taking the addon
        self.replaced: dict | None = None  # the node a plan change or a restore left behind
        self.schedule: dict | None = None  # daily backups' hour, minute and time zone; None: the default
        self.target_settings: dict | None = None  # what a settings change is applying
        self.attention: str | None = None  # why the operation holding it could not be undone

    @property
    def is_busy(self) -> bool:
        return self.operation_id is not None

    @property
    def holds_resources(self) -> bool:
        """Whether its host memory and port are taken: until it is removed or never started.
        A failed removal still holds them (the container may still be there)."""
        return self.status != "removed" and not (self.status == "failed" and self.failure_kind == "provisioning")

    @event("Provisioned")
    def mark_provisioned(self, operation_id: UUID) -> None:
        self.status = "running"
        self.operation_id = None

    @event("ProvisioningFailed")
    def mark_provisioning_failed(self, operation_id: UUID, reason: str) -> None:
        self.status = "failed"
        self.failure = reason
        self.failure_kind = "provisioning"
        self.operation_id = None

    @property
    def needs_attention(self) -> bool:
        return getattr(self, "attention", None) is not None

    @event("NeedsAttention")
    def mark_needs_attention(self, operation_id: UUID, reason: str) -> None:
        """The operation holding the addon failed and its compensation could not finish."""
        self.attention = reason

    @event("AttentionCleared")
    def _attention_cleared(self, operation_id: UUID, status: str) -> None:
        self.attention = None

    def clear_attention(self, operation_id: UUID) -> None:
        # The status it is back in rides on the event, for read models to show it again.
        self._attention_cleared(operation_id=operation_id, status=self.status)

    def request_removal(self, operation_id: UUID) -> None:
        """Removal is refused while another operation holds the addon, except one that needs attention:
        that one is given up (the caller abandons it) and removal takes what it left behind."""
        if not self.needs_attention:
            check_free(self)
        self._removal_requested(operation_id=operation_id)

    @event("RemovalRequested")
    def _removal_requested(self, operation_id: UUID) -> None:
        self.attention = None
        self.status = "removing"
        self.operation_id = operation_id

    @event("RemovalFailed")
    def mark_removal_failed(self, operation_id: UUID, reason: str) -> None:
        self.status = "failed"
        self.failure = reason
        self.failure_kind = "removal"
        self.operation_id = None

    def request_plan_change(
        self, plan: Plan, where: Placement, container: str, volume: str, operation_id: UUID, used_memory_bytes: int
    ) -> None:
        """Reference, "Changing Plans": stopped, then restarted on a new host with the new plan's parameters."""
        self.check_can_change_to(plan)
        if not self.settings.get("cache_mode") and used_memory_bytes > plan.memory_mib * MiB:
            raise DatasetTooLarge(
                f"addon {self.name} uses {used_memory_bytes / MiB:.1f} MiB of memory and plan {plan.id} has "
                f"{plan.memory_mib} MiB: delete data first, or choose a larger plan"
            )
        self._plan_change_requested(operation_id=operation_id, plan=plan.id, memory_mib=plan.memory_mib, host=where.host,
                                    address=where.address, port=where.port, container=container, volume=volume,
                                    tls_port=where.tls_port)

    def request_move(self, where: Placement, container: str, volume: str, operation_id: UUID) -> None:
        """Its host is drained: moved as a plan change onto its own plan (same memory, data intact)."""
        check_running(self, "be moved off its host")
        self._plan_change_requested(operation_id=operation_id, plan=self.plan, memory_mib=self.memory_mib,
                                    host=where.host, address=where.address, port=where.port, container=container,
                                    volume=volume, tls_port=where.tls_port)

    def check_can_change_to(self, plan: Plan) -> None:
        """The rules that need no measurement: checked before the engine measures the data."""
        check_running(self, "change plan")
        if plan.id == self.plan:
            raise SamePlan(f"addon {self.name} is already on plan {plan.id}")

    @event("PlanChangeRequested")
    def _plan_change_requested(
        self, operation_id: UUID, plan: str, memory_mib: int, host: str, address: str, port: int, container: str, volume: str,
        tls_port: int | None = None,
    ) -> None:
        self.status = "changing-plan"
        self.operation_id = operation_id
        self.target = dict(plan=plan, memory_mib=memory_mib, host=host, address=address, port=port,
                           container=container, volume=volume, tls_port=tls_port)

    @property
    def previous_node(self) -> dict:
        return dict(host=self.host, address=self.address, port=self.port, container=self.container, volume=self.volume,
                    tls_port=self.tls_port)

    def mark_plan_changed(self, operation_id: UUID) -> None:
        """The new node is the addon's now; the old one is only left to clean up."""
        self._plan_changed(operation_id=operation_id, **self.target)

    @event("PlanChanged")
    def _plan_changed(
        self, operation_id: UUID, plan: str, memory_mib: int, host: str, address: str, port: int, container: str, volume: str,
        tls_port: int | None = None,
    ) -> None:
        self.replaced = self.previous_node
        self.plan, self.memory_mib = plan, memory_mib
        self.host, self.address, self.port, self.container, self.volume = host, address, port, container, volume
        self.tls_port = tls_port
        self.target = None
        self.status = "running"
        self.operation_id = None

    def publish_target_address(self, operation_id: UUID) -> None:
        """A change between a single node and a cluster: the app's URL (the entry, or the single node) is
        published while the change still holds the addon, for the app to restart onto it before the old
        node stops serving; the plan follows once the change is done."""
        t = self.target
        self._address_published(operation_id=operation_id, address=t["address"], port=t["port"], tls_port=t["tls_port"])

    @event("AddressPublished")
    def _address_published(self, operation_id: UUID, address: str, port: int, tls_port: int | None) -> None:
        self.address, self.port, self.tls_port = address, port, tls_port

    @event("PlanChangeFailed")
    def mark_plan_change_failed(self, operation_id: UUID, reason: str) -> None:
        """Back as it was, on the old host with the old plan."""
        self.target = None
        self.status = "running"
        self.failure = reason
        self.operation_id = None

    # -- database settings ---------------------------------------------------------

    def request_setting_change(self, name: str, enabled: bool, operation_id: UUID) -> None:
        key = setting_key(name)
        check_running(self, "change its settings")
        if bool(self.settings.get(key)) == bool(enabled):
            raise SettingUnchanged(f"{SHOWN[key]} is already {'on' if enabled else 'off'} for addon {self.name}")
        if key == "force_tls" and enabled:
            self.check_serves_tls()
        self._settings_change_requested(operation_id=operation_id, settings={**self.settings, key: bool(enabled)})

    def check_serves_tls(self) -> None:
        if self.tls_port is None:
            raise TlsNotAvailable(f"addon {self.name} {NO_TLS_PORT}")

    @event("SettingsChangeRequested")
    def _settings_change_requested(self, operation_id: UUID, settings: dict) -> None:
        self.operation_id = operation_id
        self.target_settings = dict(settings)

    def mark_settings_changed(self, operation_id: UUID) -> None:
        self._settings_changed(operation_id=operation_id, settings=self.target_settings)

    @event("SettingsChanged")
    def _settings_changed(self, operation_id: UUID, settings: dict | None = None) -> None:
        # The settings ride on the event so that read models (the app's environment) can follow
        # them; events recorded before they did take the requested ones.
        self.settings = dict(settings) if settings is not None else self.target_settings
        self.target_settings = None
        self.operation_id = None

    @event("SettingsChangeFailed")
    def mark_settings_change_failed(self, operation_id: UUID, reason: str) -> None:
        """The running server has its former settings back."""
        self.target_settings = None
        self.failure = reason
        self.operation_id = None

    # -- backups ----------------------------------------------------------------

    @property
    def backup_schedule(self) -> Schedule:
        return Schedule(**self.schedule) if self.schedule else DEFAULT_SCHEDULE

    def schedule_backups(self, schedule: Schedule, tier: str) -> None:
        if tier == "sandbox":
            raise NoBackupsOnSandbox(f"addon {self.name} is on a sandbox plan, which has no backups: choose a paid plan first")
        if self.status == "removed":
            raise AddonRemoved(f"addon {self.name} is removed")
        if schedule != self.backup_schedule:
            self._backups_scheduled(hour=schedule.hour, minute=schedule.minute, zone=schedule.zone)

    @event("BackupsScheduled")
    def _backups_scheduled(self, hour: int, minute: int, zone: str) -> None:
        self.schedule = dict(hour=hour, minute=minute, zone=zone)

    def start_backup(self, operation_id: UUID, backup_id: UUID) -> None:
        """A backup holds the addon like any operation: a plan change must not stop the node under it."""
        check_running(self, "be backed up")
        self._backup_started(operation_id=operation_id, backup_id=backup_id)

    @event("BackupStarted")
    def _backup_started(self, operation_id: UUID, backup_id: UUID) -> None:
        self.operation_id = operation_id

    @event("BackupEnded")
    def mark_backup_ended(self, operation_id: UUID) -> None:
        self.operation_id = None

    def request_restore(self, backup_id: UUID, container: str, volume: str, operation_id: UUID,
                        dataset_bytes: int = 0) -> None:
        """The backup goes into a new node at the same place; the current one stays until the data is verified."""
        check_running(self, "be restored")
        if not self.settings.get("cache_mode") and dataset_bytes > self.memory_mib * MiB:
            raise DatasetTooLarge(
                f"the backup held {dataset_bytes / MiB:.1f} MiB of data and addon {self.name}'s plan {self.plan} has "
                f"{self.memory_mib} MiB: change to a larger plan first"
            )
        self._restore_requested(operation_id=operation_id, backup_id=backup_id, container=container, volume=volume)

    @event("RestoreRequested")
    def _restore_requested(self, operation_id: UUID, backup_id: UUID, container: str, volume: str) -> None:
        self.status = "restoring"
        self.operation_id = operation_id
        self.target = dict(self.previous_node, plan=self.plan, memory_mib=self.memory_mib, container=container, volume=volume)

    @event("Restored")
    def mark_restored(self, operation_id: UUID) -> None:
        self.replaced = self.previous_node
        self.container, self.volume = self.target["container"], self.target["volume"]
        self.target = None
        self.status = "running"
        self.operation_id = None

    @event("RestoreFailed")
    def mark_restore_failed(self, operation_id: UUID, reason: str) -> None:
        """The node that was there before serves on, with its data."""
        self.target = None
        self.status = "running"
        self.failure = reason
        self.operation_id = None

    # -- engine upgrades (reference, "Database Upgrade"): domain/addon_upgrades.py ----------
    request_upgrade = upgrades.request_upgrade
    _upgrade_requested = event("UpgradeRequested")(upgrades.upgrade_requested)
    mark_upgraded = upgrades.mark_upgraded
    _upgraded = event("Upgraded")(upgrades.upgraded)
    mark_upgrade_failed = event("UpgradeFailed")(upgrades.mark_upgrade_failed)

    # -- maintenance (a security update of its version's build): domain/addon_maintenance.py ------
    maintenance_window = property(maintenance.maintenance_window)
    set_maintenance_window = maintenance.set_maintenance_window
    _maintenance_window_set = event("MaintenanceWindowSet")(maintenance.maintenance_window_set)
    _maintenance_window_removed = event("MaintenanceWindowRemoved")(maintenance.maintenance_window_removed)
    request_maintenance = maintenance.request_maintenance
    _maintenance_window_used = event("MaintenanceWindowUsed")(maintenance.maintenance_window_used)
    used_maintenance_window = maintenance.used_window

    # -- TLS serving and certificate renewal: domain/addon_tls.py -------------------------
    request_tls_port = tls.request_tls_port
    _tls_port_requested = event("TlsPortRequested")(tls.tls_port_requested)
    mark_tls_served = tls.mark_tls_served
    _tls_served = event("TlsServed")(tls.tls_served)
    mark_tls_serving_failed = event("TlsServingFailed")(tls.mark_tls_serving_failed)
    start_certificate_renewal = tls.start_certificate_renewal
    _certificate_renewal_started = event("CertificateRenewalStarted")(tls.certificate_renewal_started)
    mark_certificate_renewed = event("CertificateRenewed")(tls.mark_certificate_renewed)
    mark_certificate_renewal_failed = event("CertificateRenewalFailed")(tls.mark_certificate_renewal_failed)

    # -- password rotation: domain/addon_credentials.py ---------------------------------
    start_credentials_rotation = credentials.start_credentials_rotation
    _credentials_rotation_started = event("CredentialsRotationStarted")(credentials.credentials_rotation_started)
    mark_credentials_rotated = event("CredentialsRotated")(credentials.mark_credentials_rotated)
    mark_credentials_rotation_failed = event("CredentialsRotationFailed")(credentials.mark_credentials_rotation_failed)

    def start_node_replacement(self, operation_id: UUID) -> None:
        """A node of its cluster is replaced (self-healing): it holds the addon like any operation."""
        check_running(self, "have a node replaced")
        self._node_replacement_started(operation_id=operation_id)

    @event("NodeReplacementStarted")
    def _node_replacement_started(self, operation_id: UUID) -> None:
        self.operation_id = operation_id

    @event("NodeReplacementEnded")
    def end_node_replacement(self, operation_id: UUID, outcome: str) -> None:
        self.operation_id = None

    @event("Removed")
    def mark_removed(self, operation_id: UUID) -> None:
        self.status = "removed"
        self.operation_id = None
