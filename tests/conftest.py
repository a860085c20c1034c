"""Shared test set-up: the real local Docker hosts that `make setup` started."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSTS_FILE = Path(os.environ.get("REDIS_ADDONS_HOSTS", REPO / "var" / "hosts.json"))

# Servers the tests start run no scheduler: a scheduled backup falling due mid-test (at 1:00 in Paris)
# would hold an addon another step of the test wants. Scheduler tests drive its ticks with their own clock.
os.environ.setdefault("REDIS_ADDONS_SCHEDULER_TICK", "0")
