"""The control plane's export and restore (engine/control_plane_export.py, engine/bootstrap.py) on a real
data directory: an SQLite event store and the file stores, no Docker. Everything comes back byte for byte
(the events with their positions); a restore refuses a data directory or a store that holds anything, and
a failed one leaves the data directory as it found it."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from adapters.checkpoints import FileCheckpoints
from adapters.secrets_store import FileSecretStore
from adapters.storage import control_plane_archive
from adapters.storage.backup_keys import BackupKeys
from adapters.storage.file_items import FileItems
from adapters.tls import CertificateAuthority
from domain.access_token import AccessTokens
from engine.bootstrap import build_control_plane_state, export_control_plane, restore_control_plane
from engine.control_plane_export import LedgerRecords, _moved_positions
from engine.recovery_ports import ArchiveRefused, NotFresh
from engine.settings import Settings
from engine.store import Ledger

PASSPHRASE = "a passphrase of some length"
SHA = "b" * 64


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(control_plane_archive, "DEFAULT_LOG2_N", 10)


def settings_at(home, **env) -> Settings:
    return Settings.from_env({"REDIS_ADDONS_HOME": str(home), **env}, hosts=())


def an_installation(home) -> Settings:
    """What an engine leaves in its data directory: events, passwords (one being rotated), a webhook secret,
    the CA, the backup keyring, the tokens, the hosts file, checkpoints."""
    settings = settings_at(home)
    home.mkdir()
    ledger = Ledger(env=settings.store_env)
    tokens = AccessTokens()
    for n in range(3):
        tokens.issue(f"tok-{n}", f"ci-{n}", ["my-app"], [], f"{n}" * 64, "2026-12-02T10:00:00+00:00")
    ledger.save(tokens)
    ledger.close()
    passwords = FileSecretStore(settings.secrets_dir)
    passwords.password_for("my-app-1"), passwords.password_for("my-app-2"), passwords.pending_for("my-app-2")
    FileSecretStore(home / "webhook-secrets").password_for("webhook-0a1b")
    CertificateAuthority.load_or_create(settings.tls_dir)
    BackupKeys(settings.backup_keys_file).current()
    for path in (settings.token_file, settings.metrics_token_file):
        path.write_text(base64.b64encode(os.urandom(24)).decode() + "\n")
        path.chmod(0o600)
    tls = home / "docker-tls" / "host-t"
    tls.mkdir(parents=True)
    for name in ("ca.pem", "client-cert.pem", "client-key.pem"):
        (tls / name).write_bytes(os.urandom(64))
        (tls / name).chmod(0o600)
    (home / "hosts.json").write_text(json.dumps({"hosts": [
        {"name": "host-u", "docker_url": "unix:///run/docker.sock"},
        {"name": "host-t", "docker_url": "tcp://127.0.9.1:2376", "tls": {"ca": "docker-tls/host-t/ca.pem",
         "cert": "docker-tls/host-t/client-cert.pem", "key": "docker-tls/host-t/client-key.pem"}},
        {"name": "host-o", "docker_url": "tcp://127.0.9.2:2376", "tls": {"ca": str(home.parent / "operators.pem"),
         "cert": "../elsewhere/cert.pem", "key": "docker-tls/host-t/client-key.pem"}}]}))
    (home.parent / "operators.pem").write_bytes(b"kept by the operator")
    checkpoints = FileCheckpoints(settings.checkpoints_dir)
    checkpoints.save("inventory", {"shape": 1, "position": 4, "apps": {}})
    checkpoints.save("notifier", {"shape": 1, "book_position": 4, "hooks": [{"id": "h", "position": 2}]})
    return settings


def files_of(home) -> dict[str, tuple[bytes, int]]:
    """Each file kept (relative path -> content, mode), but what a restore makes anew (the event store, the lock)."""
    made_anew = {"events.sqlite", "events.sqlite-wal", "events.sqlite-shm", "engine.lock", "backup-keys.json.lock",
                 "tls/.ca.lock"}
    return {str(p.relative_to(home)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(home.rglob("*")) if p.is_file() and str(p.relative_to(home)) not in made_anew}


def events_of(settings) -> list:
    records = LedgerRecords(settings.store_env)
    try:
        return records.read(0, records.last_position(), 1000)
    finally:
        records.close()


def test_a_restored_data_directory_holds_everything_byte_for_byte(tmp_path):
    old = an_installation(tmp_path / "old")
    counts = export_control_plane(old, tmp_path / "cp.archive", PASSPHRASE)
    assert counts["events"] == 4 and counts["addon-passwords"] == 3 and counts["checkpoints"] == 2

    new = settings_at(tmp_path / "new")
    restored = restore_control_plane(new, tmp_path / "cp.archive", PASSPHRASE)

    assert restored["events"] == 4 and restored["last_position"] == 4 and restored["certificate-authority"] == 2
    assert restored["docker-host-tls"] == 3  # the files beside the hosts file; not one outside the data directory
    before, after = files_of(tmp_path / "old"), files_of(tmp_path / "new")
    keyring = "backup-keys.json"  # written again as JSON: the same keys, the same current one
    assert json.loads(after.pop(keyring)[0]) == json.loads(before.pop(keyring)[0])
    assert after == before
    assert events_of(new) == events_of(old)
    ledger = Ledger(env=new.store_env)
    assert sorted(ledger.repository.get(AccessTokens.ID).tokens) == ["tok-0", "tok-1", "tok-2"]
    ledger.close()
    assert CertificateAuthority.load_or_create(new.tls_dir).certificate_pem == \
        CertificateAuthority.load_or_create(old.tls_dir).certificate_pem


def test_nothing_secret_is_in_the_archive_unsealed_nor_in_the_counts(tmp_path):
    old = an_installation(tmp_path / "old")
    counts = export_control_plane(old, tmp_path / "cp.archive", PASSPHRASE)
    archive = (tmp_path / "cp.archive").read_bytes()
    password = FileSecretStore(old.secrets_dir).peek("my-app-1")
    for secret in (password, old.token_file.read_text().strip()):
        assert secret.encode() not in archive and secret not in json.dumps(counts)
    assert b"my-app" not in archive and b"BEGIN" not in archive  # nothing readable: names and the CA are sealed too


def test_the_keyring_file_is_restored_but_not_the_keys_of_the_environment_variable(tmp_path):
    """REDIS_ADDONS_BACKUP_KEY's keys are the operator's, kept where the variable's value is (adapters/storage/
    backup_keys.py): the archive holds the keyring file's keys alone, and the restored keyring opens what they sealed."""
    env_key = os.urandom(32)
    an_installation(tmp_path / "old")
    old = settings_at(tmp_path / "old", REDIS_ADDONS_BACKUP_KEY=base64.b64encode(env_key).decode())
    file_keys = BackupKeys(old.backup_keys_file).ids()
    export_control_plane(old, tmp_path / "cp.archive", PASSPHRASE)
    new = settings_at(tmp_path / "new")
    restore_control_plane(new, tmp_path / "cp.archive", PASSPHRASE)
    keys = BackupKeys(new.backup_keys_file)
    assert keys.ids() == file_keys and all(keys.get(bytes.fromhex(kid)) for kid, _ in file_keys)
    assert env_key not in (tmp_path / "new" / "backup-keys.json").read_bytes()


