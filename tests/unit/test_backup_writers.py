"""Two writers of one backup archive at once (adapters/storage/backup_files.py): a driver stalled in a backup's
archive step, woken after another process took the backup over and wrote the archive (a shared backups
directory), must not write into the archive the other recorded. Real files in a temporary directory."""

from __future__ import annotations

import asyncio
import hashlib

from adapters.storage.backup_files import FileBackupStore

KEY = "my-app-1234/b1/x.tar.gz"


async def chunks(*parts: bytes, wait_after_first: asyncio.Event | None = None):
    for number, part in enumerate(parts):
        yield part
        if number == 0 and wait_after_first is not None:
            await wait_after_first.wait()


async def test_a_stalled_writer_woken_after_another_wrote_the_archive_leaves_it_as_recorded(tmp_path):
    store = FileBackupStore(tmp_path / "backups")
    woken = asyncio.Event()
    stalled = asyncio.create_task(store.write_archive(
        KEY, chunks(b"A" * 100_000, b"B" * 100_000, wait_after_first=woken)))
    while not store.unfinished():  # the stalled writer has its file open
        await asyncio.sleep(0.01)
    written = await store.write_archive(KEY, chunks(b"the other process's archive " * 1000))
    woken.set()
    await asyncio.gather(stalled, return_exceptions=True)
    archive = (tmp_path / "backups" / KEY).read_bytes()
    assert hashlib.sha256(archive).hexdigest() == written["sha256"]  # the archive is the one recorded
    assert store.unfinished() == [] and store.archives() == [KEY]  # no writer's file left behind
