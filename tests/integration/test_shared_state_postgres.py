"""The shared state of several engine processes on one PostgreSQL (adapters/postgres), on a real server:
each "process" here is a store of its own on a connection of its own, as two engines would have."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from adapters.data_lock import FileDataLock
from adapters.postgres.authority import shared_authority
from adapters.postgres.checkpoints import PostgresCheckpoints
from adapters.postgres.connection import Database, connection_options
from adapters.postgres.keyring import PostgresBackupKeys
from adapters.postgres.process_lock import PostgresProcessLock, ProcessIdentityInUse
from adapters.postgres.sealing import SecretsKeyError
from adapters.postgres.shared_state import postgres_item_stores
from adapters.postgres.secrets import PostgresSecretStore
from adapters.postgres.tokens import share_tokens
from adapters.postgres.vault import open_vault
from engine.settings import Settings, store_env


@pytest.fixture
def database_env(postgres) -> dict:
    return postgres.new_database("shared")


def database(env: dict) -> Database:
    return Database(connection_options(store_env(env, Path("/nonexistent"))))


@pytest.fixture
def key_file(tmp_path) -> Path:
    return tmp_path / "shared" / "secrets.key"


@pytest.fixture
def two(database_env, key_file):
    """Two processes' vaults on one database and one key file; their connections closed at the end."""
    first, second = database(database_env), database(database_env)
    yield open_vault(first, key_file), open_vault(second, key_file)
    first.close()
    second.close()


def test_the_first_process_makes_the_key_file_owner_only_and_the_next_ones_use_it(database_env, key_file):
    first = database(database_env)
    try:
        vault = open_vault(first, key_file)
        assert key_file.stat().st_mode & 0o777 == 0o600
        again = open_vault(first, key_file)
        assert again.key.id == vault.key.id
    finally:
        first.close()


def test_a_password_made_by_one_process_is_the_one_another_reads(two):
    one, other = PostgresSecretStore(two[0]), PostgresSecretStore(two[1])
    made = one.password_for("app-1234")
    assert len(made) == 64
    assert other.peek("app-1234") == made == other.password_for("app-1234")
    one.forget("app-1234")
    assert other.peek("app-1234") is None


def test_processes_racing_for_a_new_password_all_get_the_same_one(database_env, key_file):
    databases = [database(database_env) for _ in range(6)]
    try:
        stores = [PostgresSecretStore(open_vault(d, key_file)) for d in databases]
        results, start = [None] * len(stores), threading.Barrier(len(stores))

        def ask(n):
            start.wait()
            results[n] = stores[n].password_for("race-1")

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results)) == 1 and results[0] is not None
    finally:
        for d in databases:
            d.close()


def test_the_secrets_in_postgresql_are_not_plaintext(postgres, database_env, two):
    secrets = PostgresSecretStore(two[0])
    password = secrets.password_for("app-5678")
    webhooks = PostgresSecretStore(two[0], "webhook")
    signing = webhooks.password_for("hook-1")
    rows = postgres.psql("SELECT name, encode(sealed, 'hex') FROM redis_addons_secrets ORDER BY name",
                         database_env["REDIS_ADDONS_POSTGRES_DBNAME"])
    assert "password/app-5678" in rows and "webhook/hook-1" in rows
    dump = postgres.psql("SELECT encode(sealed, 'escape') FROM redis_addons_secrets",
                         database_env["REDIS_ADDONS_POSTGRES_DBNAME"])
    for secret in (password, signing):
        assert secret not in rows and secret not in dump and secret.encode().hex() not in rows


def test_a_value_moved_to_another_row_does_not_open(postgres, database_env, two):
    secrets = PostgresSecretStore(two[0])
    secrets.password_for("app-1111")
    secrets.password_for("app-2222")
    postgres.psql("UPDATE redis_addons_secrets SET sealed = (SELECT sealed FROM redis_addons_secrets WHERE "
                  "name = 'password/app-1111') WHERE name = 'password/app-2222'",
                  database_env["REDIS_ADDONS_POSTGRES_DBNAME"])
    with pytest.raises(SecretsKeyError, match="'password/app-2222'.*altered or moved"):
        secrets.peek("app-2222")


