"""The backup verbs (reference, "Backups"): `--addon redis backups`, `backups-create`,
`backups-download [--backup ID] [--output PATH]`, `backups-config [--schedule-at ...]`,
`backups-restore --backup ID`. `--addon` is `redis` (the app's only Redis addon) or an addon ID."""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.cli.client import Api, ApiError, CliError
from adapters.cli.download import download, target_path
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import PLAN_CHANGE_WAIT_S, follow_steps, need_app, quote, wait_for

BACKUP_WAIT_S = PLAN_CHANGE_WAIT_S  # the data is saved and archived: as long as a plan change may take
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UNITS = ("B", "kB", "MB", "GB", "TB")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def need_addon(args) -> str:
    if not args.addon:
        raise CliError(f"`{args.verb}` needs an addon: redis-addons --app APP --addon redis {args.verb} ... "
                       "(redis, or an addon ID like my-app-3030)")
    return args.addon


def addon_path(args) -> str:
    return f"/v1/apps/{quote(need_app(args))}/addons/{quote(need_addon(args))}"


# -- time zones and sizes as the reference shows them --------------------------------


def local_zone(env=os.environ, localtime: Path = Path("/etc/localtime")) -> str | None:
    """This machine's IANA time zone name: $TZ if it is one, else what /etc/localtime links to
    (UTC when there is none, as the C library does); None when it cannot be named."""
    if "TZ" in env:
        return zone_name(env["TZ"].lstrip(":")) if env["TZ"].lstrip(":") else "UTC"
    if localtime.is_symlink():
        return zone_name(os.path.realpath(localtime))
    if not localtime.exists():
        return "UTC"
    try:  # a copied file: Debian also writes the name in /etc/timezone
        return zone_name((localtime.parent / "timezone").read_text().strip())
    except OSError:
        return None


def zone_name(text: str) -> str | None:
    """`Europe/Paris`, or the same read from a path like /usr/share/zoneinfo/posix/Europe/Paris."""
    name = text.split("zoneinfo/", 1)[1] if "zoneinfo/" in text else text
    for prefix in ("posix/", "right/"):
        name = name.removeprefix(prefix)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def local_time(text: str, zone: str | None) -> str:
    """`Thu, 07 Dec 2023 01:00:10 CET` in the machine's zone (English names, whatever the locale)."""
    at = datetime.fromisoformat(text)
    at = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(ZoneInfo(zone) if zone else None)
    return f"{DAYS[at.weekday()]}, {at.day:02d} {MONTHS[at.month - 1]} {at.year} {at:%H:%M:%S} {at.tzname()}"


def human_size(size: int | None) -> str:
    """Decimal units as the reference's table: `143 kB`, `1.5 MB`."""
    if size is None:
        return "-"
    if size < 10:
        return f"{size} B"
    exponent = min(int(math.floor(math.log(size, 1000))), 4)
    value = math.floor(size / 1000 ** exponent * 10 + 0.5) / 10
    return f"{value:.0f} {UNITS[exponent]}" if value >= 10 else f"{value:.1f} {UNITS[exponent]}"


# -- the verbs -------------------------------------------------------------------------


def backups(api: Api, args) -> int:
    rows = api.get(addon_path(args) + "/backups")["backups"]
    zone = local_zone()
    # The reference's four columns, then the kind: scheduled, manual, or pre-upgrade (taken by an engine upgrade).
    cells = [[r["id"], local_time(r["created_at"], zone), human_size(r.get("size")), r["status"], r["kind"]]
             for r in rows]
    print(table(["ID", "CREATED AT", "SIZE", "STATUS", "KIND"], cells))
    return 0


def backups_create(api: Api, args) -> int:
    requested = api.post(addon_path(args) + "/backups")
    operation = wait_for(api, requested["operation"]["id"], wait_s=BACKUP_WAIT_S)
    if operation["status"] != "succeeded":
        raise CliError(f"backup of {operation['addon']} failed: {operation.get('error') or 'no detail recorded'}")
    print("-----> Backup successfully finished")
    return 0


def backups_download(api: Api, args) -> int:
    path = addon_path(args)
    row = api.get(f"{path}/backups/{quote(args.backup or 'latest')}")["backup"]
    target = target_path(args.output, row["name"])  # refused before anything is fetched or written
    if not args.backup:
        print("-----> Selected the most recent successful backup", flush=True)
    download(api, f"{path}/backups/{quote(row['id'])}/archive", target)
    print(f"===> {target}")
    return 0


def backups_config(api: Api, args) -> int:
    path = addon_path(args) + "/backup_schedule"
    if args.schedule_at is None:
        schedule = api.get(path)["schedule"]
        print(f"-----> Periodic backups are done {schedule['description']}")
        print(f"{INDENT}Scheduled at {schedule['hour']}:{schedule['minute']:02d} {schedule['zone']}")
        return 0
    body = {"schedule_at": args.schedule_at}
    zone = local_zone()
    if zone:
        body["local_zone"] = zone
    elif len(args.schedule_at.split()) < 2:
        raise CliError(f"cannot tell this machine's time zone (TZ={os.environ.get('TZ', '')!r}, /etc/localtime): "
                       "name one, e.g. --schedule-at \"3:00 Europe/Paris\"")
    try:
        schedule = api.put(path, body)["schedule"]
    except ApiError as e:
        if (e.body.get("error") or {}).get("field") == "schedule_at":
            raise CliError("--schedule-at: " + str(e).removeprefix("field 'schedule_at': ")) from None
        raise
    print(f"-----> Periodic backups will be done {schedule['description']}")
    return 0


def backups_restore(api: Api, args) -> int:
    requested = api.post(f"{addon_path(args)}/backups/{quote(args.backup)}/restore")
    operation_id, backup = requested["operation"]["id"], requested["backup"]
    addon = requested["operation"]["addon"]
    # A backup of another addon (a fork): said where it came from, its app too when it is another one.
    source = requested.get("from_addon") or backup["addon"]
    elsewhere = "" if source == addon else f" of addon {source}" + (
        f" (app {requested['from_app']})" if requested.get("from_app") not in (None, need_app(args)) else "")
    print(f"-----> Addon {addon} is being restored from backup {backup['id']}{elsewhere} "
          f"({local_time(backup['created_at'], local_zone())}) ...", flush=True)
    follow_steps(api, operation_id, "restore", BACKUP_WAIT_S)
    print(f"-----> Addon {addon} has been restored from backup {backup['id']}{elsewhere}")
    return 0
