"""The control plane's own disaster recovery on the real Docker hosts (issue 16, part 5): an addon made, its
control plane exported with the CLI while the engine runs, that engine stopped, the archive restored with the
CLI into a fresh data directory (on SQLite, and into PostgreSQL), and an engine started there: the addon is
listed, its URL (the same password) answers with the key written before, and its plan changes. Then what a
restore refuses: a wrong passphrase, an archive cut or altered, a data directory holding anything."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from adapters.cli.main import main
from adapters.storage.control_plane_archive import PassphraseArchive
from engine import build
from engine.logs import configure_logging
from engine.settings import store_env
from tests.integration.conftest import remove_everything_of, running_addon, settings_for
from tests.conftest import HOSTS_FILE

PASSPHRASE = "the operator's long passphrase"


@pytest.fixture(autouse=True)
def logs_to_the_session_stream():
    """The engine's log on the stream pytest holds for the session (set before capsys replaces it): a stream
    capsys gave an earlier test is closed when the next engine logs."""
    configure_logging()


def cli(monkeypatch, home, *argv, passphrase=PASSPHRASE, env: dict | None = None) -> int:
    """The console script in this process, against the data directory `home` (the environment it reads)."""
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(home))
    monkeypatch.setenv("REDIS_ADDONS_HOSTS", str(HOSTS_FILE))
    monkeypatch.setenv("REDIS_ADDONS_ARCHIVE_PASSPHRASE", passphrase)
    for name in ("REDIS_ADDONS_POSTGRES_DBNAME", "REDIS_ADDONS_POSTGRES_HOST", "REDIS_ADDONS_POSTGRES_PORT",
                 "REDIS_ADDONS_POSTGRES_USER", "REDIS_ADDONS_POSTGRES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return main(list(argv))


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_an_addon_made_before_the_export_answers_and_changes_plan_after_the_restore(
        tmp_path, app_name, monkeypatch, capsys, request, store):
    old_home, new_home, archive = tmp_path / "old", tmp_path / "new", tmp_path / "control-plane.archive"
    new_env = request.getfixturevalue("postgres").new_database() if store == "postgresql" else {}
    try:
        async with build(settings_for(old_home)) as old:
            addon = await running_addon(old, app_name)
            url = (await old.environment(app_name))["REDIS_URL"]
            client = redis.from_url(url)
            await client.set("written-before", "the export")
            await client.aclose()
            # While the engine runs, as an operator's daily job would.
            assert await asyncio.to_thread(cli, monkeypatch, old_home, "export", "--to", str(archive)) == 0
        said = capsys.readouterr().out
        assert "Control plane exported" in said and "addon-passwords 1" in said
        assert url.split("@")[0].split(":")[-1] not in said  # the password is never printed

        if store == "postgresql":
            failed_attempts_leave_nothing(monkeypatch, capsys, tmp_path, new_env)
        assert cli(monkeypatch, new_home, "restore-control-plane", "--from", str(archive), env=new_env) == 0
        assert "Control plane restored" in capsys.readouterr().out

        settings = settings_for(new_home, store_env=store_env(new_env, new_home))
        async with build(settings) as new:
            [listed] = await new.addons(app_name)
            assert listed["name"] == addon and listed["status"] == "running"
            assert (await new.environment(app_name))["REDIS_URL"] == url
            client = redis.from_url(url)
            assert await client.get("written-before") == b"the export"
            await client.aclose()

            requested = await new.change_plan(app_name, addon, "redis-starter-512")
            operation = await new.wait_for_operation(requested["operation_id"], timeout=120)
            assert operation["status"] == "succeeded", operation
            assert (await new.addon(app_name, addon))["plan"] == "redis-starter-512"
            moved_url = (await new.environment(app_name))["REDIS_URL"]
            moved = redis.from_url(moved_url)
            assert await moved.get("written-before") == b"the export"
            await moved.aclose()
        if store == "postgresql":
            await back_from_postgresql(monkeypatch, capsys, tmp_path, new_env, app_name, addon, moved_url)
    finally:
        await remove_everything_of(app_name)


async def test_a_restore_refuses_a_wrong_passphrase_a_cut_or_altered_archive_and_a_used_data_directory(
        tmp_path, monkeypatch, capsys):
    old_home, archive = tmp_path / "old", tmp_path / "control-plane.archive"
    async with build(settings_for(old_home)):
        pass  # an installation: its event store, CA and tokens
    assert cli(monkeypatch, old_home, "export", "--to", str(archive)) == 0
    capsys.readouterr()
    data = archive.read_bytes()
    (tmp_path / "cut.archive").write_bytes(data[:len(data) // 2])
    altered = bytearray(data)
    altered[len(data) // 2] ^= 0x20
    (tmp_path / "altered.archive").write_bytes(bytes(altered))
    new_home = tmp_path / "new"

    for source, passphrase, words in ((archive, "not the passphrase", "wrong passphrase"),
                                      (tmp_path / "cut.archive", PASSPHRASE, "truncated"),
                                      (tmp_path / "altered.archive", PASSPHRASE, "altered")):
        assert cli(monkeypatch, new_home, "restore-control-plane", "--from", str(source), passphrase=passphrase) == 1
        err = capsys.readouterr().err
        assert words in err and "not the passphrase" not in err, err
        assert not new_home.exists()  # nothing left behind

    used = tmp_path / "used"
    used.mkdir()
    (used / "events.sqlite").write_bytes(b"someone's")
    assert cli(monkeypatch, used, "restore-control-plane", "--from", str(archive)) == 1
    assert "is not empty (events.sqlite)" in capsys.readouterr().err
    assert [p.name for p in used.iterdir()] == ["events.sqlite"] and (used / "events.sqlite").read_bytes() == b"someone's"

    assert cli(monkeypatch, old_home, "export", "--to", str(tmp_path / "short"), passphrase="short") == 1
    assert "at least 12 characters" in capsys.readouterr().err and not (tmp_path / "short").exists()

    nobody = {"REDIS_ADDONS_POSTGRES_DBNAME": "addons", "REDIS_ADDONS_POSTGRES_HOST": "127.0.0.1",
              "REDIS_ADDONS_POSTGRES_PORT": "1", "REDIS_ADDONS_POSTGRES_USER": "addons",
              "REDIS_ADDONS_POSTGRES_PASSWORD": "a-database-password"}  # no PostgreSQL listens on port 1
    assert cli(monkeypatch, new_home, "restore-control-plane", "--from", str(archive), env=nobody) == 1
    err = capsys.readouterr().err
    assert "cannot be opened" in err and "Connection refused" in err and "a-database-password" not in err, err
    assert not new_home.exists()


async def back_from_postgresql(monkeypatch, capsys, tmp_path, env, app_name, addon, url) -> None:
    """A PostgreSQL event store (and the state kept beside it there) refuses a second restore, leaving the data
    directory given for it as it was, and exports in turn: restored onto SQLite, the addon is as it was left."""
    key = {"REDIS_ADDONS_SECRETS_KEY_FILE": str(tmp_path / "new" / "secrets.key")}  # the installation's, made there
    assert cli(monkeypatch, tmp_path / "again", "restore-control-plane", "--from", str(tmp_path / "control-plane.archive"),
               env={**env, **key}) == 1
    assert "the event store already holds events" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()
    archive = tmp_path / "from-postgresql.archive"
    assert cli(monkeypatch, tmp_path / "new", "export", "--to", str(archive), env=env) == 0
    assert cli(monkeypatch, tmp_path / "third", "restore-control-plane", "--from", str(archive)) == 0
    async with build(settings_for(tmp_path / "third")) as third:
        assert (await third.addon(app_name, addon))["plan"] == "redis-starter-512"
        assert (await third.environment(app_name))["REDIS_URL"] == url


def failed_attempts_leave_nothing(monkeypatch, capsys, tmp_path, env) -> None:
    """Restores into PostgreSQL that fail, one before anything is opened (a wrong passphrase), one after the
    installation key was made and checked in the database (a part this release does not know): each leaves no
    data directory, and the database takes the next restore as if they never were."""
    odd = tmp_path / "odd.archive"
    PassphraseArchive().write(odd, [{"manifest": {"kind": "redis-addons control plane", "format": 1}},
                                    {"item": ["vault", "x", ""]}, {"end": {"events": 0}}], PASSPHRASE)
    for source, passphrase, words in ((tmp_path / "control-plane.archive", "not the passphrase", "wrong passphrase"),
                                      (odd, PASSPHRASE, "parts this release does not know (vault)")):
        assert cli(monkeypatch, tmp_path / "new", "restore-control-plane", "--from", str(source),
                   passphrase=passphrase, env=env) == 1
        assert words in capsys.readouterr().err
        assert not (tmp_path / "new").exists()
