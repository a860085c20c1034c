"""Entry point of the `redis-addons` console script (argparse, verbs shaped after the reference)."""

from __future__ import annotations

import argparse
import sys

from adapters.cli import backups, database_version, maintenance, nodes, settings, verbs, webhooks
from adapters.cli import stats
from adapters.cli import tokens
from adapters.cli import hosts
from adapters.cli import credentials
from adapters.cli.client import Api, CliError


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="redis-addons",
        description="Managed Redis addons for your apps. Talks to the API at $REDIS_ADDONS_API with "
        "$REDIS_ADDONS_TOKEN; without them, to the server whose data directory is $REDIS_ADDONS_HOME (its "
        "api-url and api-token), else the one `serve` or `login` recorded in $XDG_CONFIG_HOME/redis-addons, "
        "else ./var's, else http://127.0.0.1:8470.",
    )
    main.add_argument("-a", "--app", help="the app to act on")
    main.add_argument("--addon", help="the addon to act on (an ID like my-app-3030; for the backup and settings "
                                      "verbs also redis: the app's only Redis addon)")
    sub = main.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, run, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        # --app / --addon are also accepted after the verb; SUPPRESS keeps a value given before it
        p.add_argument("-a", "--app", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--addon", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(run=run)
        return p

    verb("addons-plans", verbs.addons_plans, "list the plans of an addon provider").add_argument(
        "provider", nargs="?", default="redis", help="addon provider (redis)")
    verb("versions", verbs.versions, "list the engine versions, whether they have TLS, and the exact package each "
         "host's image was built from").add_argument("provider", nargs="?", default="redis", help="addon provider (redis)")
    p = verb("addons-add", verbs.addons_add, "provision an addon for the app and wait until it is ready")
    p.add_argument("provider", help="addon provider (redis)")
    p.add_argument("plan", help="plan, e.g. redis-starter-1024 (see addons-plans)")
    p.add_argument("--version", help="engine version (default: the catalog's default)")
    verb("addons", verbs.addons, "list the app's addons").add_argument(
        "--all", action="store_true", help="include removed addons")
    p = verb("addons-upgrade", verbs.addons_upgrade,
             "change an addon's plan (upgrade or downgrade) and follow the operation step by step")
    p.add_argument("addon_id", metavar="ID", help="addon ID, e.g. my-app-3030 (see addons)")
    p.add_argument("plan", help="the new plan, e.g. redis-starter-2048 (see addons-plans)")
    verb("addons-remove", verbs.addons_remove, "remove an addon (its backups are kept)").add_argument(
        "addon_id", metavar="ID", help="addon ID, e.g. my-app-3030")
    verb("env", verbs.env, "print the app's environment variables")
    p = verb("apps-register", verbs.apps_register,
             "register an app and how to restart it when its environment changes (again: change it)")
    p.add_argument("name", nargs="?", metavar="APP", help="the app (or --app)")
    p.add_argument("--restart", choices=["docker", "hook", "none"],
                   help="docker: recreate its containers found by --label; hook: POST to --url; none "
                        "(default: docker with --label, hook with --url, else none)")
    p.add_argument("--label", help="KEY=VALUE label of the app's Docker containers, on any host")
    p.add_argument("--url", help="loopback http(s) URL of the app's restart hook")
    verb("apps-info", verbs.apps_info, "show the app, how it is restarted, and its addons")
    verb("operations", verbs.operations,
         "list operations with their steps and outcome (--addon ID to filter); --id OPERATION for one's timeline").add_argument(
        "--id", dest="operation_id", metavar="OPERATION", help="show this operation's timeline (its ID or the start of it)")
    verb("nodes", nodes.nodes, "the addon's nodes (--addon redis or ID): role, host, address, ports, version, "
         "state; --all shows retired ones").add_argument("--all", action="store_true", help="retired nodes too")
    verb("stats", stats.stats, "the addon's stats (--addon redis or ID), as the dashboard shows them: each node's CPU, "
         "memory (current, highest since its restart, free), swap and size on disk, and its database's figures")
    verb("operations-retry", verbs.operations_retry,
         "try again now an operation whose addon needs attention (its undo could not finish)").add_argument(
        "operation_id", metavar="OPERATION", help="its ID or the start of it (see operations)")
    verb("backups", backups.backups, "list the addon's backups (--addon redis or ID)")
    verb("backups-create", backups.backups_create, "make a manual backup of the addon and wait until it is done")
    p = verb("backups-download", backups.backups_download,
             "download a backup's archive (default: the most recent successful one), resuming an interrupted download")
    p.add_argument("--backup", metavar="ID", help="the backup to download (see backups)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="a directory to put the archive in, or a file path (default: the current directory)")
    verb("backups-config", backups.backups_config,
         "show when the daily backup runs; --schedule-at to change it").add_argument(
        "--schedule-at", metavar="TIME",
        help='an hour in this machine\'s time zone (3), or "H:MM ZONE" ("4:00 UTC", "4:30 America/New_York")')
    verb("backups-restore", backups.backups_restore,
         "replace the addon's data with a backup's and follow the operation step by step").add_argument(
        "--backup", metavar="ID", required=True, help="the backup to restore (see backups; latest: the most recent successful)")
    verb("settings", settings.settings,
         "show the addon's database settings: persistence (RDB, AOF), cache mode, force TLS (--addon redis or ID)")
    for name, run, doing in (("settings-enable", settings.settings_enable, "turn on"),
                             ("settings-disable", settings.settings_disable, "turn off")):
        verb(name, run, f"{doing} one of the addon's database settings and follow the operation step by step").add_argument(
            "setting", choices=list(settings.SHOWN),
            help="rdb (snapshot persistence), aof (append-only file persistence), cache-mode (evict the least "
                 "recently used keys when memory is full) or force-tls")
    verb("database-version", database_version.database_version,
         "show the engine version the addon runs, whether it has TLS or is retired, and the upgrades available to it")
    database_version.upgrade_arguments(verb(
        "database-upgrade", database_version.database_upgrade,
        "upgrade the addon's engine to VERSION, or to the next allowed step, and follow the operation step by step "
        "(reference: the latest minor first, then the next major; the app is restarted at the end)"))
    verb("maintenance", maintenance.maintenance, "list the addons (of --app, or all) running an outdated build of "
         "their version: a security update rebuilt its image since their nodes were made")
    verb("database-maintenance", maintenance.database_maintenance,
         "move the addon onto the current build of the version it runs and follow the operation step by step "
         "(Starter: a restart with its data, a short downtime; Business: no downtime; the app is restarted at the end)")
    p = verb("database-maintenance-window", maintenance.database_maintenance_window,
             "show the addon's weekly maintenance window, in which the engine moves it onto its version's current "
             "build when it runs an outdated one; --at to set it, --off to remove it")
    p.add_argument("--at", metavar="WINDOW", help='a day and an hour in this machine\'s time zone ("sunday 3"), or '
                   'with a zone ("sun 4:00 UTC", "tue 22:30 America/New_York"); open for an hour')
    p.add_argument("--off", action="store_true", help="no window: the addon is moved only when you ask")
    verb("webhooks", webhooks.webhooks, "list the webhooks told of the app's addons (--app), or every webhook, "
         "with their deliveries and dead letters")
    p = verb("webhooks-add", webhooks.webhooks_add, "register a webhook (http on loopback, or https) told of nodes down "
             "and back, degraded clusters, operations needing attention, failed scheduled backups, outdated builds")
    p.add_argument("url", metavar="URL")
    p.add_argument("--all-apps", action="store_true", help="an operator's webhook: told of every app's addons")
    verb("webhooks-remove", webhooks.webhooks_remove, "remove a webhook (--app: one of the app's)").add_argument(
        "id", metavar="ID")
    verb("rotate-credentials", credentials.rotate_credentials,
         "replace the addon's password with no downtime (--addon: default redis) and follow the operation step by "
         "step: the new one is accepted beside the old, the app restarts with it, then the old one is refused")
    p = sub.add_parser("tokens", help="the operator's tokens scoped to apps: list; create --name NAME --app APP "
                       "[--app APP] [--grant metrics] (prints the secret once); revoke ID",
                       description="tokens scoped to apps: list, create, revoke")
    p.set_defaults(run=tokens.tokens)
    tokens.arguments(p)
    p = sub.add_parser("hosts", help="the operator's Docker hosts: list (capacity, used memory and ports, nodes); "
                       "add NAME --url URL --bind ADDRESS --ports A-B --memory-mib N; drain NAME; remove NAME",
                       description="the installation's Docker hosts: list, add, drain, remove")
    p.set_defaults(run=hosts.hosts)
    hosts.arguments(p)
    verb("tls-ca", settings.tls_ca,
         "print the CA certificate (PEM) that clients verify the addon's TLS certificate with: tls-ca > ca.pem")
    verb("replay", verbs.replay, "rebuild the read models from the event log and check they match")
    p = verb("scenario", None, "replay a scenario file's events through the domain and the read models, "
             "and check the read models it expects (runs locally, no server needed)")
    p.add_argument("action", choices=["run"])
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files, e.g. examples/scenarios/*.json")
    p = verb("backup-key", None, "the keys that seal backup archives at rest, on the engine's machine ($REDIS_ADDONS_HOME): "
             "show them; rotate (a new key seals new backups); reencrypt (old archives, and plain ones from before "
             "encryption, sealed with the current key); drop ID (a key no archive uses)")
    p.add_argument("action", choices=["show", "rotate", "reencrypt", "drop"])
    p.add_argument("key_id", nargs="?", metavar="ID", help="for drop: the key's ID (see backup-key show)")
    from adapters.cli.export import arguments as recovery_arguments

    recovery_arguments(
        verb("export", None, "write the control plane's whole state (event store, addon passwords, webhook secrets, CA, "
             "backup keyring, tokens, hosts, checkpoints) as one archive sealed with a passphrase, on the engine's "
             "machine ($REDIS_ADDONS_HOME); backups themselves are not in it"),
        verb("restore-control-plane", None, "restore an `export` archive into a new, empty data directory "
             "($REDIS_ADDONS_HOME) and an empty event store, then start the engine there"))
    from adapters.cli.host_certificates import arguments as host_certificate_arguments

    host_certificate_arguments(verb("host-certificates", None, "issue from the installation's CA a Docker host's "
                                    "server certificate and the engine's client certificate, for its API over TCP with "
                                    "mutual TLS; prints the host's dockerd flags and its hosts.json entry"))
    p = verb("secrets-key", None, "new FILE: write a new installation key (0600) that seals the secrets an "
             "installation on PostgreSQL keeps there; give every engine process a copy (REDIS_ADDONS_SECRETS_KEY_FILE)")
    p.add_argument("action", choices=["new"])
    p.add_argument("file", metavar="FILE")
    p = verb("serve", None, "run the engine and the HTTP API in this process")
    p.add_argument("--host", help="address to listen on (default: settings, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: settings, 8470)")
    verb("login", None, "check an API token against a server and record both in your configuration directory "
         "($XDG_CONFIG_HOME/redis-addons), so the CLI finds that server from any directory; the token is read "
         "from $REDIS_ADDONS_TOKEN, a prompt, or standard input").add_argument(
        "--api", required=True, metavar="URL", help="the server's API, e.g. http://127.0.0.1:8470")
    verb("logout", None, "forget the server that `login` or `serve` recorded")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.verb == "serve":
            from adapters.cli.server import run_server  # imports the engine and Docker client only here

            return run_server(args)
        if args.verb in ("login", "logout"):
            from adapters.cli import login

            return getattr(login, args.verb)(args)
        if args.verb == "backup-key":
            from adapters.cli.backup_key import backup_key

            return backup_key(args)
        if args.verb in ("export", "restore-control-plane"):
            from adapters.cli import export

            return (export.export if args.verb == "export" else export.restore)(args)
        if args.verb == "host-certificates":
            from adapters.cli.host_certificates import host_certificates

            return host_certificates(args)
        if args.verb == "secrets-key":
            from adapters.cli.secrets_key import secrets_key

            return secrets_key(args)
        if args.verb == "scenario":
            from adapters.cli.scenario import run_scenarios

            return run_scenarios(args.files)
        return args.run(Api.from_env(), args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
