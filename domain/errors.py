"""Domain errors: each names the rule that refused a command."""


class DomainError(Exception):
    """A command broke a business rule; the message says which, in the user's words."""

    rule = "domain-rule"
    status = 422  # what an HTTP adapter should answer


class InvalidName(DomainError):
    rule = "invalid-name"
    status = 400


class UnknownPlan(DomainError):
    rule = "unknown-plan"
    status = 400


class PlanNotAvailable(DomainError):
    rule = "plan-not-available"


class UnknownVersion(DomainError):
    rule = "unknown-version"
    status = 400


class UnknownApp(DomainError):
    rule = "unknown-app"
    status = 404


class UnknownAddon(DomainError):
    rule = "unknown-addon"
    status = 404


class UnknownOperation(DomainError):
    rule = "unknown-operation"
    status = 404


class AddonBusy(DomainError):
    """One running operation per addon."""

    rule = "one-operation-per-addon"
    status = 409


class AddonNeedsAttention(AddonBusy):
    """The operation holding the addon could not be undone: only its retry and removal are accepted."""

    rule = "addon-needs-attention"


class AddonRemoved(DomainError):
    rule = "addon-removed"
    status = 409


class NoHostWithRoom(DomainError):
    rule = "no-host-with-room"
    status = 507


class StepOutOfOrder(DomainError):
    """An operation's steps run in their declared order, one at a time."""

    rule = "steps-in-order"


class AddonNotRunning(DomainError):
    rule = "addon-must-be-running"
    status = 409


class SamePlan(DomainError):
    rule = "plan-change-to-another-plan"
    status = 409


class DatasetTooLarge(DomainError):
    """A downgrade must leave room for the data already there."""

    rule = "dataset-fits-the-plan"


class InvalidRestartMethod(DomainError):
    rule = "restart-method"
    status = 400


class InvalidSchedule(DomainError):
    rule = "backup-schedule"
    status = 400


class NoBackupsOnSandbox(DomainError):
    rule = "no-backups-on-sandbox"


class BackupNotDone(DomainError):
    rule = "backup-not-done"
    status = 409


class UnknownBackup(DomainError):
    rule = "unknown-backup"
    status = 404


class BackupTooNew(DomainError):
    """An older engine cannot read the data files of a newer one (DESIGN §10)."""

    rule = "restore-into-same-or-newer-version"
    status = 409


class UnknownSetting(DomainError):
    rule = "known-setting"
    status = 400


class SettingUnchanged(DomainError):
    rule = "setting-changes-something"
    status = 409


class TlsNotAvailable(DomainError):
    """Force TLS only on TLS-capable engine builds (DESIGN §3)."""

    rule = "force-tls-on-tls-capable-builds"
    status = 409


class ReservedLabel(InvalidRestartMethod):
    """An app's containers are found by a label of its own: the engine's namespace marks its databases."""

    rule = "app-label-outside-engine-namespace"


class LabelMatchesDatabase(InvalidRestartMethod):
    """A docker restart recreates only the app's own containers, never a database node the engine runs."""

    rule = "restart-only-the-apps-own-containers"
    status = 409


class HookAtEngineApi(InvalidRestartMethod):
    """A hook receives the app's environment, passwords included: never the engine's own API."""

    rule = "hook-not-the-engine-api"


class OperationNotStuck(DomainError):
    """Only an operation whose compensation could not finish is retried by hand."""

    rule = "retry-needs-attention"
    status = 409


class VersionRetired(DomainError):
    rule = "version-retired"
    status = 422


class UpgradeNotAllowed(DomainError):
    """An engine upgrade off the reference's path (DESIGN §10: never a downgrade); `rule` names which rule."""

    rule = "upgrade-not-allowed"
    status = 409

    def __init__(self, message: str, rule: str | None = None):
        super().__init__(message)
        if rule:
            self.rule = rule


class RotationNeedsRestartMethod(DomainError):
    """A rotation refuses the old password once the new one is published: an app that is not restarted
    onto the new one would be cut off."""

    rule = "rotation-needs-restart-method"
    status = 409


class RotationNeedsEveryNode(DomainError):
    """A node or Sentinel down would keep the old password in its files and stall the rotation's undo."""

    rule = "rotation-needs-every-node"
    status = 409
