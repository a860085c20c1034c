"""A year of backups, simulated day by day through the Backup aggregate and the retention policy."""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from adapters.retention_scenario import differences, simulate
from adapters.scenarios import ScenarioError, run

YEAR = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "retention-a-year.json"
SCENARIO = json.loads(YEAR.read_text())


@pytest.fixture(scope="module")
def year():
    return simulate(SCENARIO)


def test_the_year_replays_to_the_backups_it_expects():
    title, problems = run(YEAR)
    assert problems == [], title


def test_a_kept_backup_left_out_of_the_expectation_is_named(year):
    expect = copy.deepcopy(SCENARIO["expect"])
    expect["shop-4553"]["kept"] = [e for e in expect["shop-4553"]["kept"]
                                   if e["created_at"] != "2025-03-18T01:00:00+01:00"]
    assert differences(year, expect) == [
        "shop-4553: the scheduled backup of 2025-03-18T01:00:00+01:00 is kept for weekly, not expected"]


def test_a_reason_that_differs_is_named_with_both_sides(year):
    expect = copy.deepcopy(SCENARIO["expect"])
    last = next(e for e in expect["bank-7070"]["kept"] if e["created_at"] == "2025-03-31T01:00:00+02:00")
    last["kept_for"] = ["daily"]
    assert differences(year, expect) == [
        "bank-7070: the scheduled backup of 2025-03-31T01:00:00+02:00 is kept for daily, weekly, expected daily"]


def test_an_expected_backup_that_was_deleted_and_a_wrong_count_are_named(year):
    expect = copy.deepcopy(SCENARIO["expect"])
    expect["bank-7070"]["kept"].append({"created_at": "2025-03-03T01:00:00+01:00", "kind": "scheduled",
                                        "kept_for": ["weekly"]})
    expect["bank-7070"]["counts"]["weekly"] = 9
    assert differences(year, expect) == [
        "bank-7070: the scheduled backup of 2025-03-03T01:00:00+01:00 was deleted, expected kept for weekly",
        "bank-7070: 8 kept as weekly, expected 9",
    ]


def test_the_decisions_are_events_and_replaying_them_gives_the_same_kept_backups(year):
    kinds = Counter(type(e).__name__ for e in year.events)
    assert kinds["Kept"] and kinds["Expired"] and kinds["Deleted"] == kinds["Expired"]
    assert kinds["Failed"] == 4
    history = defaultdict(list)
    for event in year.events:
        history[event.originator_id].append(event)
    replayed = {}
    for backup_id, events in history.items():
        aggregate = None
        for event in events:
            aggregate = event.mutate(aggregate)
        replayed[backup_id] = aggregate
    for name, backups in year.backups.items():
        assert {(b.id, b.kept_for) for b in replayed.values() if b.addon == name and not b.deleted} == \
            {(b.id, b.kept_for) for b in year.kept(name)}


def test_a_failed_backup_is_expired_and_deleted_the_same_day(year):
    failed = [b for b in year.backups["bank-7070"] if b.status == "failed"]
    assert [b.day for b in failed] == ["2024-12-01", "2025-03-03"]
    assert all(b.deleted for b in failed)


def test_a_scenario_on_a_sandbox_plan_is_refused(tmp_path):
    scenario = copy.deepcopy(SCENARIO)
    scenario["addons"]["shop-4553"]["tier"] = "sandbox"
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(scenario))
    with pytest.raises(ScenarioError, match="shop-4553: .*sandbox"):
        run(path)


def test_the_cli_runs_a_retention_scenario_and_fails_on_a_difference(tmp_path, capsys):
    from adapters.cli.main import main

    assert main(["scenario", "run", str(YEAR)]) == 0
    assert capsys.readouterr().out.startswith("-----> ok ")
    scenario = copy.deepcopy(SCENARIO)
    scenario["expect"]["shop-4553"]["counts"]["manual"] = 11
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(scenario))
    assert main(["scenario", "run", str(broken)]) == 1
    assert "shop-4553: 10 kept as manual, expected 11" in capsys.readouterr().out
