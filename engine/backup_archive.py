"""A backup's archive (reference, "Backups"): the RDB file a snapshot saved (engine/backup_source.py), read
through the Docker archive API from the node that saved it and stored with its SHA-256. Shared by the
backup saga and the backup an upgrade takes first (engine/safety_backup.py)."""

from __future__ import annotations

from domain.cluster import Cluster
from engine.backup_source import saved_on
from engine.ports import BackupStore, EffectError, Runtime
from engine.rdb_header import first_member, is_rdb, keeping_the_start, replication_offset

RDB_FILE = "/data/dump.rdb"


async def archive_saved_file(runtime: Runtime, store: BackupStore, cluster: Cluster, saved: dict | None,
                             archive_key: str) -> dict:
    """The file the snapshot `saved` (its outcome) wrote, stored under `archive_key`: {size, sha256, location}.
    Written again whole when asked again (a step run again after a crash)."""
    node = saved_on(cluster, saved)
    start = bytearray()
    rdb = keeping_the_start(runtime.read_file(node["host"], node["container"], RDB_FILE), start)
    stored = await store.write_archive(archive_key, rdb)
    await check_offset(store, (saved or {}).get("taken_on"), bytes(start), archive_key, node)
    return stored


async def check_offset(store: BackupStore, taken_on: dict | None, start: bytes, archive_key: str, node: dict) -> None:
    """A replica's file is the one its save wrote only if it records that save's offset: a full
    resynchronisation since (the replica cut off for too long, restarted) replaces dump.rdb. A file
    that is no RDB (the unit tests' in-memory servers write JSON) records none and is not checked."""
    if not taken_on or taken_on.get("offset") is None:
        return
    rdb = first_member(start)
    found = replication_offset(rdb)
    if found != taken_on["offset"] and is_rdb(rdb):
        await store.delete(archive_key)
        raise EffectError(f"the dump.rdb of {node['id']} records replication offset {found}, not the "
                          f"{taken_on['offset']} its save was taken at: it is not the file that save wrote "
                          "(a full resynchronisation replaces it); take the backup again")
