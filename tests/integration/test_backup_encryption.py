"""Backups encrypted at rest, on a real engine, real Docker hosts and a real Redis server (one shared
Starter addon holding ~3 MiB, so that its archive spans several 1 MiB chunks): the stored bytes reveal
nothing; the download is the plain .tar.gz; an archive altered on disk is refused by a restore before
it stops the node and by the CLI's download; keys rotate and old archives are sealed again; an archive
written before encryption (a plain .tar.gz) still restores and is sealed by `backup-key reencrypt`.

Tests run in order on the module's addon and backup, and put back what they alter."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import secrets
import tarfile
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.storage.sealed import HEADER, MAGIC, TAG
from tests.integration.api_client import api_server, cli, module_engine, token
from tests.integration.conftest import containers_of, running_addon

APP = f"it-enc-{secrets.token_hex(3)}"
KEY_NAME = f"customer-key-{secrets.token_hex(4)}"  # a key name the stored bytes must not show
BIG = {f"blob-{i}": os.urandom(1 << 20) for i in range(3)}  # random: gzip cannot shrink it below 3 chunks


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    async with module_engine(tmp_path_factory, "encryption", APP) as running:
        yield running


@pytest.fixture(scope="module")
async def server(engine):
    async with api_server(engine) as running:
        yield running


@pytest.fixture(scope="module")
async def addon(engine):
    name = await running_addon(engine, APP)
    async with redis_of(engine) as client:
        await client.mset({KEY_NAME: "the value", **BIG})
    return name


@pytest.fixture(scope="module")
async def backup(engine, addon) -> dict:
    requested = await engine.backups.create(APP, "redis")
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)
    assert operation["status"] == "succeeded", operation
    return await engine.backups.get(APP, "redis", requested["backup_id"])


@pytest.fixture
def work(engine, server, monkeypatch, tmp_path):
    """The CLI pointed at the module's server (and, for `backup-key`, at the engine's home)."""
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(engine.settings.home))
    monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDIS_ADDONS_TOKEN", token(engine))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextlib.asynccontextmanager
async def redis_of(engine):
    client = aioredis.from_url((await engine.environment(APP))["REDIS_URL"])
    try:
        yield client
    finally:
        await client.aclose()


def stored(engine, backup) -> Path:
    return engine.settings.backups_dir / backup["location"]


def dump_rdb(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.extractfile("dump.rdb").read()


async def download(backup) -> tuple[int, bytes | None]:
    code = await cli("--app", APP, "--addon", "redis", "backups-download", "--backup", backup["id"])
    path = os.path.join(os.getcwd(), backup["name"])
    return code, open(path, "rb").read() if os.path.exists(path) else None


async def test_the_stored_bytes_reveal_nothing_and_the_download_is_the_plain_tar_gz(engine, work, backup):
    on_disk = stored(engine, backup).read_bytes()
    assert on_disk.startswith(MAGIC) and len(on_disk) > backup["size"] > 3 << 20
    # Not gzip's 3-byte magic anywhere: random ciphertext of 3 MiB holds any 3 bytes with a chance of 1 in 5.
    for clear in (b"REDIS0", KEY_NAME.encode(), b"dump.rdb"):
        assert clear not in on_disk, clear
    assert not any(value[:64] in on_disk for value in BIG.values())
    code, archive = await download(backup)
    assert code == 0 and archive[:2] == b"\x1f\x8b"
    assert len(archive) == backup["size"] and hashlib.sha256(archive).hexdigest() == backup["sha256"]
    # Nothing of the .tar.gz stored as it is: no 32 bytes of it, taken every 16 KiB, gzip's header included.
    assert not any(archive[at:at + 32] in on_disk for at in range(0, len(archive) - 32, 16 << 10))
    rdb = dump_rdb(archive)
    assert rdb.startswith(b"REDIS0") and KEY_NAME.encode() in rdb and BIG["blob-1"] in rdb
    assert sorted(os.listdir(work)) == [backup["name"]]


async def test_an_altered_archive_is_refused_by_a_restore_before_the_node_stops_and_by_a_download(
        engine, work, addon, backup, capsys):
    path = stored(engine, backup)
    original = path.read_bytes()
    third_chunk = HEADER.size + 2 * ((1 << 20) + TAG)
    altered = bytearray(original)
    altered[third_chunk + 1234] ^= 0x40  # one bit, on disk
    path.write_bytes(bytes(altered))
    [node_before] = await containers_of(addon)
    try:
        requested = await engine.backups.restore(APP, addon, backup["id"])
        operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)
        assert operation["status"] == "failed", operation
        [check] = [s for s in operation["steps"] if s["status"] != "pending"][:1]
        assert check["name"] == "check" and check["status"] in ("failed", "compensated"), operation["steps"]
        assert f"altered on disk at byte {third_chunk}" in operation["error"]
        assert [s["name"] for s in operation["steps"] if s["status"] == "succeeded"] == []  # nothing stopped
        [node_after] = await containers_of(addon)
        assert node_after["Id"] == node_before["Id"] and node_after["State"]["Running"]
        assert node_after["State"]["StartedAt"] == node_before["State"]["StartedAt"]  # never stopped
        async with redis_of(engine) as client:
            assert await client.get(KEY_NAME) == b"the value" and await client.get("blob-2") == BIG["blob-2"]
        assert (await engine.addon(APP, addon))["status"] == "running"

        capsys.readouterr()
        code, archive = await download(backup)
        assert code == 1 and archive is None
        assert capsys.readouterr().err.splitlines()[-1] == \
            f"error: backup {backup['id']} is altered on disk at byte {third_chunk}: not downloaded"
        assert os.listdir(work) == []  # no partial file left

        path.write_bytes(bytes(altered[:third_chunk]))  # cut at a chunk's end: shorter than recorded, refused at once
        code, archive = await download(backup)
        assert code == 1 and archive is None and os.listdir(work) == []
        assert f"is altered on disk at byte {third_chunk}: not downloaded" in capsys.readouterr().err
    finally:
        path.write_bytes(original)


async def test_keys_rotate_and_reencrypt_moves_old_archives_onto_the_new_key(engine, work, addon, backup, capsys):
    first = [line.split()[0] for line in await key_lines(capsys) if "current" in line][0]
    assert await cli("backup-key", "rotate") == 0
    second = [line.split()[0] for line in await key_lines(capsys) if "current" in line][0]
    assert second != first
    requested = await engine.backups.create(APP, "redis")  # the running engine sees the new key at once
    assert (await engine.wait_for_operation(requested["operation_id"], timeout=120))["status"] == "succeeded"
    newer = await engine.backups.get(APP, "redis", requested["backup_id"])
    assert header_key(stored(engine, newer)) == second and header_key(stored(engine, backup)) == first
    assert (await download(backup))[0] == 0  # the old key still opens the old archive
    os.remove(backup["name"])
    original = stored(engine, backup).read_bytes()
    stored(engine, backup).write_bytes(stored(engine, newer).read_bytes())  # another backup's archive at its path
    try:
        code, archive = await download(backup)
        assert code == 1 and archive is None and os.listdir(work) == []
        assert f"error: backup {backup['id']} is altered on disk at byte " in capsys.readouterr().err
    finally:
        stored(engine, backup).write_bytes(original)

    assert await cli("backup-key", "drop", first) == 1
    assert f"backup key {first} still seals 1 archive(s)" in capsys.readouterr().err
    assert await cli("backup-key", "reencrypt") == 0
    assert capsys.readouterr().out == f"1 archive(s) sealed again with backup key {second}; 1 already were\n"
    assert header_key(stored(engine, backup)) == second
    assert await cli("backup-key", "drop", first) == 0
    assert [line.split()[0] for line in await key_lines(capsys)] == [second]
    code, archive = await download(backup)
    assert code == 0 and hashlib.sha256(archive).hexdigest() == backup["sha256"]


async def test_a_plain_archive_from_before_encryption_still_restores_and_is_sealed_by_reencrypt(
        engine, work, addon, backup, capsys):
    code, archive = await download(backup)
    assert code == 0
    os.remove(backup["name"])
    stored(engine, backup).write_bytes(archive)  # what the previous release stored: the .tar.gz itself
    async with redis_of(engine) as client:
        await client.set(KEY_NAME, "changed after the backup")

    requested = await engine.backups.restore(APP, addon, backup["id"])
    operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)

    assert operation["status"] == "succeeded", operation
    async with redis_of(engine) as client:
        assert await client.get(KEY_NAME) == b"the value"
    assert stored(engine, backup).read_bytes() == archive  # restoring reads, never rewrites
    assert await cli("backup-key", "show") == 0
    assert "plain: 1 archive(s)" in capsys.readouterr().out
    assert await cli("backup-key", "reencrypt") == 0
    assert capsys.readouterr().out.startswith("1 archive(s) sealed again")
    assert stored(engine, backup).read_bytes().startswith(MAGIC)
    assert gzip.decompress((await download(backup))[1]) == gzip.decompress(archive)


async def key_lines(capsys) -> list[str]:
    capsys.readouterr()
    assert await cli("backup-key", "show") == 0
    return capsys.readouterr().out.splitlines()[1:]


def header_key(path) -> str:
    return HEADER.unpack_from(path.read_bytes())[3].hex()
