"""`rotate-credentials`: the addon's password replaced with no downtime (engine/credentials_rotation.py)."""

from __future__ import annotations

from urllib.parse import quote

from adapters.cli.client import Api
from adapters.cli.verbs import PLAN_CHANGE_WAIT_S, follow_steps, need_app


def rotate_credentials(api: Api, args) -> int:
    addon = args.addon or "redis"  # the app's only Redis addon unless --addon names one
    requested = api.post(f"/v1/apps/{quote(need_app(args))}/addons/{quote(addon)}/credentials/rotate")
    name = requested["operation"]["addon"]
    print(f"-----> Rotating the password of {name}: the new one is accepted beside the old, the app restarts with "
          "it, then the old one is refused ...", flush=True)
    follow_steps(api, requested["operation"]["id"], "password rotation", PLAN_CHANGE_WAIT_S)
    print(f"-----> {name} accepts the new password only: see it with `redis-addons --app {args.app} env`")
    return 0
