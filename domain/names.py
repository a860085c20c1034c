"""Names of apps and addons, as the reference writes them (`my-app`, `my-app-3030`)."""

from __future__ import annotations

import re

from domain.errors import InvalidName

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,46}[a-z0-9]$")


def check_app_name(app: str) -> str:
    if not isinstance(app, str) or not APP_NAME.fullmatch(app):
        raise InvalidName(
            f"invalid app name {app!r}: use 3 to 48 lowercase letters, digits and dashes, "
            "starting with a letter"
        )
    return app


def addon_name(app: str, number: int) -> str:
    """Addon names read like the reference's `my-app-3030`."""
    return f"{check_app_name(app)}-{number:04d}"
