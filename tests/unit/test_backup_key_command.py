"""`backup-key` (adapters/cli/backup_key.py) on a home in a temporary directory: it never makes a keyring
where there is none, refuses to run as another user than the home's owner, and keeps a key a backup still
being written uses."""

from __future__ import annotations

import argparse
import os
import sqlite3

import pytest

from adapters.cli.backup_key import backup_key
from adapters.cli.client import CliError
from adapters.storage.backup_files import FileBackupStore
from adapters.storage.backup_keys import BackupKeys


def run(home, action: str, key_id: str | None = None) -> int:
    return backup_key(argparse.Namespace(action=action, key_id=key_id), env={"REDIS_ADDONS_HOME": str(home)})


@pytest.mark.parametrize("action", ["rotate", "reencrypt"])
def test_no_keyring_is_made_by_rotate_or_reencrypt(tmp_path, action):
    (tmp_path / "backups").mkdir()
    with pytest.raises(CliError) as refused:
        run(tmp_path, action)
    message = str(refused.value)
    for named in (str(tmp_path / "backup-keys.json"), "REDIS_ADDONS_HOME", "REDIS_ADDONS_BACKUP_KEY"):
        assert named in message
    assert sorted(os.listdir(tmp_path)) == ["backups"]


def test_another_user_than_the_homes_owner_is_refused(tmp_path, monkeypatch, capsys):
    BackupKeys(tmp_path / "backup-keys.json").current()
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(tmp_path).st_uid + 1)
    before = (tmp_path / "backup-keys.json").read_bytes()
    for action in ("rotate", "reencrypt"):
        with pytest.raises(CliError, match=f"run backup-key as the engine's user \\(the owner of {tmp_path}"):
            run(tmp_path, action)
    assert (tmp_path / "backup-keys.json").read_bytes() == before
    assert run(tmp_path, "show") == 0  # looking writes nothing


async def test_a_key_a_backup_is_being_written_with_is_not_dropped(tmp_path, capsys):
    keys = BackupKeys(tmp_path / "backup-keys.json")
    store = FileBackupStore(tmp_path / "backups", keys)
    old = keys.current()[0].hex()
    (tmp_path / "backups" / "a" / "b1").mkdir(parents=True)
    sink = store._sink(tmp_path / "backups" / "a" / "b1" / "x.tar.gz.partial", "a/b1/x.tar.gz")
    try:
        keys.rotate()
        with pytest.raises(CliError, match=f"a backup is being written with backup key {old}; try again when it ends"):
            run(tmp_path, "drop", old)
    finally:
        sink.discard()
    assert run(tmp_path, "drop", old) == 0


async def test_reencrypt_seals_a_plain_archive_only_when_it_is_the_one_recorded(tmp_path, capsys):
    async def tar_gz():
        yield b"a .tar.gz from before encryption"
    answers = {name: await FileBackupStore(tmp_path / "backups").write_archive(name, tar_gz())
               for name in ("a/b1/x.tar.gz", "a/b2/x.tar.gz")}
    db = sqlite3.connect(tmp_path / "read-models.sqlite")
    db.execute("CREATE TABLE backups (location TEXT, size INTEGER, sha256 TEXT, status TEXT)")
    db.executemany("INSERT INTO backups VALUES (?, ?, ?, 'done')", [(k, a["size"], a["sha256"]) for k, a in answers.items()])
    db.commit()
    db.close()
    (tmp_path / "backups" / "a" / "b2" / "x.tar.gz").write_bytes(b"\x1f\x8b written over it")
    BackupKeys(tmp_path / "backup-keys.json").current()
    with pytest.raises(CliError, match="1 archive\\(s\\) left as they were:\n  a/b2/x.tar.gz: .* not the one recorded"):
        run(tmp_path, "reencrypt")
    store = FileBackupStore(tmp_path / "backups", BackupKeys(tmp_path / "backup-keys.json"))
    assert [store.sealed_with(k) for k in answers] == [BackupKeys(tmp_path / "backup-keys.json").ids()[0][0], "plain"]