@pytest.mark.parametrize("existing", [False, True])
def test_a_restore_that_fails_leaves_the_data_directory_as_it_found_it(tmp_path, monkeypatch, existing):
    export_control_plane(an_installation(tmp_path / "old"), tmp_path / "cp.archive", PASSPHRASE)
    home = tmp_path / "new"
    if existing:
        home.mkdir()

    def full_disk(self, name, value):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileItems, "put_item", full_disk)  # the CA's files: after the passwords were put
    with pytest.raises(OSError, match="No space"):
        restore_control_plane(settings_at(home), tmp_path / "cp.archive", PASSPHRASE)
    assert (list(home.iterdir()) == []) if existing else not home.exists()


def test_a_wrong_passphrase_or_an_altered_archive_leaves_nothing(tmp_path):
    export_control_plane(an_installation(tmp_path / "old"), tmp_path / "cp.archive", PASSPHRASE)
    with pytest.raises(ArchiveRefused, match="wrong passphrase"):
        restore_control_plane(settings_at(tmp_path / "new"), tmp_path / "cp.archive", PASSPHRASE + "!")
    data = bytearray((tmp_path / "cp.archive").read_bytes())
    data[-40] ^= 0xFF
    (tmp_path / "altered").write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="altered"):
        restore_control_plane(settings_at(tmp_path / "new"), tmp_path / "altered", PASSPHRASE)
    assert not (tmp_path / "new").exists()


