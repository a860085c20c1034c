"""Backups through the HTTP API and the CLI, on a real engine, real Docker hosts and real Redis
servers: backups made, listed, downloaded (whole, in ranges, resumed after an interruption),
scheduled, restored; and each mistake refused with one clear error and nothing left behind.

The module shares one engine, one API server and a few addons (each provision takes about a second):
tests that change an addon's data or schedule say so and leave it as they found it."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import tarfile
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from adapters.cli.backups import human_size
from adapters.http.app import make_app
from engine import build
from engine.settings import load_hosts
from tests.conftest import HOSTS_FILE
from tests.integration.api_client import cli, session, token, url
from tests.integration.conftest import docker_of, remove_everything_of, running_addon, settings_for

RUN = secrets.token_hex(3)
APP = f"it-bk-{RUN}"  # one starter addon with data and backups
SANDBOX_APP = f"it-bks-{RUN}"  # one sandbox addon: no backups
FAILING_APP = f"it-bkf-{RUN}"  # one starter addon whose backup fails for real
PARIS = ZoneInfo("Europe/Paris")
SEEN: list[dict] = []  # every archive request the server answered: its Range and If-Range, the status


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    try:
        async with build(settings_for(tmp_path_factory.mktemp("backups") / "home")) as running:
            yield running
    finally:
        for app in (APP, SANDBOX_APP, FAILING_APP):
            await remove_everything_of(app)


@pytest.fixture(scope="module")
async def server(engine):
    async def record(request, response):
        if request.path.endswith("/archive"):
            SEEN.append({"range": request.headers.get("Range"), "if_range": request.headers.get("If-Range"),
                         "status": response.status})

    app = make_app(engine)
    app.on_response_prepare.append(record)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def addon(engine):
    """A starter addon holding a few keys in two databases."""
    name = await running_addon(engine, APP)
    await write(engine, APP, {"greeting": "hello", "counter": "41"}, db=0)
    await write(engine, APP, {"other": "db"}, db=3)
    return name


@pytest.fixture(scope="module")
async def backup(engine, server, addon) -> dict:
    """One backup made through the API with wait=true."""
    async with session(engine) as http:
        async with http.post(url(server, f"/v1/apps/{APP}/addons/redis/backups?wait=true")) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
            assert response.headers["Location"] == f"/v1/operations/{body['operation']['id']}"
    assert body["operation"]["status"] == "succeeded" and body["operation"]["kind"] == "backup"
    assert body["backup"]["status"] == "done" and body["addon"]["name"] == addon
    return body["backup"]


@pytest.fixture
def cli_env(engine, server, monkeypatch, tmp_path):
    """The CLI pointed at the module's server, run from an empty directory, in Paris."""
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    monkeypatch.setenv("TZ", "Europe/Paris")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    SEEN.clear()
    return work


async def write(engine, app: str, values: dict, db: int = 0) -> None:
    client = aioredis.from_url((await engine.environment(app))["REDIS_URL"], db=db)
    try:
        await client.mset(values)
    finally:
        await client.aclose()


async def read(engine, app: str, key: str, db: int = 0) -> bytes | None:
    client = aioredis.from_url((await engine.environment(app))["REDIS_URL"], db=db)
    try:
        return await client.get(key)
    finally:
        await client.aclose()


async def archive_bytes(engine, server, backup_id: str) -> bytes:
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/backups/{backup_id}/archive")) as response:
            assert response.status == 200
            return await response.read()


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def files_in(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def paris(moment: str) -> str:
    at = datetime.fromisoformat(moment).astimezone(PARIS)
    return at.strftime("%a, %d %b %Y %H:%M:%S ") + at.tzname()


def daily_at(hour: int, minute: int, zone: str) -> str:
    """How the engine describes a schedule: that time today, in Paris ("5:00 CET")."""
    today = datetime.now(ZoneInfo(zone)).date()
    at = datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(PARIS)
    return f"daily at {at.hour}:{at.minute:02d} {at.tzname()}"


# -- made and listed ---------------------------------------------------------------------


async def test_backups_create_then_the_list_shows_it_done_with_its_size(engine, cli_env, addon, capsys):
    assert await cli("--app", APP, "--addon", "redis", "backups-create") == 0
    assert capsys.readouterr().out == "-----> Backup successfully finished\n"
    rows = await engine.backups.list(APP, addon)
    newest = rows[0]
    assert newest["status"] == "done" and newest["kind"] == "manual" and newest["size"] > 0

    assert await cli("--app", APP, "--addon", addon, "backups") == 0  # the ID works as well as "redis"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("+--") and lines[0] == lines[2] == lines[-1]
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["ID", "CREATED AT", "SIZE", "STATUS", "KIND"]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:-1]]
    assert [c[0] for c in cells] == [r["id"] for r in rows]  # newest first
    assert cells[0] == [newest["id"], paris(newest["created_at"]), human_size(newest["size"]), "done", "manual"]
    assert cells[0][1].endswith((" CET", " CEST")) and cells[0][2].endswith((" B", " kB"))


