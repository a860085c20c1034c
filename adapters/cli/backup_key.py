"""`backup-key show|rotate|reencrypt|drop ID`: the keys that seal backup archives at rest, run on the
engine's machine (they read $REDIS_ADDONS_HOME's keyring, or PostgreSQL's on an installation there, and
the backup store directly, never the API: a key is nothing an API client should reach). Safe beside a running engine: it reads the keyring again
when it changed, and an archive sealed again replaces the old one at once, whole.

Run as the engine's user (a file made by root would stop the engine's next backup), against the engine's
home: `rotate` and `reencrypt` never make a keyring where there is none (only the engine's first backup
does), so a lost keyring is not papered over with a new key."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

from adapters.cli.client import CliError
from adapters.storage.backup_files import FileBackupStore
from adapters.postgres.shared_state import backup_keyring
from adapters.storage.backup_keys import ENV, BackupKeys
from engine.ports import EffectError
from engine.settings import Settings, SettingsError


def backup_key(args, env=os.environ) -> int:
    try:
        # The hosts are not needed: the environment's other settings are (PostgreSQL, the backups directory).
        settings = Settings.from_env(env, hosts=())
        keys = backup_keyring(settings)
        if args.action != "show":
            refuse_another_user(settings.home)
        if args.action in ("rotate", "reencrypt", "drop") and not keys.exist():
            raise CliError(f"there is no backup keyring at {keys.path} and {ENV} is unset: nothing to {args.action}. "
                           f"Is REDIS_ADDONS_HOME the engine's home (it is {settings.home})? A keyring that was lost "
                           "must be put back from your copy; the engine makes the first one at its first backup")
        store = FileBackupStore(settings.backups_dir, keys)
        if args.action == "drop" and not args.key_id:
            raise CliError("backup-key drop needs the ID of the key to drop (see `backup-key show`)")
        return ACTIONS[args.action](keys, store, args, settings)
    except (SettingsError, EffectError, OSError) as e:
        raise CliError(str(e)) from None


def refuse_another_user(home: Path) -> None:
    try:
        owner = home.stat().st_uid
    except FileNotFoundError:
        return  # nothing to spoil there (rotate and reencrypt then find no keyring)
    if os.geteuid() != owner:
        raise CliError(f"run backup-key as the engine's user (the owner of {home}, uid {owner}), not uid {os.geteuid()}: "
                       "the files it writes would be that user's, and the engine could no longer read them")


def recorded_archives(read_models: Path) -> dict[str, tuple[int, str]]:
    """Each successful backup's (size, SHA-256) by archive location, from the engine's read models (opened read-only):
    what a plain archive from before encryption must match to be sealed."""
    if not read_models.exists():
        return {}
    db = sqlite3.connect(f"file:{read_models}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT location, size, sha256 FROM backups WHERE status = 'done' AND location IS NOT NULL")
        return {location: (size, sha256) for location, size, sha256 in rows}
    except sqlite3.Error as e:
        raise CliError(f"the engine's read models {read_models} cannot be read ({e}): try again") from None
    finally:
        db.close()


def sealed_with(store: FileBackupStore, name: str) -> str | None:
    try:
        return store.sealed_with(name)
    except FileNotFoundError:  # renamed or removed since it was listed
        return None


def show(keys: BackupKeys, store: FileBackupStore, args, settings: Settings) -> int:
    uses = Counter(store.sealed_with(name) for name in store.archives())
    where = ENV if keys.from_env else str(keys.path)
    print(f"backup keys ({where}):")
    for kid, current in keys.ids():
        print(f"  {kid}{'  current' if current else ''}  {uses.pop(kid, 0)} archive(s)")
    for other, count in sorted(uses.items()):  # "plain" (before encryption), "altered", or a key not held
        print(f"  {other}: {count} archive(s)")
    return 0


def rotate(keys: BackupKeys, store: FileBackupStore, args, settings: Settings) -> int:
    old, new = keys.current()[0].hex(), keys.rotate()
    print(f"backup key {new} is current: new backups are sealed with it; {old} still opens the older ones. "
          f"`backup-key reencrypt` seals them again with {new}, then `backup-key drop {old}`")
    return 0


def reencrypt(keys: BackupKeys, store: FileBackupStore, args, settings: Settings) -> int:
    current, done, already, failed = keys.current()[0].hex(), 0, 0, []
    recorded = recorded_archives(settings.read_models_file)
    for name in store.archives():
        try:
            if store.reseal(name, recorded.get(name)):
                done += 1
            else:
                already += 1
        except FileNotFoundError:
            continue  # removed meanwhile by the retention sweep
        except (EffectError, SettingsError, OSError) as e:
            failed.append(f"{name}: {e}")
    print(f"{done} archive(s) sealed again with backup key {current}; {already} already were")
    if failed:
        raise CliError(f"{len(failed)} archive(s) left as they were:\n  " + "\n  ".join(failed))
    return 0


def drop(keys: BackupKeys, store: FileBackupStore, args, settings: Settings) -> int:
    kid = args.key_id.lower()
    if any(sealed_with(store, name) == kid for name in store.unfinished()):
        # archives() skips them; once renamed they would be sealed with a key no longer held
        raise CliError(f"a backup is being written with backup key {args.key_id}; try again when it ends")
    using = [name for name in store.archives() if store.sealed_with(name) == kid]
    if using:
        raise CliError(f"backup key {args.key_id} still seals {len(using)} archive(s) (first: {using[0]}): "
                       "run `backup-key reencrypt` first")
    keys.drop(kid)
    print(f"backup key {args.key_id} dropped")
    return 0


ACTIONS = {"show": show, "rotate": rotate, "reencrypt": reencrypt, "drop": drop}
