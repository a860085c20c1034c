"""`redis-addons scenario run FILE...`: replay scenario files locally and say what differs."""

from __future__ import annotations

import json

from adapters.cli.client import CliError
from adapters.scenarios import ScenarioError, run


def run_scenarios(files: list[str]) -> int:
    failed = 0
    for path in files:
        try:
            title, problems = run(path)
        except FileNotFoundError:
            raise CliError(f"no scenario file at {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise CliError(f"{path} is not a scenario file: {type(e).__name__}: {e}") from None
        except ScenarioError as e:
            raise CliError(f"{path}: {e}") from None
        if problems:
            failed += 1
            print(f"-----> FAILED {path}: {title}")
            for problem in problems:
                print(f"       {problem}")
        else:
            print(f"-----> ok     {path}: {title}")
    return 1 if failed else 0
