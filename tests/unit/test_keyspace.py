"""A node holds the saved data when each database has its keys, less at most those with an expiry."""

import pytest

from domain.keyspace import differences

SAVED = {"keys": {"0": 100, "3": 10}, "expires": {"0": 30, "3": 0}}


@pytest.mark.parametrize("found, problems", [
    ({"keys": {"0": 100, "3": 10}}, []),
    ({"keys": {"0": 70, "3": 10}}, []),  # every expiring key expired meanwhile
    ({"keys": {"0": 69, "3": 10}}, ["database 0: 69 keys, 100 saved (30 of them with an expiry)"]),
    ({"keys": {"0": 100, "3": 9}}, ["database 3: 9 keys, 10 saved (0 of them with an expiry)"]),
    ({"keys": {"0": 101, "3": 10}}, ["database 0: 101 keys, 100 saved (30 of them with an expiry)"]),
    ({"keys": {}}, ["database 0: 0 keys, 100 saved (30 of them with an expiry)",
                    "database 3: 0 keys, 10 saved (0 of them with an expiry)"]),
])
def test_keys_that_expired_are_no_loss_and_anything_else_is(found, problems):
    assert differences(SAVED, found) == problems
