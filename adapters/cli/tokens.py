"""Access tokens scoped to apps, the operator's to hand out: `tokens create --name N --app A [--app B]
[--grant metrics]` (the secret is printed once), `tokens list`, `tokens revoke ID`."""

from __future__ import annotations

import argparse

from adapters.cli.client import Api, CliError
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import quote


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "create", "revoke"], default="list")
    p.add_argument("id", nargs="?", metavar="ID", help="revoke: the token's ID (see tokens list)")
    p.add_argument("--name", help="create: who or what holds the token, e.g. ci-deploy")
    # Its own dest: the global --app names the one app a verb acts on, this one a token's apps.
    p.add_argument("-a", "--app", dest="apps", action="append", metavar="APP",
                   help="create: an app the token may see and act on (repeat for more)")
    p.add_argument("--grant", dest="grants", action="append", choices=["metrics"],
                   help="create: metrics also opens GET /metrics (every app's figures)")


def tokens(api: Api, args) -> int:
    if args.action != "revoke" and args.id:
        raise CliError(f"`tokens {args.action}` takes no ID (did you mean `tokens revoke {args.id}`?)")
    return {"list": listed, "create": create, "revoke": revoke}[args.action](api, args)


def listed(api: Api, args) -> int:
    rows = api.get("/v1/tokens")["tokens"]
    if not rows:
        print("-----> No token: create one with `redis-addons tokens create --name NAME --app APP`")
        return 0
    print(table(["ID", "NAME", "APPS", "GRANTS", "CREATED (UTC)", "REVOKED (UTC)"],
                [[t["id"], t["name"], ", ".join(t["apps"]), ", ".join(t["grants"]),
                  t["created_at"][:19].replace("T", " "), (t["revoked_at"] or "")[:19].replace("T", " ")]
                 for t in rows]))
    return 0


def create(api: Api, args) -> int:
    if not args.name or not args.name.strip():
        raise CliError("`tokens create` needs --name NAME (who or what holds the token)")
    if not args.apps:
        raise CliError("`tokens create` needs at least one --app APP: a token is scoped to apps")
    created = api.post("/v1/tokens", {"name": args.name, "apps": args.apps, "grants": args.grants or []})
    token = created["token"]
    print(f"-----> Token {token['id']} ({token['name']}) created for {', '.join(token['apps'])}"
          + (f", granted {', '.join(token['grants'])}" if token["grants"] else ""))
    print(f"{INDENT}Secret (shown now only; the server keeps its SHA-256): {created['secret']}")
    print(f"{INDENT}Use it as REDIS_ADDONS_TOKEN, or `Authorization: Bearer <secret>`; revoke it with "
          f"`redis-addons tokens revoke {token['id']}`")
    return 0


def revoke(api: Api, args) -> int:
    if not args.id:
        raise CliError("`tokens revoke` needs the token's ID (see `redis-addons tokens list`)")
    token = api.delete(f"/v1/tokens/{quote(args.id)}")["token"]
    print(f"-----> Token {token['id']} ({token['name']}) revoked at {token['revoked_at']}: it is refused from now on")
    return 0