def test_a_wrong_installation_key_is_refused_at_open_naming_the_key_file_and_no_secret(database_env, two, tmp_path):
    password = PostgresSecretStore(two[0]).password_for("app-3333")
    wrong = tmp_path / "other" / "secrets.key"
    from adapters.postgres.sealing import write_key_file
    write_key_file(wrong)
    other = database(database_env)
    try:
        with pytest.raises(SecretsKeyError) as refused:
            open_vault(other, wrong)
    finally:
        other.close()
    message = str(refused.value)
    assert str(wrong) in message and "not the installation key" in message and password not in message


def test_a_missing_key_file_on_a_database_with_secrets_is_refused_and_none_is_made(database_env, two, tmp_path):
    PostgresSecretStore(two[0]).password_for("app-4444")
    missing = tmp_path / "elsewhere" / "secrets.key"
    other = database(database_env)
    try:
        with pytest.raises(SecretsKeyError, match=f"{missing} does not exist: copy the key file"):
            open_vault(other, missing)
    finally:
        other.close()
    assert not missing.exists()


def test_a_rotation_published_by_one_process_is_the_password_the_other_reads(two):
    one, other = PostgresSecretStore(two[0]), PostgresSecretStore(two[1])
    old = one.password_for("app-6666")
    new = one.pending_for("app-6666")
    assert other.peek_pending("app-6666") == new and other.peek("app-6666") == old
    other.publish_pending("app-6666")
    assert one.peek("app-6666") == new
    one.forget_pending("app-6666")
    assert other.peek_pending("app-6666") is None and other.peek("app-6666") == new


def test_the_ca_is_made_once_and_is_the_same_for_every_process(two, tmp_path):
    first = shared_authority(two[0], tmp_path / "a" / "tls")
    second = shared_authority(two[1], tmp_path / "b" / "tls")
    assert first.certificate_pem == second.certificate_pem
    assert (tmp_path / "b" / "tls" / "ca.pem").read_text() == first.certificate_pem
    assert not (tmp_path / "b" / "tls" / "ca.key").exists()  # the key stays sealed in PostgreSQL
    assert first.private_key_pem() == second.private_key_pem()


def test_the_backup_keyring_is_shared_and_a_rotation_in_one_is_seen_by_the_other(two):
    one, other = PostgresBackupKeys(two[0]), PostgresBackupKeys(two[1])
    assert not other.exist()
    first_id, first_key = one.current()
    assert other.current() == (first_id, first_key)
    new = other.rotate()
    assert one.current()[0].hex() == new and one.get(first_id) == first_key
    one.drop(first_id.hex())
    assert [kid for kid, _ in other.ids()] == [new]


