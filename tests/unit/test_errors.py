"""Every domain error names its rule and what an HTTP adapter should answer."""

from __future__ import annotations

import pytest

from domain import errors
from domain.errors import DomainError

ERRORS = [e for e in vars(errors).values() if isinstance(e, type) and issubclass(e, DomainError) and e is not DomainError]


def test_each_error_names_its_own_rule():
    rules = [e.rule for e in ERRORS]
    assert len(ERRORS) >= 10
    assert "domain-rule" not in rules and len(rules) == len(set(rules))


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_each_error_answers_a_client_or_capacity_status(error):
    assert error.status in (400, 404, 409, 422, 507)
