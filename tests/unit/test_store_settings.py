"""The event store's settings (engine/settings.py store_env): SQLite by default; PostgreSQL when
REDIS_ADDONS_POSTGRES_DBNAME is set, each missing or wrong variable named; the password from the environment
or a file, never in the settings' repr; the pool sized for several processes. The store on a real PostgreSQL:
tests/integration/test_postgres_store.py."""

from __future__ import annotations

import pytest

from engine.settings import Settings, SettingsError, store_env

PG = {"REDIS_ADDONS_POSTGRES_DBNAME": "addons", "REDIS_ADDONS_POSTGRES_HOST": "127.0.0.1",
      "REDIS_ADDONS_POSTGRES_PORT": "5433", "REDIS_ADDONS_POSTGRES_USER": "engine",
      "REDIS_ADDONS_POSTGRES_PASSWORD": "s3cret-pass"}


def test_sqlite_under_the_data_directory_when_no_postgres_is_set(tmp_path):
    assert store_env({}, tmp_path) == {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                       "SQLITE_DBNAME": str(tmp_path / "events.sqlite"), "SQLITE_LOCK_TIMEOUT": "10"}


def test_postgres_with_a_pool_for_several_processes(tmp_path):
    env = store_env(PG, tmp_path)
    assert {k: env[k] for k in ("PERSISTENCE_MODULE", "POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_PORT",
                                "POSTGRES_USER", "POSTGRES_PASSWORD")} == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "addons", "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5433", "POSTGRES_USER": "engine", "POSTGRES_PASSWORD": "s3cret-pass"}
    # eventsourcing's defaults are 5 + 10 connections and a 30 s wait (times its 10 tries): here a few, and 1 s.
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"], env["POSTGRES_CONNECT_TIMEOUT"]) == ("2", "2", "1")
    assert env["POSTGRES_PRE_PING"] == "y"
    assert store_env({k: v for k, v in PG.items() if k != "REDIS_ADDONS_POSTGRES_PORT"}, tmp_path)["POSTGRES_PORT"] \
        == "5432"


@pytest.mark.parametrize("missing", ["REDIS_ADDONS_POSTGRES_HOST", "REDIS_ADDONS_POSTGRES_USER"])
def test_a_missing_host_or_user_is_named(tmp_path, missing):
    with pytest.raises(SettingsError, match=f"REDIS_ADDONS_POSTGRES_DBNAME is set but {missing} is not"):
        store_env({k: v for k, v in PG.items() if k != missing}, tmp_path)
    with pytest.raises(SettingsError, match=missing):
        store_env({**PG, missing: "  "}, tmp_path)


@pytest.mark.parametrize("port", ["five", "-1", "0", "70000", "54 32"])
def test_a_port_that_is_not_a_port_is_named(tmp_path, port):
    with pytest.raises(SettingsError, match=f"REDIS_ADDONS_POSTGRES_PORT '{port}': give the PostgreSQL server's port"):
        store_env({**PG, "REDIS_ADDONS_POSTGRES_PORT": port}, tmp_path)


def test_no_password_at_all_is_named(tmp_path):
    with pytest.raises(SettingsError, match="neither REDIS_ADDONS_POSTGRES_PASSWORD nor REDIS_ADDONS_POSTGRES_PASSWORD_FILE"):
        store_env({k: v for k, v in PG.items() if k != "REDIS_ADDONS_POSTGRES_PASSWORD"}, tmp_path)


def test_postgres_variables_without_a_database_name_are_refused_rather_than_sqlite_used(tmp_path):
    with pytest.raises(SettingsError, match="REDIS_ADDONS_POSTGRES_HOST is set but REDIS_ADDONS_POSTGRES_DBNAME is not"):
        store_env({"REDIS_ADDONS_POSTGRES_HOST": "db.internal"}, tmp_path)


def test_the_password_from_a_file_its_first_line(tmp_path):
    secret = tmp_path / "pg-password"
    secret.write_text("from a file\nnot this line\n")
    given = {k: v for k, v in PG.items() if k != "REDIS_ADDONS_POSTGRES_PASSWORD"}
    env = store_env({**given, "REDIS_ADDONS_POSTGRES_PASSWORD_FILE": str(secret)}, tmp_path)
    assert env["POSTGRES_PASSWORD"] == "from a file"


def test_a_password_file_missing_empty_or_given_twice_is_named(tmp_path):
    given = {k: v for k, v in PG.items() if k != "REDIS_ADDONS_POSTGRES_PASSWORD"}
    with pytest.raises(SettingsError, match="REDIS_ADDONS_POSTGRES_PASSWORD_FILE .*/absent: cannot be read"):
        store_env({**given, "REDIS_ADDONS_POSTGRES_PASSWORD_FILE": str(tmp_path / "absent")}, tmp_path)
    (tmp_path / "empty").write_text("")
    with pytest.raises(SettingsError, match="REDIS_ADDONS_POSTGRES_PASSWORD_FILE .*/empty is empty"):
        store_env({**given, "REDIS_ADDONS_POSTGRES_PASSWORD_FILE": str(tmp_path / "empty")}, tmp_path)
    (tmp_path / "pw").write_text("x\n")
    with pytest.raises(SettingsError, match="both REDIS_ADDONS_POSTGRES_PASSWORD and REDIS_ADDONS_POSTGRES_PASSWORD_FILE"):
        store_env({**PG, "REDIS_ADDONS_POSTGRES_PASSWORD_FILE": str(tmp_path / "pw")}, tmp_path)


def test_the_password_is_in_no_repr_of_the_settings(tmp_path):
    hosts = tmp_path / "hosts.json"
    hosts.write_text('{"hosts": []}')
    settings = Settings.from_env({**PG, "REDIS_ADDONS_HOME": str(tmp_path), "REDIS_ADDONS_HOSTS": str(hosts)})
    assert settings.on_postgres and settings.store_env["POSTGRES_PASSWORD"] == "s3cret-pass"
    assert "s3cret-pass" not in repr(settings) and "s3cret-pass" not in str(settings)
