"""Backup archives hold all of a customer's data: only the engine's user may read them. Files are
0600 and directories 0700, for a real backup, whatever the umask, and in a store an earlier
release left readable by everyone."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from adapters.storage.backup_files import FileBackupStore
from tests.integration.conftest import running_addon


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int):
    former = os.umask(value)
    try:
        yield
    finally:
        os.umask(former)


def tree_modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): mode(p) for p in [root, *root.rglob("*")]}


async def a_tar_stream():
    yield b"a tar stream, as far as the store cares" * 100


async def test_a_real_backup_is_readable_by_its_owner_only(engine, app_name):
    await running_addon(engine, app_name)
    with umask(0o022):  # the usual one: it gave 0644 archives in 0755 directories
        requested = await engine.backups.create(app_name, "redis")
        operation = await engine.wait_for_operation(requested["operation_id"], timeout=120)
    assert operation["status"] == "succeeded", operation
    row = await engine.backups.get(app_name, "redis", requested["backup_id"])
    root = engine.settings.backups_dir
    archive = root / row["location"]
    assert archive.is_file() and archive.stat().st_size > row["size"]  # sealed: the .tar.gz, a header, a tag a chunk
    assert mode(archive) == 0o600
    assert archive.parent.parent.parent == root  # <addon>/<backup ID>/<name>.tar.gz
    for directory in (archive.parent, archive.parent.parent, root):
        assert mode(directory) == 0o700, directory
    for path in [root, *root.rglob("*")]:  # nothing else in the store is wider either
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


async def test_an_archive_is_private_whatever_the_umask(tmp_path):
    with umask(0):
        store = FileBackupStore(tmp_path / "backups")
        await store.write_archive("my-app-1234/b1/x.tar.gz", a_tar_stream())
    assert tree_modes(tmp_path / "backups") == {
        ".": 0o700, "my-app-1234": 0o700, "my-app-1234/b1": 0o700, "my-app-1234/b1/x.tar.gz": 0o600,
    }


async def test_a_store_an_earlier_release_left_open_is_tightened_when_it_opens(tmp_path):
    root = tmp_path / "backups"
    backup_dir = root / "my-app-1234" / "b1"
    backup_dir.mkdir(parents=True)
    for directory in (root, root / "my-app-1234", backup_dir):
        directory.chmod(0o755)
    for name in ("x.tar.gz", "y.tar.gz.partial"):  # a .partial left by a killed writer too
        (backup_dir / name).write_bytes(b"customer data")
        (backup_dir / name).chmod(0o644)
    outside = tmp_path / "not-a-backup"
    outside.write_text("someone else's file")
    outside.chmod(0o644)
    (backup_dir / "link").symlink_to(outside)

    FileBackupStore(root)

    assert tree_modes(root) == {
        ".": 0o700, "my-app-1234": 0o700, "my-app-1234/b1": 0o700,
        "my-app-1234/b1/x.tar.gz": 0o600, "my-app-1234/b1/y.tar.gz.partial": 0o600,
        "my-app-1234/b1/link": 0o644,  # stat follows the link: what it points at is left alone
    }
    assert mode(outside) == 0o644


async def test_a_partial_archive_left_wide_open_is_rewritten_private(tmp_path):
    store = FileBackupStore(tmp_path / "backups")
    partial = tmp_path / "backups" / "my-app-1234" / "b1" / "x.tar.gz.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half an archive")
    partial.chmod(0o666)  # left by a writer killed after the store opened
    await store.write_archive("my-app-1234/b1/x.tar.gz", a_tar_stream())
    assert mode(partial.with_name("x.tar.gz")) == 0o600
    assert mode(partial.parent) == 0o700 and mode(partial.parent.parent) == 0o700