def test_a_data_directory_holding_anything_is_refused_and_left_alone(tmp_path):
    export_control_plane(an_installation(tmp_path / "old"), tmp_path / "cp.archive", PASSPHRASE)
    home = tmp_path / "new"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(NotFresh, match="is not empty \\(notes.txt\\)"):
        restore_control_plane(settings_at(home), tmp_path / "cp.archive", PASSPHRASE)
    assert [p.name for p in home.iterdir()] == ["notes.txt"]
    with pytest.raises(NotFresh, match="not empty"):  # an installation restored over itself
        restore_control_plane(settings_at(tmp_path / "old"), tmp_path / "cp.archive", PASSPHRASE)


def test_stores_that_hold_anything_are_refused_and_a_failed_insert_takes_the_items_back(tmp_path):
    export_control_plane(an_installation(tmp_path / "old"), tmp_path / "cp.archive", PASSPHRASE)
    state = build_control_plane_state(settings_at(tmp_path / "old"))
    with pytest.raises(NotFresh, match="the event store already holds events \\(up to position 4\\)"):
        state.restore(tmp_path / "cp.archive", PASSPHRASE)
    state.events.close()

    (tmp_path / "new").mkdir()
    fresh = build_control_plane_state(settings_at(tmp_path / "new"))

    def refused(records):
        raise RuntimeError("the database went away")

    fresh.events.insert = refused
    with pytest.raises(RuntimeError):
        fresh.restore(tmp_path / "cp.archive", PASSPHRASE)
    assert all(store.list_items() == [] for store in fresh.stores.values())
    fresh.events.close()


def test_an_archive_holding_a_part_this_release_does_not_know_is_refused(tmp_path):
    archive = control_plane_archive.PassphraseArchive()
    archive.write(tmp_path / "a", [{"manifest": {"kind": "redis-addons control plane", "format": 1}},
                                   {"item": ["vault", "x", ""]}, {"end": {"events": 0}}], PASSPHRASE)
    with pytest.raises(ArchiveRefused, match="parts this release does not know \\(vault\\)"):
        restore_control_plane(settings_at(tmp_path / "new"), tmp_path / "a", PASSPHRASE)
    assert not (tmp_path / "new").exists()


def test_checkpoint_positions_follow_their_events_when_the_store_numbers_them_anew():
    old, new = [3, 4, 9, 12], [1, 2, 3, 4]  # PostgreSQL's sequence had skipped 5-8 and 10-11 (rolled-back saves)
    state = {"shape": 1, "position": 12, "book_position": 10, "hooks": [{"position": 9, "delivered": 7}],
             "other": {"at_position": 2}}
    moved = json.loads(_moved_positions(json.dumps(state).encode(), old, new))
    assert moved == {"shape": 1, "position": 4, "book_position": 3, "hooks": [{"position": 3, "delivered": 7}],
                     "other": {"at_position": 0}}
