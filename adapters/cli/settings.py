"""The database settings verbs (reference, "Persistence Mode", "Cache Mode", "Force TLS
Connections"): `--addon redis settings`, `settings-enable SETTING`, `settings-disable SETTING`,
and `tls-ca` (the CA certificate, PEM, on stdout). `--addon` is `redis` (the app's only Redis
addon) or an addon ID."""

from __future__ import annotations

import sys

from adapters.cli.backups import addon_path
from adapters.cli.client import Api
from adapters.cli.tables import table
from adapters.cli.verbs import follow_steps, quote

SETTINGS_WAIT_S = 900.0  # turning AOF on writes the whole dataset to the AOF first
# The settings as typed (the argument's choices) and as named in a sentence
SHOWN = {"rdb": "RDB persistence", "aof": "AOF persistence", "cache-mode": "cache mode", "force-tls": "force TLS"}
WARNING = " !     "


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def on_off(value: bool) -> str:
    return "on" if value else "off"


def settings(api: Api, args) -> int:
    shown = api.get(addon_path(args) + "/settings")["settings"]
    aof = on_off(shown["aof"]) + (f" (appendfsync {shown['aof_fsync']})" if shown["aof"] else "")
    if shown["tls_available"]:
        tls = on_off(shown["force_tls"]) + (" (TLS only)" if shown["force_tls"] else
                                            f" (TLS served on port {shown['tls_port']}, beside plaintext)")
    else:
        tls = f"off (not available: {shown['tls_unavailable']})"
    rows = [
        [capitalized(SHOWN["rdb"]), on_off(shown["rdb"])],
        [capitalized(SHOWN["aof"]), aof],
        [capitalized(SHOWN["cache-mode"]), f"{on_off(shown['cache_mode'])} (maxmemory-policy {shown['maxmemory_policy']})"],
        [capitalized(SHOWN["force-tls"]), tls],
        *([["TLS certificate", f"valid until {shown['tls_certificate_expires'][:10]} (renewed 30 days before)"]]
          if shown.get("tls_certificate_expires") else []),
        ["Engine version", shown["version"]],
        ["Idle timeout", f"{shown['timeout']} s"],
        ["Databases", f"{shown['databases']} (0 to {shown['databases'] - 1})"],
    ]
    print(table(["SETTING", "VALUE"], rows))
    print_warnings(shown["warnings"])
    return 0


def settings_enable(api: Api, args) -> int:
    return change(api, args, True)


def settings_disable(api: Api, args) -> int:
    return change(api, args, False)


def change(api: Api, args, enabled: bool) -> int:
    what, done = SHOWN[args.setting], "enabled" if enabled else "disabled"
    requested = api.put(f"{addon_path(args)}/settings/{quote(args.setting)}", {"enabled": enabled})
    operation_id, addon = requested["operation"]["id"], requested["operation"]["addon"]
    print(f"-----> {'Enabling' if enabled else 'Disabling'} {what} on {addon} ...", flush=True)
    follow_steps(api, operation_id, "settings change", SETTINGS_WAIT_S)
    print(f"-----> {capitalized(what)} {done} on {addon}")
    print_warnings(requested.get("warnings") or [])
    return 0


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"{WARNING}{warning}")


def tls_ca(api: Api, args) -> int:
    """Reference, "Force TLS Connections": the app must connect with TLS; this verifies the server."""
    with api.stream(addon_path(args) + "/tls_ca") as response:
        sys.stdout.write(response.read().decode("ascii"))
    sys.stdout.flush()
    return 0
