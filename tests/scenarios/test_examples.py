"""Every scenario file in examples/scenarios replays to the read models it expects."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from adapters.scenarios import ScenarioError, differences, replay, run

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "examples" / "scenarios").glob("*.json"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_the_scenario_replays_to_the_read_models_it_expects(path):
    title, problems = run(path)
    assert problems == [], title


def test_a_scenario_notices_a_read_model_that_is_not_as_expected():
    scenario = json.loads(SCENARIOS[0].read_text())
    expect = copy.deepcopy(scenario["expect"])
    expect["addons"][0]["plan"] = "redis-starter-8192"
    assert differences(replay(scenario["events"]), expect) == [f"addons: no row matches {expect['addons'][0]}"]


def test_a_history_with_a_missing_event_is_refused():
    events = json.loads(SCENARIOS[0].read_text())["events"]
    missing_creation = [e for e in events if e["type"] != "Addon.Requested"]
    with pytest.raises(ScenarioError, match="does not follow its aggregate's history"):
        replay(missing_creation)


def test_the_cli_runs_scenario_files_and_fails_on_a_difference(tmp_path, capsys):
    from adapters.cli.main import main

    assert main(["scenario", "run", str(SCENARIOS[0])]) == 0
    assert capsys.readouterr().out.startswith("-----> ok ")
    scenario = json.loads(SCENARIOS[0].read_text())
    scenario["expect"]["addons"][0]["host"] = "host-z"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(scenario))
    assert main(["scenario", "run", str(broken)]) == 1
    assert "FAILED" in capsys.readouterr().out
