"""The Debian root filesystems Valkey 8 and Redis 8 are built from (scripts/debian_roots.py), and how an image
built from one is recorded and checked (scripts/image_record.py, scripts/build-images.py): from the host's
mirror, refreshed with the host's lists, refused when stale; its packages, not the host's, decide a rebuild.
tests/integration/test_versions.py checks the real images against the real roots."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.unit.test_image_builds import FORMAT, build_images, load, record

roots = load("debian_roots", "debian_roots.py")

MIRRORS = ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")
VALKEY = {"valkey-server": "8.1.1+dfsg1-3+deb13u3", "valkey-tools": "8.1.1+dfsg1-3+deb13u3",
          "libssl3t64:amd64": "3.5.9-1~deb13u1", "libc6:amd64": "2.41-12+deb13u5"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path))
    for module in (roots, record.debian_roots):  # the copy the scripts import, and this one
        monkeypatch.setattr(module, "APT_STAMP", tmp_path / "apt-lists-refreshed")
        monkeypatch.setattr(module, "APT_MAX_AGE_S", 3 * 3600)
    monkeypatch.setattr(record, "APT_STAMP", tmp_path / "apt-lists-refreshed")
    monkeypatch.setattr(record, "APT_MAX_AGE_S", 3 * 3600)
    (tmp_path / "build" / "debian").mkdir(parents=True)
    return tmp_path


def aged(path, hours: float) -> None:
    path.touch()
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_each_root_reads_its_suites_from_the_hosts_mirror_and_its_security_archive():
    assert roots.sources_list(roots.ROOTS["trixie"], MIRRORS) == (
        "deb http://deb.debian.org/debian trixie main\n"
        "deb http://deb.debian.org/debian trixie-updates main\n"
        "deb http://deb.debian.org/debian-security trixie-security main\n")
    assert roots.sources_list(roots.ROOTS["bookworm-backports"], MIRRORS).splitlines()[-1] == \
        "deb http://deb.debian.org/debian bookworm-backports main"
    # Backports are never installed by default: the packages name their suite.
    assert roots.ROOTS["bookworm-backports"]["packages"] == ["valkey-server/bookworm-backports",
                                                            "valkey-tools/bookworm-backports"]


def test_a_roots_lists_are_refreshed_when_the_hosts_were_or_when_too_old(home):
    stamp = roots.lists_stamp("trixie")
    assert roots.refresh_due("trixie", sources_changed=False) == "never refreshed with these sources"
    aged(roots.APT_STAMP, 1)
    aged(stamp, 2)
    assert roots.refresh_due("trixie", sources_changed=False) == "the host's lists were refreshed since"
    aged(stamp, 0.5)
    assert roots.refresh_due("trixie", sources_changed=False) is None
    assert roots.refresh_due("trixie", sources_changed=True) == "never refreshed with these sources"
    aged(roots.APT_STAMP, 5)
    aged(stamp, 4)
    assert roots.refresh_due("trixie", sources_changed=False) == "refreshed 4.0 h ago"


def test_a_build_from_a_root_whose_lists_are_stale_is_refused(home):
    aged(record.APT_STAMP, 0.1)
    with pytest.raises(RuntimeError, match=r"lists of the trixie root were never refreshed .* run `make setup`"):
        record.check_lists_fresh(root="trixie")
    aged(roots.lists_stamp("trixie"), 0.5)  # older than the host's
    with pytest.raises(RuntimeError, match=r"host's package lists were refreshed after the trixie root's"):
        record.check_lists_fresh(root="trixie")
    aged(roots.lists_stamp("trixie"), 0)
    record.check_lists_fresh(root="trixie")
    aged(record.APT_STAMP, 4)
    aged(roots.lists_stamp("trixie"), 3.5)
    with pytest.raises(RuntimeError, match=r"trixie root were refreshed 3\.5 h ago, more than 3 h"):
        record.check_lists_fresh(root="trixie")


def test_dpkg_and_apt_are_asked_inside_the_root():
    assert record.in_root(None, ["dpkg-query", "-W"]) == ["dpkg-query", "-W"]
    assert record.in_root("trixie", ["apt-cache", "policy", "libc6"]) == \
        ["chroot", str(roots.path("trixie")), "apt-cache", "policy", "libc6"]
    # A file's other names under the merged /usr come from its real path inside the root, not this host's.
    assert record.path_variants("/lib/x86_64-linux-gnu/libssl.so.3", real="/usr/lib/x86_64-linux-gnu/libssl.so.3") == \
        ["/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3"]


def test_the_server_of_a_root_build_is_the_roots_package_and_its_update_rebuilds_the_image():
    main = build_images.main_package("8.1.1", VALKEY)
    assert main == ("debian", "valkey-server", "8.1.1+dfsg1-3+deb13u3")
    labels = record.labels_for("valkey", "8.1.1", FORMAT, main, VALKEY, "2026-12-02T08:33:01Z")
    assert record.rebuild_reason(labels, main, VALKEY, FORMAT) is None
    updated = {**VALKEY, "valkey-server": "8.1.1+dfsg1-3+deb13u4", "libssl3t64:amd64": "3.5.10-1~deb13u1"}
    reason = record.rebuild_reason(labels, build_images.main_package("8.1.1", updated), updated, FORMAT)
    assert reason == "server package changed: valkey-server 8.1.1+dfsg1-3+deb13u3 -> valkey-server 8.1.1+dfsg1-3+deb13u4"


def test_a_root_not_made_yet_has_nothing_installed_so_its_images_are_built_and_say_why(home):
    assert build_images.root_installed("trixie", {"valkey-server": "host's, not the root's"}) == {}
    assert build_images.main_package("8.0.2", {}) == ("debian", "redis-server", None)


def test_each_root_build_is_a_version_of_the_catalog_with_tls():
    catalog = {v["version"]: v for v in json.loads(build_images.CATALOG.read_text())["versions"]}
    from_roots = {v: s for v, s in build_images.SOURCES.items() if s["kind"] == "debian-root"}
    assert {v: (s["root"], s["package"]) for v, s in from_roots.items()} == {
        "8.0.2": ("trixie", "redis-server"), "8.0.1": ("bookworm-backports", "valkey-server"),
        "8.1.1": ("trixie", "valkey-server")}
    for version, source in from_roots.items():
        assert catalog[version]["tls"] is True
        assert catalog[version]["source"].startswith(f"Debian {source['root']} {source['package']}")
