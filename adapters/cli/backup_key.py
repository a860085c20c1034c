"""`backup-key show|rotate|reencrypt|drop ID`: the keys that seal backup archives at rest, run on the
engine's machine (they read $REDIS_ADDONS_HOME's keyring and backup store directly, never the API: a
key is nothing an API client should reach). Safe beside a running engine: it reads the keyring again
when it changed, and an archive sealed again replaces the old one at once, whole."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from adapters.cli.client import CliError
from adapters.storage.backup_files import FileBackupStore
from adapters.storage.backup_keys import ENV, BackupKeys
from engine.ports import EffectError
from engine.settings import Settings, SettingsError


def backup_key(args, env=os.environ) -> int:
    settings = Settings(home=Path(env.get("REDIS_ADDONS_HOME", "var")).resolve(), hosts=(),
                        backup_key=env.get(ENV) or None)
    try:
        keys = BackupKeys(settings.backup_keys_file, settings.backup_key)
        store = FileBackupStore(settings.backups_dir, keys)
        if args.action == "drop" and not args.key_id:
            raise CliError("backup-key drop needs the ID of the key to drop (see `backup-key show`)")
        return ACTIONS[args.action](keys, store, args)
    except (SettingsError, EffectError, OSError) as e:
        raise CliError(str(e)) from None


def show(keys: BackupKeys, store: FileBackupStore, args) -> int:
    uses = Counter(store.sealed_with(name) for name in store.archives())
    where = ENV if keys.from_env else str(keys.path)
    print(f"backup keys ({where}):")
    for kid, current in keys.ids():
        print(f"  {kid}{'  current' if current else ''}  {uses.pop(kid, 0)} archive(s)")
    for other, count in sorted(uses.items()):  # "plain" (before encryption), "altered", or a key not held
        print(f"  {other}: {count} archive(s)")
    return 0


def rotate(keys: BackupKeys, store: FileBackupStore, args) -> int:
    old, new = keys.current()[0].hex(), keys.rotate()
    print(f"backup key {new} is current: new backups are sealed with it; {old} still opens the older ones. "
          f"`backup-key reencrypt` seals them again with {new}, then `backup-key drop {old}`")
    return 0


def reencrypt(keys: BackupKeys, store: FileBackupStore, args) -> int:
    current, done, already, failed = keys.current()[0].hex(), 0, 0, []
    for name in store.archives():
        try:
            if store.reseal(name):
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


def drop(keys: BackupKeys, store: FileBackupStore, args) -> int:
    using = [name for name in store.archives() if store.sealed_with(name) == args.key_id.lower()]
    if using:
        raise CliError(f"backup key {args.key_id} still seals {len(using)} archive(s) (first: {using[0]}): "
                       "run `backup-key reencrypt` first")
    keys.drop(args.key_id.lower())
    print(f"backup key {args.key_id} dropped")
    return 0


ACTIONS = {"show": show, "rotate": rotate, "reencrypt": reencrypt, "drop": drop}
