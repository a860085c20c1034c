"""Webhooks told of nodes down and back, degraded clusters, operations needing attention, failed scheduled
backups and outdated builds: `webhooks` lists them (the app's with --app, else every one), `webhooks-add
URL` registers one for the app (--all-apps: an operator's, for every app), `webhooks-remove ID`."""

from __future__ import annotations

from adapters.cli.client import Api, ApiError, CliError
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import need_app, quote


def _base(args) -> str:
    return f"/v1/apps/{quote(args.app)}/webhooks" if args.app else "/v1/webhooks"


def webhooks(api: Api, args) -> int:
    rows = api.get(_base(args))["webhooks"]
    if not rows:
        print("-----> No webhook" + (f" for {args.app}" if args.app else ""))
        return 0
    print(table(["ID", "URL", "APP", "DELIVERED", "DEAD LETTERS", "LAST ERROR"],
                [[w["id"], w["url"], w["app"] or "(all apps)", w["delivered"], w["dead_letters"],
                  f"{w['last_error']} ({w['last_error_at']})" if w["last_error"] else ""] for w in rows]))
    return 0


def webhooks_add(api: Api, args) -> int:
    if args.all_apps and args.app:
        raise CliError("--all-apps and --app name two scopes: give one")
    path = "/v1/webhooks" if args.all_apps else f"/v1/apps/{quote(need_app(args))}/webhooks"
    try:
        registered = api.post(path, {"url": args.url})
    except ApiError as e:
        if (e.body.get("error") or {}).get("field") == "url":
            raise CliError(str(e).removeprefix("field 'url': ")) from None
        raise
    webhook = registered["webhook"]
    print(f"-----> Webhook {webhook['id']} registered for {webhook['app'] or 'every app'}: {webhook['url']}")
    print(f"{INDENT}Signing secret (shown at registration only): {registered['secret']}")
    print(f"{INDENT}Each message is signed: X-Redis-Addons-Signature: sha256=HMAC-SHA256(secret, body); "
          "drop a repeated X-Redis-Addons-Delivery ID")
    return 0


def webhooks_remove(api: Api, args) -> int:
    removed = api.delete(f"{_base(args)}/{quote(args.id)}")["webhook"]
    print(f"-----> Webhook {removed['id']} removed: {removed['url']} is sent nothing more")
    return 0
