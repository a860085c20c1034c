"""Shared test set-up: the real local Docker hosts that `make setup` started."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSTS_FILE = Path(os.environ.get("REDIS_ADDONS_HOSTS", REPO / "var" / "hosts.json"))
