"""A backup of kind pre-upgrade (issue 13: the safety backup an engine upgrade takes first): the Backup
aggregate's rules for it, and the retention policy keeping it as a manual one, counted apart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from domain.backup import Backup
from domain.errors import NoBackupsOnSandbox
from domain.retention import BackupFacts, decide

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=PARIS)
AT = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)


def facts(kind: str, hours_ago: float, status: str = "done") -> BackupFacts:
    return BackupFacts(id=f"{kind}-{hours_ago}", kind=kind, created_at=NOW - timedelta(hours=hours_ago), status=status)


# -- the aggregate -------------------------------------------------------------------------------------


def test_a_pre_upgrade_backup_is_for_its_upgrade_and_its_id_is_the_upgrades():
    operation = uuid4()
    backup = Backup.request(addon="my-app-1", app="my-app", tier="starter", kind="pre-upgrade", requested_at=AT,
                            redis_version="7.0.15", operation_id=operation)
    assert (backup.kind, backup.operation_id, backup.redis_version) == ("pre-upgrade", str(operation), "7.0.15")
    assert backup.id == Backup.pre_upgrade_id(operation) == Backup.pre_upgrade_id(str(operation))
    assert backup.id != Backup.pre_upgrade_id(uuid4())
    assert backup.name == "20261202093000_my_app_1.tar.gz"  # named as any backup


def test_a_pre_upgrade_backup_needs_its_upgrade_and_no_other_kind_takes_one():
    with pytest.raises(ValueError, match="pre-upgrade backup is for an upgrade operation"):
        Backup.request(addon="my-app-1", app="my-app", tier="starter", kind="pre-upgrade", requested_at=AT)
    with pytest.raises(ValueError, match="pre-upgrade backup is for an upgrade operation"):
        Backup.request(addon="my-app-1", app="my-app", tier="starter", kind="manual", requested_at=AT,
                       operation_id=uuid4())
    with pytest.raises(ValueError, match="scheduled, manual or pre-upgrade, not 'upgrade'"):
        Backup.request(addon="my-app-1", app="my-app", tier="starter", kind="upgrade", requested_at=AT)
    with pytest.raises(NoBackupsOnSandbox):
        Backup.request(addon="my-app-1", app="my-app", tier="sandbox", kind="pre-upgrade", requested_at=AT,
                       operation_id=uuid4())


def test_a_manual_backup_still_has_no_upgrade():
    backup = Backup.request(addon="my-app-1", app="my-app", tier="starter", kind="manual", requested_at=AT)
    assert backup.operation_id is None


# -- retention -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier, kept", [("starter", 10), ("business", 50)])
def test_pre_upgrade_backups_are_kept_as_manual_ones_the_plans_number_of_the_latest(tier, kept):
    backups = [facts("pre-upgrade", hours) for hours in range(60)]
    decisions = decide(backups, tier, NOW)
    assert [b.id for b in backups if decisions[b.id]] == [b.id for b in backups[:kept]]  # the newest
    assert all(decisions[b.id] == ("pre-upgrade",) for b in backups[:kept])
    assert all(decisions[b.id] == () for b in backups[kept:])  # the older ones expire


def test_a_pre_upgrade_backup_is_counted_apart_from_manual_ones_so_neither_pushes_the_other_out():
    upgrade = facts("pre-upgrade", 24 * 30)  # a month old: no daily, weekly or monthly reason
    manual = [facts("manual", hours) for hours in range(10)]  # the Starter plan's 10, all newer
    decisions = decide([upgrade, *manual], "starter", NOW)
    assert decisions[upgrade.id] == ("pre-upgrade",)
    assert all(decisions[b.id] == ("manual",) for b in manual)


def test_a_pre_upgrade_backup_not_finished_is_not_decided_and_a_failed_one_expires_as_any_failed_backup():
    running, failed_today, failed_long_ago = (facts("pre-upgrade", 1, "running"), facts("pre-upgrade", 2, "failed"),
                                              facts("pre-upgrade", 24 * 8, "failed"))
    decisions = decide([running, failed_today, failed_long_ago], "starter", NOW)
    assert running.id not in decisions and failed_today.id not in decisions  # listed with its reason for a week
    assert decisions[failed_long_ago.id] == ()


def test_on_a_sandbox_plan_nothing_keeps_a_pre_upgrade_backup():
    backup = facts("pre-upgrade", 1)
    assert decide([backup], "sandbox", NOW) == {backup.id: ()}
