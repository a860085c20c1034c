"""The cluster components' catalog (domain/catalogs/components.json) and how scripts/build-images.py
turns it into images: Sentinel and HAProxy are built and recorded like the engine images, run as a
non-root user with their configuration directory as the only place meant to be written, and are not
engine versions a user picks (the `versions` listing does not show them)."""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest

from domain.catalog import Component, ComponentCatalog, UnknownComponent, VersionCatalog
from engine.versions import version_list

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
COMPONENTS = ComponentCatalog.load()


def load(name: str, file: str):
    sys.path.insert(0, str(SCRIPTS))  # the scripts import their siblings
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


record = load("image_record", "image_record.py")
components = load("component_images", "component_images.py")
build_images = load("build_images", "build-images.py")
smoke = load("image_smoke", "image_smoke.py")
RAW = components.components()  # what the build reads: the same file


def component(**changes) -> Component:
    fields = {"role": "sentinel", "image": "redis-addons/sentinel:7.0.15", "version": "7.0.15",
              "package": "redis-sentinel", "user": "999:999", "config_dir": "/etc/sentinel",
              "config_file": "sentinel.conf", "config_writable": True}
    return Component(**{**fields, **changes})


def test_the_catalog_lists_a_sentinel_from_debian_redis_sentinel_and_an_haproxy_2_6():
    sentinel, haproxy = COMPONENTS.get("sentinel"), COMPONENTS.get("haproxy")
    assert (sentinel.package, sentinel.image, sentinel.config_path) == \
        ("redis-sentinel", "redis-addons/sentinel:7.0.15", "/etc/sentinel/sentinel.conf")
    assert (haproxy.package, haproxy.version.split(".")[:2], haproxy.config_path) == \
        ("haproxy", ["2", "6"], "/etc/haproxy/haproxy.cfg")
    assert haproxy.image == f"redis-addons/haproxy:{haproxy.version}"
    # Sentinel rewrites its own file; HAProxy only reads its own
    assert (sentinel.config_writable, haproxy.config_writable) == (True, False)
    assert all((c.uid, c.gid) == (999, 999) for c in COMPONENTS)


def test_components_are_not_engine_versions():
    versions = list(VersionCatalog.load())
    assert not {v.image for v in versions} & {c.image for c in COMPONENTS}
    assert not {v.engine for v in versions} & {c.role for c in COMPONENTS}


async def test_the_versions_listing_asks_only_for_engine_images():
    asked = []

    class Runtime:
        async def image_labels(self, host, image):
            asked.append(image)
            return None

    listing = await version_list(Runtime(), VersionCatalog.load(), ["host-a"])
    assert [row["image"] for row in listing] == [v.image for v in VersionCatalog.load()]
    assert not set(asked) & {c.image for c in COMPONENTS}


def test_a_component_running_as_root_or_named_by_user_name_is_refused():
    with pytest.raises(ValueError, match=r"sentinel must run as a numeric non-root uid:gid, not '0:0'"):
        ComponentCatalog([component(user="0:0")])
    with pytest.raises(ValueError, match=r"not 'redis:redis'"):
        ComponentCatalog([component(user="redis:redis")])
    with pytest.raises(ValueError, match="a role is listed twice"):
        ComponentCatalog([component(), component()])
    with pytest.raises(ValueError, match="config_dir must be absolute"):
        ComponentCatalog([component(config_dir="etc/sentinel")])


def test_an_unknown_role_is_named_with_the_known_ones():
    with pytest.raises(UnknownComponent, match=r"unknown cluster component 'pgbouncer'; components are: "
                                                r"sentinel, haproxy"):
        COMPONENTS.get("pgbouncer")


def test_the_build_reads_the_same_catalog_as_the_engine():
    assert [Component(**c) for c in RAW] == list(COMPONENTS)


@pytest.mark.parametrize("role", ["sentinel", "haproxy"])
def test_each_image_runs_as_its_user_with_its_file_on_its_config_directory(role):
    c = next(c for c in RAW if c["role"] == role)
    changes = components.import_changes(c)
    assert f"USER {c['user']}" in changes
    cmd = json.loads(next(line for line in changes if line.startswith("CMD "))[4:])
    assert cmd[-1] == f"{c['config_dir']}/{c['config_file']}"
    assert f"WORKDIR {c['config_dir']}" in changes
    # the binary is named so in the image: Debian's redis-server binary runs as Sentinel by its argv[0]
    assert cmd[0] == "/" + components.FILES[role][0][1]
    assert cmd[0].endswith({"sentinel": "/redis-sentinel", "haproxy": "/haproxy"}[role])


