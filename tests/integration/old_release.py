"""An old release of this project, run from a git worktree with the project's own .venv, to leave a
data directory the current code must read (issue 10: existing installations keep working).

The venv holds this project in editable mode; PYTHONPATH=<worktree> comes before the editable
finder (which setuptools appends to sys.meta_path), and the driver is run with -P so its own
directory (the current tree's tests/integration) is not on sys.path: the release's code wins. The
driver prints the engine module it imported, and `run` checks it is the worktree's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import HOSTS_FILE, REPO

# The last release before the engine was reshaped (a Cluster per addon, operations recording their
# steps, upcast events).
RELEASE = "a79d645"
DRIVER = Path(__file__).with_name("old_release_driver.py")
# The addons the release leaves, one app each (`<prefix>-<role>`): see the driver's `scenario`.
ROLES = ("running", "moved", "backed", "forced", "pretls", "removed", "crash")


class ReleaseMissing(Exception):
    pass


def check_release_present() -> None:
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{RELEASE}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        raise ReleaseMissing(
            f"this clone lacks the release commit {RELEASE}, which the old-data-directory test runs: "
            "clone with its history (`git fetch --unshallow`, or `fetch-depth: 0` in CI)")


@contextlib.contextmanager
def release_worktree(parent: Path):
    check_release_present()
    tree = Path(parent) / f"release-{RELEASE}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), RELEASE],
                   check=True, capture_output=True, text=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       check=True, capture_output=True, text=True)


def run(tree: Path, home: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """The driver with the release's code on `home`; a crash point must kill it, else it must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_ADDONS_")}
    env.update(PYTHONPATH=str(tree), REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE),
               REDIS_ADDONS_SCHEDULER_TICK="0")
    if crash_at:
        env["REDIS_ADDONS_CRASH_AT"] = crash_at
    child = subprocess.run([sys.executable, "-P", str(DRIVER), *args], env=env, cwd=tree,
                           capture_output=True, text=True, timeout=120)
    said = f"stdout: {child.stdout[-3000:]}\nstderr: {child.stderr[-3000:]}"
    expected = -signal.SIGKILL if crash_at else 0
    assert child.returncode == expected, f"the release's driver {args[0]} ended with {child.returncode}, not {expected}\n{said}"
    engine_file = next((line.split(" ", 1)[1] for line in child.stdout.splitlines() if line.startswith("ENGINE ")), "")
    assert Path(engine_file).resolve().is_relative_to(tree.resolve()), f"not the release's code that ran: {engine_file}"
    return child


def make_old_data_directory(tree: Path, home: Path, prefix: str, crash_at: str = "change_plan.start_new:after") -> dict:
    """With the release: addons running, plan-changed, backed up (AOF on, a schedule), TLS-forced,
    made before TLS and then served it, removed, and one whose plan change was killed at `crash_at`.
    Returns what the release showed of each (rows, environment, settings, backup)."""
    out = home.parent / f"{prefix}-made.json"
    run(tree, home, "scenario", prefix, str(out))
    made = json.loads(out.read_text())
    crashed = made["addons"]["crash"]
    change = home.parent / f"{prefix}-crash.json"
    run(tree, home, "crash", crashed["app"], crashed["addon"], "redis-starter-256", str(change), crash_at=crash_at)
    crashed["change"] = json.loads(change.read_text())
    crashed["crash_at"] = crash_at
    return made


def dump_store(tree: Path, store: Path, out: Path) -> list[dict]:
    """Every aggregate of an event store as the release reads it."""
    run(tree, store.parent, "dump", str(store), str(out))
    return json.loads(out.read_text())