def test_the_tokens_are_the_installations_and_each_process_writes_them_to_its_files(two, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (b / "api-token").parent.mkdir(parents=True)
    (b / "api-token").write_text("an-older-local-token\n")
    share_tokens(two[0], {"api-token": a / "api-token", "metrics-token": a / "metrics-token"})
    share_tokens(two[1], {"api-token": b / "api-token", "metrics-token": b / "metrics-token"})
    for name in ("api-token", "metrics-token"):
        assert (a / name).read_text() == (b / name).read_text()
        assert (b / name).stat().st_mode & 0o777 == 0o600
    assert (a / "api-token").read_text() != (a / "metrics-token").read_text()


def test_a_token_file_there_before_the_database_had_one_becomes_the_installations(two, tmp_path):
    (tmp_path / "api-token").write_text("kept-from-the-single-engine\n")
    share_tokens(two[0], {"api-token": tmp_path / "api-token"})
    share_tokens(two[1], {"api-token": tmp_path / "other-api-token"})
    assert (tmp_path / "other-api-token").read_text() == "kept-from-the-single-engine\n"


def test_checkpoints_saved_by_one_process_are_loaded_by_another(database_env):
    one, other = database(database_env), database(database_env)
    try:
        PostgresCheckpoints(one).save("notifier", {"position": 12, "apps": ["a"]})
        assert PostgresCheckpoints(other).load("notifier") == {"position": 12, "apps": ["a"]}
        assert PostgresCheckpoints(other).load("none") is None
    finally:
        one.close()
        other.close()


def test_every_store_lists_its_items_and_takes_them_back_into_another_database(postgres, two, tmp_path):
    secrets = PostgresSecretStore(two[0])
    secrets.password_for("app-7777")
    secrets.pending_for("app-7777")
    PostgresSecretStore(two[0], "webhook").password_for("hook-2")
    shared_authority(two[0], tmp_path / "tls")
    PostgresBackupKeys(two[0]).current()
    share_tokens(two[0], {"api-token": tmp_path / "api-token"})
    PostgresCheckpoints(two[0].database).save("inventory", {"position": 3})
    settings = Settings(home=tmp_path, hosts=(), store_env=store_env(_env_of(two[0]), tmp_path),
                        secrets_key_path=tmp_path / "shared" / "secrets.key")
    exported = {section: store.list_items() for section, store in postgres_item_stores(settings).items()}
    assert dict(exported["addon-passwords"]).keys() == {"app-7777", ".rotating/app-7777"}
    assert [name for name, _ in exported["certificate-authority"]] == ["ca.key", "ca.pem"]
    assert [name for name, _ in exported["backup-keyring"]] == ["backup-keys.json"]
    assert [name for name, _ in exported["tokens"]] == ["api-token"]
    assert json.loads(dict(exported["checkpoints"])["inventory"]) == {"position": 3}

    fresh = postgres.new_database("restored")
    restored = postgres_item_stores(Settings(home=tmp_path / "r", hosts=(), store_env=store_env(fresh, tmp_path),
                                             secrets_key_path=tmp_path / "r" / "secrets.key"))
    assert all(store.list_items() == [] for store in restored.values())
    for section, items in exported.items():
        for name, value in items:
            restored[section].put_item(name, value)
    assert {section: store.list_items() for section, store in restored.items()} == exported
    assert restored["addon-passwords"].peek("app-7777") == secrets.peek("app-7777")
    restored["addon-passwords"].remove_item(".rotating/app-7777")
    assert restored["addon-passwords"].peek_pending("app-7777") is None
    restored["checkpoints"].database.close()


def _env_of(vault) -> dict:
    options = vault.database.options
    return {"REDIS_ADDONS_POSTGRES_DBNAME": options["dbname"], "REDIS_ADDONS_POSTGRES_HOST": options["host"],
            "REDIS_ADDONS_POSTGRES_PORT": options["port"], "REDIS_ADDONS_POSTGRES_USER": options["user"],
            "REDIS_ADDONS_POSTGRES_PASSWORD": options["password"]}


def test_one_engine_per_process_identity_two_identities_side_by_side(database_env, tmp_path):
    options = connection_options(store_env(database_env, tmp_path))
    first = PostgresProcessLock(options, "machine-1:/srv/a", FileDataLock(tmp_path / "a"))
    same = PostgresProcessLock(options, "machine-1:/srv/a", FileDataLock(tmp_path / "b"))
    other = PostgresProcessLock(options, "machine-2:/srv/a", FileDataLock(tmp_path / "c"))
    try:
        first.acquire()
        first.announce("http://127.0.0.1:8470")
        with pytest.raises(ProcessIdentityInUse, match=r"process identity 'machine-1:/srv/a' is in use by another "
                                                       r"redis-addons engine .*API http://127.0.0.1:8470.*REDIS_ADDONS_PROCESS_ID"):
            same.acquire()
        free = FileDataLock(tmp_path / "b")
        free.acquire()  # the refused one let its data directory go
        free.release()
        other.acquire()
        first.release()
        same.acquire()  # free once released
    finally:
        for lock in (first, same, other):
            lock.release()


def test_a_database_that_does_not_answer_stops_the_start_naming_it_and_not_its_password(postgres, tmp_path):
    from adapters.postgres.shared_state import shared_state
    from engine.ports import EffectError
    from tests.postgres_server import free_port

    env = {**postgres.env("nowhere"), "REDIS_ADDONS_POSTGRES_PORT": str(free_port())}
    settings = Settings(home=tmp_path, hosts=(), store_env=store_env(env, tmp_path))
    with pytest.raises(EffectError, match=f"PostgreSQL 127.0.0.1:{env['REDIS_ADDONS_POSTGRES_PORT']}/nowhere does "
                                          "not answer: .*cannot start without the installation's shared state") as e:
        shared_state(settings)
    assert postgres.password not in str(e.value)
    assert not (tmp_path / "secrets.key").exists()


def test_the_backup_key_command_works_on_the_keyring_in_postgresql(database_env, two, key_file, tmp_path):
    import subprocess
    from tests.integration.test_data_lock import CLI

    first_id = PostgresBackupKeys(two[0]).current()[0].hex()
    env = {**os.environ, **database_env, "REDIS_ADDONS_HOME": str(tmp_path / "home"),
           "REDIS_ADDONS_SECRETS_KEY_FILE": str(key_file)}
    rotated = subprocess.run([CLI, "backup-key", "rotate"], env=env, capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    current = PostgresBackupKeys(two[1]).current()[0].hex()
    assert current != first_id and f"backup key {current} is current" in rotated.stdout
    shown = subprocess.run([CLI, "backup-key", "show"], env=env, capture_output=True, text=True, timeout=60)
    assert f"{current}  current" in shown.stdout and first_id in shown.stdout
    assert not (tmp_path / "home" / "backup-keys.json").exists()

    missing = subprocess.run([CLI, "backup-key", "show"], capture_output=True, text=True, timeout=60,
                             env=env | {"REDIS_ADDONS_SECRETS_KEY_FILE": str(tmp_path / "none.key")})
    assert missing.returncode != 0 and f"{tmp_path / 'none.key'} does not exist" in missing.stderr
    assert not (tmp_path / "none.key").exists()  # the command never makes the installation key


def test_a_command_beside_the_engines_gets_the_installations_ca(database_env, two, key_file, tmp_path):
    from adapters.postgres.shared_state import installation_authority

    made = shared_authority(two[0], tmp_path / "engine" / "tls")
    settings = Settings(home=tmp_path / "cli", hosts=(), store_env=store_env(database_env, tmp_path),
                        secrets_key_path=key_file)
    assert installation_authority(settings).private_key_pem() == made.private_key_pem()
    with pytest.raises(SecretsKeyError, match="does not exist"):
        installation_authority(Settings(home=tmp_path / "cli", hosts=(), store_env=store_env(database_env, tmp_path),
                                        secrets_key_path=tmp_path / "none.key"))


def test_an_identity_lock_on_a_database_that_does_not_answer_is_an_error_and_frees_the_data_directory(postgres,
                                                                                                     tmp_path):
    from engine.ports import EffectError
    from tests.postgres_server import free_port

    options = connection_options(store_env({**postgres.env("nowhere"), "REDIS_ADDONS_POSTGRES_PORT": str(free_port())},
                                           tmp_path))
    lock = PostgresProcessLock(options, "machine-1:/srv/a", FileDataLock(tmp_path / "a"))
    with pytest.raises(EffectError, match="cannot take the lock of process identity 'machine-1:/srv/a': PostgreSQL "
                                          "127.0.0.1:.* does not answer") as refused:
        lock.acquire()
    assert postgres.password not in str(refused.value)
    free = FileDataLock(tmp_path / "a")
    free.acquire()
    free.release()
    lock.release()
