"""Embedding redis-addons in a Python program: provision an addon, use it, remove it.

Run from the repository after `make setup`:  .venv/bin/python examples/embedded.py
It uses its own data directory (a temporary one), on the local Docker hosts of var/hosts.json.
"""

import asyncio
import tempfile
from pathlib import Path

import redis.asyncio as redis

from engine import Settings, build

REPO = Path(__file__).resolve().parents[1]


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({"REDIS_ADDONS_HOME": home, "REDIS_ADDONS_HOSTS": str(REPO / "var" / "hosts.json")})
        async with build(settings) as engine:
            requested = await engine.add_addon("demo-app", "redis-starter-256")
            operation = await engine.wait_for_operation(requested["operation_id"])
            print(f"addon {requested['addon']}: {operation['status']}")
            for step in operation["steps"]:
                print(f"  {step['name']:<11} {step['status']:<10} {step['detail']}")

            url = (await engine.environment("demo-app"))["SCALINGO_REDIS_URL"]
            client = redis.from_url(url, decode_responses=True)
            await client.incr("visits")
            print("visits =", await client.get("visits"))
            await client.aclose()

            removal = await engine.remove_addon("demo-app", requested["addon"])
            print("removal:", (await engine.wait_for_operation(removal["operation_id"]))["status"])
            print("read models rebuilt from the log match:", (await engine.replay())["matches"])


if __name__ == "__main__":
    asyncio.run(main())