def test_sizes_read_like_the_reference():
    assert [human_size(n) for n in (None, 7, 999, 1_500, 142_714, 82_854_982)] == [
        "-", "7 B", "999 B", "1.5 kB", "143 kB", "83 MB"]


async def test_one_backup_and_latest_through_the_api(engine, server, backup):
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/backups/{backup['id']}")) as response:
            assert response.status == 200
            assert (await response.json())["backup"] == backup
        async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/backups/latest")) as response:
            latest = (await response.json())["backup"]
    assert latest["status"] == "done" and latest["created_at"] >= backup["created_at"]


# -- downloaded ---------------------------------------------------------------------------


async def test_backups_download_gets_the_latest_with_its_checksum_and_dump_rdb(engine, server, cli_env, backup, capsys):
    latest = await engine.backups.latest_done(APP, "redis")
    assert await cli("--app", APP, "--addon", "redis", "backups-download") == 0
    captured = capsys.readouterr()
    assert captured.out == f"-----> Selected the most recent successful backup\n===> {latest['name']}\n"
    assert "100%" in captured.err  # the progress bar, on stderr
    assert files_in(cli_env) == [latest["name"]]  # no .part left
    data = (cli_env / latest["name"]).read_bytes()
    assert len(data) == latest["size"] and hashlib.sha256(data).hexdigest() == latest["sha256"]
    assert b"greeting" in tar_members(data)["dump.rdb"]
    assert [(s["range"], s["status"]) for s in SEEN] == [(None, 200)]


