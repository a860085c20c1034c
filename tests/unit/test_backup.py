"""The Backup aggregate: requested, done or failed, kept or expired."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.backup import Backup, archive_name
from domain.errors import BackupNotDone, NoBackupsOnSandbox

AT = datetime(2023, 12, 7, 0, 6, 8, tzinfo=timezone.utc)


def a_backup(**changes) -> Backup:
    fields = dict(addon="my-app-4553", app="my-app", tier="starter", kind="manual", requested_at=AT)
    fields.update(changes)
    backup = Backup.request(**fields)
    backup.collect_events()
    return backup


def events(backup) -> list[str]:
    return [type(e).__name__ for e in backup.collect_events()]


def test_the_archive_is_named_like_the_reference():
    assert archive_name(AT, "my-app-4553") == "20231207000608_my_app_4553.tar.gz"
    assert a_backup().name == "20231207000608_my_app_4553.tar.gz"


def test_a_sandbox_addon_has_no_backups():
    with pytest.raises(NoBackupsOnSandbox, match="sandbox"):
        Backup.request(addon="my-app-1", app="my-app", tier="sandbox", kind="manual", requested_at=AT)


def test_a_finished_backup_records_size_checksum_and_place():
    backup = a_backup()
    backup.mark_started()
    backup.mark_done(size=143_000, sha256="ab" * 32, location="backups/x.tar.gz")
    assert events(backup) == ["Started", "Finished"]
    assert (backup.status, backup.size, backup.location) == ("done", 143_000, "backups/x.tar.gz")
    backup.check_downloadable()


def test_a_failed_backup_says_why_and_cannot_be_downloaded():
    backup = a_backup()
    backup.mark_failed(reason="BGSAVE failed: disk full")
    assert backup.status == "failed" and backup.failure == "BGSAVE failed: disk full"
    with pytest.raises(BackupNotDone, match="failed"):
        backup.check_downloadable()


def test_retention_decisions_are_events_recorded_only_when_they_change():
    backup = a_backup()
    backup.mark_done(size=1, sha256="0" * 64, location="l")
    backup.collect_events()
    backup.decide_retention(("daily", "weekly"))
    backup.decide_retention(("daily", "weekly"))
    assert events(backup) == ["Kept"]
    backup.decide_retention(("weekly",))
    backup.decide_retention(())
    backup.decide_retention(())
    assert events(backup) == ["Kept", "Expired"]
    backup.mark_deleted()
    backup.decide_retention(("daily",))
    assert events(backup) == ["Deleted"]
    with pytest.raises(BackupNotDone, match="deleted"):
        backup.check_downloadable()
