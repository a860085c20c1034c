"""Retention scenarios: a simulated year of backups through the Backup aggregate and the retention
policy, then the surviving backups compared with what the scenario expects (DESIGN §3, §8).

A file with `"simulate": "retention"` (run by adapters.scenarios.run):
  {"title", "zone": retention calendar (default Europe/Paris), "start": "YYYY-MM-DD", "days": N,
   "schedule": "1:00 Europe/Paris", "backup_takes_s": seconds,
   "addons": {name: {"app", "tier", "failed_days": ["YYYY-MM-DD"], "manual": [ISO times]}},
   "expect": {name: {"counts": {reason: n}, "kept": [{"created_at", "kind", "kept_for": [...]}]}}}
A manual time without an offset is read in "zone". Each simulated day: the scheduled backup,
the manual ones of that day, then one sweep: decide -> Kept/Expired -> Deleted for the expired.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from adapters.scenarios import ScenarioError
from domain.backup import Backup
from domain.errors import DomainError
from domain.retention import REASONS, BackupFacts, decide
from domain.schedule import PLATFORM_ZONE, Schedule


@dataclass
class Simulation:
    zone: ZoneInfo
    backups: dict[str, list[Backup]] = field(default_factory=dict)  # every backup made, per addon
    events: list = field(default_factory=list)  # every event, in the order they happened

    def kept(self, addon: str) -> list[Backup]:
        return [b for b in self.backups[addon] if not b.deleted]


def run(scenario: dict) -> tuple[str, list[str]]:
    return scenario["title"], differences(simulate(scenario), scenario["expect"])


def simulate(scenario: dict) -> Simulation:
    zone = ZoneInfo(scenario.get("zone", PLATFORM_ZONE))
    schedule = Schedule.parse(scenario["schedule"], local_zone=zone.key)
    takes = timedelta(seconds=scenario.get("backup_takes_s", 5))
    first = date.fromisoformat(scenario["start"])
    days = [first + timedelta(days=n) for n in range(scenario["days"])]
    sim = Simulation(zone, {name: [] for name in scenario["addons"]})
    manual = {name: manual_times(name, spec, zone, days) for name, spec in scenario["addons"].items()}
    for day in days:
        for name, spec in scenario["addons"].items():
            failed = day.isoformat() in spec.get("failed_days", ())
            made = [make(sim, name, spec, "scheduled", schedule.on(day), takes, failed, day)]
            made += [make(sim, name, spec, "manual", at, takes) for at in manual[name].get(day, ())]
            # The sweep runs once the day's backups are over, as the engine's next tick would.
            sweep(sim, name, spec["tier"], max(b.created_at for b in made) + takes)
    return sim


def manual_times(name: str, spec: dict, zone: ZoneInfo, days: list[date]) -> dict[date, list[datetime]]:
    by_day: dict[date, list[datetime]] = {}
    for text in spec.get("manual", ()):
        at = datetime.fromisoformat(text)
        at = at if at.tzinfo else at.replace(tzinfo=zone)  # fold=0: a repeated hour is its first time
        day = at.astimezone(zone).date()
        if not days[0] <= day <= days[-1]:
            raise ScenarioError(f"{name}: the manual backup at {text} is outside the simulated days")
        by_day.setdefault(day, []).append(at)
    return {day: sorted(times) for day, times in by_day.items()}


def make(sim: Simulation, name: str, spec: dict, kind: str, at: datetime, takes: timedelta,
         failed: bool = False, day: date | None = None) -> Backup:
    try:
        backup = Backup.request(addon=name, app=spec["app"], tier=spec["tier"], kind=kind, requested_at=at,
                                day=day)
    except DomainError as e:
        raise ScenarioError(f"{name}: {e}") from None
    backup.mark_started()
    if failed:
        backup.mark_failed(reason="simulated: the save failed")
    else:
        digest = hashlib.sha256(f"{name} {at.isoformat()}".encode()).hexdigest()
        backup.mark_done(size=1024, sha256=digest, location=f"simulated/{name}/{backup.name}")
    sim.backups[name].append(backup)
    sim.events += backup.collect_events()
    return backup


def sweep(sim: Simulation, name: str, tier: str, now: datetime) -> None:
    """What the engine's sweep does, the archive store aside: decide, record, delete the expired."""
    alive = sim.kept(name)
    facts = [BackupFacts(id=str(b.id), kind=b.kind, created_at=b.created_at, status=b.status) for b in alive]
    decisions = decide(facts, tier, now, sim.zone.key)
    for backup in alive:
        reasons = decisions.get(str(backup.id))
        if reasons is None:
            continue
        backup.decide_retention(reasons)
        if backup.expired:
            backup.mark_deleted()
        sim.events += backup.collect_events()


def differences(sim: Simulation, expect: dict) -> list[str]:
    problems = [f"{name}: no expectation given for this addon" for name in sim.backups if name not in expect]
    for name, wanted in expect.items():
        if name not in sim.backups:
            problems.append(f"{name}: expected, but no such addon in the scenario")
            continue
        problems += kept_differences(sim, name, wanted.get("kept", []))
        problems += count_differences(sim, name, wanted.get("counts", {}))
    return problems


def kept_differences(sim: Simulation, name: str, wanted: list[dict]) -> list[str]:
    """Backups are matched by their time and kind: a reason that differs is one difference, not two."""
    actual = {(b.created_at, b.kind): tuple(b.kept_for) for b in sim.kept(name)}
    expected = {(instant(e["created_at"], sim.zone), e["kind"]): tuple(e["kept_for"]) for e in wanted}
    problems = []
    for key in sorted(actual.keys() | expected.keys()):
        what = f"{name}: the {key[1]} backup of {key[0].astimezone(sim.zone).isoformat()}"
        if key not in expected:
            problems.append(f"{what} is kept for {', '.join(actual[key])}, not expected")
        elif key not in actual:
            made = any((b.created_at, b.kind) == key for b in sim.backups[name])
            fate = "was deleted" if made else "was never made"
            problems.append(f"{what} {fate}, expected kept for {', '.join(expected[key])}")
        elif actual[key] != expected[key]:
            problems.append(f"{what} is kept for {', '.join(actual[key])}, expected {', '.join(expected[key])}")
    return problems


def count_differences(sim: Simulation, name: str, wanted: dict[str, int]) -> list[str]:
    counts = Counter(reason for b in sim.kept(name) for reason in b.kept_for)
    return [f"{name}: {counts[reason]} kept as {reason}, expected {wanted[reason]}"
            for reason in REASONS if reason in wanted and counts[reason] != wanted[reason]]


def instant(text: str, zone: ZoneInfo) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=zone)