async def test_an_interrupted_download_resumes_with_a_range_and_ends_identical(engine, server, cli_env, backup, capsys):
    whole = await archive_bytes(engine, server, backup["id"])
    part = cli_env / (backup["name"] + ".part")
    part.write_bytes(whole[: len(whole) // 2])  # what an interrupted download left
    (cli_env / (backup["name"] + ".part.etag")).write_text(f'"{backup["sha256"]}"\n')
    SEEN.clear()
    assert await cli("--app", APP, "--addon", "redis", "backups-download", "--backup", backup["id"]) == 0
    assert capsys.readouterr().out == f"===> {backup['name']}\n"
    assert (cli_env / backup["name"]).read_bytes() == whole
    assert files_in(cli_env) == [backup["name"]]
    assert SEEN == [{"range": f"bytes={len(whole) // 2}-", "if_range": f'"{backup["sha256"]}"', "status": 206}]


async def test_a_part_of_another_archive_is_fetched_again_whole(engine, server, cli_env, backup, capsys):
    (cli_env / (backup["name"] + ".part")).write_bytes(b"x" * 100)
    (cli_env / (backup["name"] + ".part.etag")).write_text('"' + "0" * 64 + '"\n')
    assert await cli("--app", APP, "--addon", "redis", "backups-download", "--backup", backup["id"]) == 0
    data = (cli_env / backup["name"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == backup["sha256"]
    assert files_in(cli_env) == [backup["name"]]
    assert [(s["range"], s["status"]) for s in SEEN] == [("bytes=100-", 200)]  # If-Range did not match


async def test_a_corrupt_part_fails_the_checksum_and_is_deleted(engine, server, cli_env, backup, capsys):
    whole = await archive_bytes(engine, server, backup["id"])
    (cli_env / (backup["name"] + ".part")).write_bytes(b"\0" * (len(whole) // 2))  # the right length, wrong bytes
    (cli_env / (backup["name"] + ".part.etag")).write_text(f'"{backup["sha256"]}"\n')
    assert await cli("--app", APP, "--addon", "redis", "backups-download", "--backup", backup["id"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: checksum mismatch: the downloaded archive's SHA-256 is ")
    assert err.endswith(f"the server's is {backup['sha256']}; the file was deleted, download it again")
    assert files_in(cli_env) == []


async def test_output_to_a_directory_and_to_a_file_path(engine, server, cli_env, backup, capsys):
    (cli_env / "into").mkdir()
    args = ("--app", APP, "--addon", "redis", "backups-download", "--backup", backup["id"])
    assert await cli(*args, "--output", "into") == 0
    assert capsys.readouterr().out == f"===> into/{backup['name']}\n"
    assert await cli(*args, "-o", str(cli_env / "into" / "mine.tar.gz")) == 0
    assert capsys.readouterr().out == f"===> {cli_env / 'into' / 'mine.tar.gz'}\n"
    assert files_in(cli_env / "into") == sorted([backup["name"], "mine.tar.gz"])
    for name in files_in(cli_env / "into"):
        assert hashlib.sha256((cli_env / "into" / name).read_bytes()).hexdigest() == backup["sha256"]

    assert await cli(*args, "--output", "missing/dir/x.tar.gz") == 1
    assert capsys.readouterr().err == "error: --output missing/dir/x.tar.gz: directory missing/dir does not exist\n"
    assert await cli(*args, "--output", "missing/") == 1
    assert capsys.readouterr().err == "error: --output missing/: no such directory\n"
    assert files_in(cli_env) == ["into"] and SEEN == [{"range": None, "if_range": None, "status": 200}] * 2


async def test_the_archive_headers_and_byte_ranges(engine, server, backup):
    path = url(server, f"/v1/apps/{APP}/addons/redis/backups/{backup['id']}/archive")
    size, sha = backup["size"], backup["sha256"]
    async with session(engine) as http:
        async with http.get(path) as response:
            whole = await response.read()
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/gzip"
            assert response.headers["Content-Length"] == str(size)
            assert response.headers["Content-Disposition"] == f'attachment; filename="{backup["name"]}"'
            assert response.headers["ETag"] == f'"{sha}"'
            assert response.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha)).decode()}:"
            assert response.headers["X-Backup-SHA256"] == sha
            assert response.headers["Accept-Ranges"] == "bytes"
        assert hashlib.sha256(whole).hexdigest() == sha

        async def ranged(value: str, **extra) -> tuple[int, bytes, dict]:
            async with http.get(path, headers={"Range": value, **extra}) as response:
                return response.status, await response.read(), response.headers

        status, body, headers = await ranged("bytes=10-99")
        assert (status, body) == (206, whole[10:100])
        assert headers["Content-Range"] == f"bytes 10-99/{size}" and headers["Content-Length"] == "90"
        assert headers["X-Backup-SHA256"] == sha  # of the whole archive, as Repr-Digest
        status, body, headers = await ranged("bytes=-5")
        assert (status, body, headers["Content-Range"]) == (206, whole[-5:], f"bytes {size - 5}-{size - 1}/{size}")
        status, body, headers = await ranged(f"bytes=20-{size + 100}")
        assert (status, body) == (206, whole[20:])
        status, body, headers = await ranged(f"bytes={size}-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        assert b"range-not-satisfiable" in body
        status, body, _ = await ranged("bytes=10-99", **{"If-Range": f'"{sha}"'})
        assert (status, body) == (206, whole[10:100])
        status, body, _ = await ranged("bytes=10-99", **{"If-Range": '"another"'})
        assert (status, body) == (200, whole)
        status, body, _ = await ranged("bytes=0-1,5-6")  # several ranges: the whole archive
        assert (status, body) == (200, whole)


# -- scheduled ----------------------------------------------------------------------------


async def test_backups_config_shows_then_sets_the_schedule_both_ways(engine, cli_env, addon, capsys, monkeypatch):
    assert await cli("--app", APP, "--addon", "redis", "backups-config") == 0
    assert capsys.readouterr().out == (f"-----> Periodic backups are done {daily_at(1, 0, 'Europe/Paris')}\n"
                                       "       Scheduled at 1:00 Europe/Paris\n")
    try:
        assert await cli("--app", APP, "--addon", "redis", "backups-config", "--schedule-at", "4:00 UTC") == 0
        assert capsys.readouterr().out == f"-----> Periodic backups will be done {daily_at(4, 0, 'UTC')}\n"
        assert daily_at(4, 0, "UTC") in ("daily at 5:00 CET", "daily at 6:00 CEST")

        monkeypatch.setenv("TZ", "America/New_York")  # --schedule-at 3: in the CLI machine's zone
        assert await cli("--app", APP, "--addon", "redis", "backups-config", "--schedule-at", "3") == 0
        assert capsys.readouterr().out == f"-----> Periodic backups will be done {daily_at(3, 0, 'America/New_York')}\n"
        assert await cli("--app", APP, "--addon", "redis", "backups-config") == 0
        assert capsys.readouterr().out.splitlines()[1] == "       Scheduled at 3:00 America/New_York"
        assert (await engine.backups.schedule(APP, addon))["zone"] == "America/New_York"
    finally:
        await engine.backups.set_schedule(APP, addon, "1:00 Europe/Paris", "Europe/Paris")


async def test_the_schedule_through_the_api(engine, server, addon):
    path = url(server, f"/v1/apps/{APP}/addons/{addon}/backup_schedule")
    async with session(engine) as http:
        try:
            async with http.put(path, json={"schedule_at": "4:30", "local_zone": "Asia/Tokyo"}) as response:
                assert response.status == 200
                schedule = (await response.json())["schedule"]
            assert {k: schedule[k] for k in ("hour", "minute", "zone")} == {"hour": 4, "minute": 30, "zone": "Asia/Tokyo"}
            assert schedule["description"] == daily_at(4, 30, "Asia/Tokyo")
            async with http.get(path) as response:
                assert (await response.json())["schedule"] == schedule
        finally:
            await engine.backups.set_schedule(APP, addon, "1:00 Europe/Paris", "Europe/Paris")


# -- restored -----------------------------------------------------------------------------


async def test_backups_restore_brings_the_backed_up_data_back(engine, cli_env, addon, backup, capsys):
    await write(engine, APP, {"greeting": "changed since", "later": "1"})
    assert await cli("--app", APP, "--addon", "redis", "backups-restore", "--backup", backup["id"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"-----> Addon {addon} is being restored from backup {backup['id']} ({paris(backup['created_at'])}) ..."
    assert all(line.split()[1] == "done" for line in lines[1:-1]) and len(lines) > 2
    assert lines[-1] == f"-----> Addon {addon} has been restored from backup {backup['id']}"
    assert await read(engine, APP, "greeting") == b"hello"
    assert await read(engine, APP, "later") is None
    assert await read(engine, APP, "other", db=3) == b"db"


# -- mistakes: one clear error, nothing left behind -------------------------------------------


async def test_an_unknown_backup_is_a_404_and_nothing_is_written(engine, server, cli_env, addon, capsys):
    async with session(engine) as http:
        for path in ("backups/nope", "backups/nope/archive"):
            async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/{path}")) as response:
                assert response.status == 404
                assert (await response.json())["error"]["rule"] == "unknown-backup"
    SEEN.clear()
    assert await cli("--app", APP, "--addon", "redis", "backups-download", "--backup", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and len(err.splitlines()) == 1
    assert files_in(cli_env) == [] and SEEN == []


async def test_a_malformed_schedule_is_a_400_naming_it_and_changes_nothing(engine, server, cli_env, addon, capsys):
    before = await engine.backups.schedule(APP, addon)
    assert await cli("--app", APP, "--addon", "redis", "backups-config", "--schedule-at", "25:00 UTC") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --schedule-at: invalid schedule '25:00 UTC': ") and len(err.splitlines()) == 1
    assert await cli("--app", APP, "--addon", "redis", "backups-config", "--schedule-at", "4:00 Mars/Olympus") == 1
    assert "Mars/Olympus" in capsys.readouterr().err
    path = url(server, f"/v1/apps/{APP}/addons/redis/backup_schedule")
    async with session(engine) as http:
        for body, field in (({"schedule_at": "at noon", "local_zone": "UTC"}, "schedule_at"),
                            ({"local_zone": "UTC"}, "schedule_at"),
                            ({"schedule_at": "3"}, "local_zone"),
                            ({"schedule_at": "3", "local_zone": "Nowhere/Town"}, "local_zone")):
            async with http.put(path, json=body) as response:
                assert response.status == 400, body
                error = (await response.json())["error"]
                assert error["field"] == field and field in error["message"], error
    assert await engine.backups.schedule(APP, addon) == before


async def test_a_sandbox_addon_has_no_backups(engine, server, cli_env, capsys):
    await running_addon(engine, SANDBOX_APP, plan="redis-sandbox")
    assert await cli("--app", SANDBOX_APP, "--addon", "redis", "backups-create") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: addon ") and "sandbox" in err and len(err.splitlines()) == 1
    async with session(engine) as http:
        async with http.post(url(server, f"/v1/apps/{SANDBOX_APP}/addons/redis/backups")) as response:
            assert response.status == 422
            assert (await response.json())["error"]["rule"] == "no-backups-on-sandbox"
    assert await engine.backups.list(SANDBOX_APP, "redis") == []


async def test_a_failed_backup_is_listed_and_its_download_is_a_409(engine, server, cli_env, capsys):
    """A real failure: /data/dump.rdb is made a directory, so Redis cannot rename its new save
    onto it (BGSAVE ends in error) and the backup saga records the backup as failed."""
    addon = await running_addon(engine, FAILING_APP)
    await write(engine, FAILING_APP, {"k": "v"})
    await put_directory(addon, "/data", "dump.rdb/keep")
    assert await cli("--app", FAILING_APP, "--addon", "redis", "backups-create") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: backup of {addon} failed: ") and len(err.splitlines()) == 1
    [failed] = await engine.backups.list(FAILING_APP, "redis")
    assert failed["status"] == "failed" and failed["failure"] and failed["sha256"] is None

    assert await cli("--app", FAILING_APP, "--addon", "redis", "backups") == 0
    assert [c.strip() for c in capsys.readouterr().out.splitlines()[3].split("|")[3:5]] == ["-", "failed"]
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{FAILING_APP}/addons/redis/backups/{failed['id']}/archive")) as response:
            assert response.status == 409
            assert (await response.json())["error"]["rule"] == "backup-not-done"
        async with http.get(url(server, f"/v1/apps/{FAILING_APP}/addons/redis/backups/latest")) as response:
            assert response.status == 404  # no successful backup yet
    assert await cli("--app", FAILING_APP, "--addon", "redis", "backups-download", "--backup", failed["id"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: backup {failed['id']} is failed") and len(err.splitlines()) == 1
    assert await cli("--app", FAILING_APP, "--addon", "redis", "backups-download") == 1
    assert capsys.readouterr().out == ""  # nothing was selected
    assert files_in(cli_env) == []


async def test_backup_verbs_need_an_app_and_an_addon(cli_env, capsys):
    assert await cli("--app", APP, "backups") == 1
    assert capsys.readouterr().err.startswith("error: `backups` needs an addon: redis-addons --app APP --addon redis backups")
    assert await cli("--addon", "redis", "backups-create") == 1
    assert "--app APP backups-create" in capsys.readouterr().err


async def put_directory(addon: str, path: str, member: str) -> None:
    """Put an empty file `member` (and the directories above it) into `path` of the addon's container."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        directory = tarfile.TarInfo(member.split("/")[0])
        directory.type, directory.mode = tarfile.DIRTYPE, 0o777
        tar.addfile(directory)
        tar.addfile(tarfile.TarInfo(member), io.BytesIO(b""))
    for host in load_hosts(HOSTS_FILE):
        docker = docker_of(host)
        try:
            for container in await docker.containers.list(filters={"label": [f"redis-addons.addon={addon}"]}):
                await container.put_archive(path, data.getvalue())
                return
        finally:
            await docker.close()
    raise AssertionError(f"no running container of {addon}")


async def test_an_archive_gone_from_the_store_is_an_error_status_not_a_cut_download(engine, server, addon):
    made = await engine.backups.create(APP, "redis")
    await engine.wait_for_operation(made["operation_id"])
    row = await engine.backups.get(APP, "redis", made["backup_id"])
    (engine.settings.backups_dir / row["location"]).unlink()  # a lost disk, for real
    async with session(engine) as http:
        async with http.get(url(server, f"/v1/apps/{APP}/addons/redis/backups/{row['id']}/archive")) as response:
            assert response.status == 502
            assert "missing from the backup store" in (await response.json())["error"]["message"]
