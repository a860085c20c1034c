"""Restore into another addon on real Docker (issue 12, part 5, what Heroku calls a fork): a backup of a
Starter addon of one app restored into a new Starter addon of another app, then again once the addon it
was made of is removed (retention keeps its backups); an unknown backup ID is refused, starting nothing."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import UnknownBackup
from tests.integration import data
from tests.integration.conftest import remove_everything_of, running_addon
from tests.integration.test_backups import backup_now


async def test_a_backup_of_one_apps_addon_restored_into_a_new_addon_of_another_app(engine, app_name):
    other_app = f"{app_name}-b"
    try:
        source = await running_addon(engine, app_name)
        known = data.expected(500)
        await data.write((await engine.environment(app_name))["REDIS_URL"], known)
        backup = (await backup_now(engine, app_name))["backup"]
        target = await running_addon(engine, other_app)
        target_url = (await engine.environment(other_app))["REDIS_URL"]
        await data.write(target_url, {1: {"the-targets-own": "replaced"}})

        with pytest.raises(UnknownBackup, match="no backup"):
            await engine.backups.restore(other_app, target, str(uuid.uuid4()))
        started = await engine.backups.restore(other_app, target, backup["id"])
        assert (started["from_addon"], started["from_app"]) == (source, app_name)
        assert (await engine.wait_for_operation(started["operation_id"], timeout=120))["status"] == "succeeded"
        assert await data.read(target_url, known) == known
        assert (await engine.environment(other_app))["REDIS_URL"] == target_url

        removal = await engine.remove_addon(app_name, source)
        assert (await engine.wait_for_operation(removal["operation_id"], timeout=120))["status"] == "succeeded"
        await data.write(target_url, {0: {"written-since": "replaced again"}})
        again = await engine.backups.restore(other_app, target, backup["id"])  # of a removed addon
        assert (await engine.wait_for_operation(again["operation_id"], timeout=120))["status"] == "succeeded"
        assert await data.read(target_url, known) == known
        kinds = [op["kind"] for op in await engine.operations(target)]
        assert kinds.count("restore") == 2  # the unknown ID started nothing
    finally:
        await remove_everything_of(other_app)