def test_only_a_component_that_rewrites_its_file_owns_its_config_directory(tmp_path):
    root = tmp_path / "rootfs"
    for d in ("etc/sentinel", "etc/haproxy", "usr/local/bin", "data"):
        (root / d).mkdir(parents=True)
    sentinel, haproxy = (next(c for c in RAW if c["role"] == r) for r in ("sentinel", "haproxy"))
    assert components.owners(sentinel) == {"etc/sentinel": (999, 999)} and components.owners(haproxy) == {}
    build_images.make_tarball(root, tmp_path / "sentinel.tar", components.owners(sentinel))
    with tarfile.open(tmp_path / "sentinel.tar") as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["etc/sentinel"] == (999, 999)
    assert {owner for name, owner in owners.items() if name != "etc/sentinel"} == {(0, 0)}
    build_images.make_tarball(root, tmp_path / "engine.tar")  # an engine image: /data is the redis user's
    with tarfile.open(tmp_path / "engine.tar") as tar:
        assert {m.name: m.uid for m in tar.getmembers() if m.uid} == {"data": 999}


DEBIAN = {"haproxy": "2.6.12-1+deb12u3", "libc6:amd64": "2.36-9+deb12u14", "libssl3:amd64": "3.0.19-1~deb12u2",
          "liblua5.3-0:amd64": "5.3.6-2"}
HAPROXY = ("debian", "haproxy", "2.6.12-1+deb12u3")


def recorded(main=HAPROXY, debian=None) -> dict[str, str]:
    labels = record.component_labels("haproxy", "2.6.12", components.FORMAT, main, debian or DEBIAN,
                                     "2026-12-01T22:29:12Z", "999:999")
    return {**labels, record.ROOTFS: "6c5521ed"}


def test_a_component_image_records_its_role_and_user_instead_of_an_engine():
    labels = recorded()
    assert labels[record.COMPONENT] == "haproxy" and labels[record.USER] == "999:999"
    assert record.ENGINE not in labels
    assert record.parse_packages(labels[record.DEBIAN_PACKAGES]) == DEBIAN


def test_a_component_image_is_kept_until_a_package_it_is_made_of_changes():
    assert record.rebuild_reason(recorded(), HAPROXY, DEBIAN, components.FORMAT) is None
    update = ("debian", "haproxy", "2.6.12-1+deb12u4")
    assert record.rebuild_reason(recorded(), update, {**DEBIAN, "haproxy": update[2]}, components.FORMAT) == \
        "server package changed: haproxy 2.6.12-1+deb12u3 -> haproxy 2.6.12-1+deb12u4"
    assert record.rebuild_reason(recorded(), HAPROXY, {**DEBIAN, "liblua5.3-0:amd64": "5.3.6-2+deb12u1"},
                                 components.FORMAT) == \
        "Debian packages changed: liblua5.3-0:amd64 5.3.6-2 -> 5.3.6-2+deb12u1"
    assert record.rebuild_reason(recorded(), HAPROXY, DEBIAN, components.FORMAT + 1).startswith("image layout changed")


def test_the_main_package_is_the_one_installed_now():
    haproxy = next(c for c in RAW if c["role"] == "haproxy")
    assert components.main_package(haproxy, {"haproxy": "2.6.12-1+deb12u4"}) == ("debian", "haproxy", "2.6.12-1+deb12u4")
    assert components.main_package(haproxy, {}) == ("debian", "haproxy", None)


def test_every_catalog_image_is_a_build_target(tmp_path):
    targets = build_images.targets(None, tmp_path, skipped := [])
    images = [t.image for t in targets]
    assert images == [v.image for v in VersionCatalog.load()] + [c.image for c in COMPONENTS] and not skipped
    assert [t.image for t in build_images.targets(["sentinel"], tmp_path, [])] == ["redis-addons/sentinel:7.0.15"]
    assert len({t.tarball for t in targets}) == len(targets)


def test_smoke_tests_bind_each_host_to_its_address_in_hosts_json(tmp_path, monkeypatch):
    hosts = [{"name": f"host-{x}", "bind": f"127.0.{i}.1"} for i, x in enumerate("abcd", start=1)]
    (tmp_path / "hosts.json").write_text(json.dumps({"hosts": hosts}))
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path))
    assert [smoke.smoke_bind(h["name"]) for h in hosts] == ["127.0.1.1", "127.0.2.1", "127.0.3.1", "127.0.4.1"]
    monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "none"))
    assert smoke.smoke_bind("host-c") == "127.0.3.1" and smoke.smoke_bind("elsewhere") == "127.0.0.1"
