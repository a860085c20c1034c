"""App names and addon names (the reference's `my-app-3030`)."""

from __future__ import annotations

import pytest

from domain.names import addon_name, check_app_name
from domain.errors import InvalidName


@pytest.mark.parametrize(
    "app",
    ["my-app", "abc", "a1-b2-c3", "app2", "my--app", "x" * 48],
    ids=["dashed", "shortest", "letters-digits-dashes", "ends-with-digit", "double-dash", "longest"],
)
def test_valid_app_names(app):
    assert check_app_name(app) == app


@pytest.mark.parametrize(
    "app",
    ["", "ab", "My-App", "my_app", "-app", "app-", "1app", "x" * 49, "my app", "my.app", "my-app\n", "\nmy-app",
     "my-app\n-x", "émile", None, 42],
    ids=["empty", "too-short", "uppercase", "underscore", "leading-dash", "trailing-dash", "leading-digit",
         "too-long", "space", "dot", "trailing-newline", "leading-newline", "inner-newline", "non-ascii",
         "none", "not-a-string"],
)
def test_invalid_app_names_are_refused_with_the_rule(app):
    with pytest.raises(InvalidName, match="invalid app name") as refused:
        check_app_name(app)
    assert (refused.value.rule, refused.value.status) == ("invalid-name", 400)


@pytest.mark.parametrize(
    "app, number, name",
    [("my-app", 3030, "my-app-3030"), ("my-app", 7, "my-app-0007"), ("abc", 0, "abc-0000"), ("abc", 12345, "abc-12345")],
)
def test_addon_names_read_like_the_reference(app, number, name):
    assert addon_name(app, number) == name


@pytest.mark.parametrize("app", ["My-App", "ab", "my-app\n"])
def test_an_addon_name_is_never_made_from_an_invalid_app_name(app):
    with pytest.raises(InvalidName):
        addon_name(app, 1)
