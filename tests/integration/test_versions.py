"""The `versions` listing (API and CLI) against the real images on the real Docker hosts: it shows
what `make setup` built each image from, and that is what is installed on this machine now (the
setup upgrades the packages the images are made of, then rebuilds the images they changed).

Nothing here starts a container: the last test only creates (and removes) one per image, to read
its files."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import os
import secrets
import subprocess
import tarfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.app import make_app
from domain.catalog import VersionCatalog
from tests.conftest import REPO
from tests.integration.api_client import cli
from tests.integration.conftest import docker_of

CATALOG = VersionCatalog.load()


def scripts_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCES = scripts_module("image_sources").SOURCES
RECORD = scripts_module("image_record")
ROOTFS = RECORD.ROOTFS
DEBIAN_ROOTS = scripts_module("debian_roots")


@functools.cache
def dpkg_version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], text=True, capture_output=True,
                          check=True).stdout


@functools.cache
def packages_in(root: str | None) -> dict[str, str]:
    """{package: version} installed here (None) or in a Debian root filesystem (scripts/debian_roots.py)."""
    if root is None:
        return {}
    return RECORD.all_installed(root)


def installed(package: str, root: str | None) -> str:
    return dpkg_version(package) if root is None else packages_in(root)[package]


def file_bytes(path: str, root: str | None) -> bytes:
    """The file `path` names here, or inside the root (its symlinks followed there)."""
    if root is None:
        return Path(path).read_bytes()
    return (DEBIAN_ROOTS.path(root) / RECORD.real_paths([path], root)[path].lstrip("/")).read_bytes()


@pytest.fixture
async def client(engine):
    async with TestClient(TestServer(make_app(engine))) as test_client:
        test_client.headers = {"Authorization": f"Bearer {engine.settings.token_file.read_text().strip()}"}
        yield test_client


async def listing(client) -> dict[str, dict]:
    response = await client.get("/v1/addon_providers/redis/versions", headers=client.headers)
    assert response.status == 200, await response.text()
    return {row["version"]: row for row in (await response.json())["versions"]}


async def test_every_catalog_version_is_listed_with_its_tls_on_every_host(client, engine):
    rows = await listing(client)
    assert list(rows) == [v.version for v in CATALOG]
    for v in CATALOG:
        row = rows[v.version]
        assert (row["engine"], row["tls"], row["rdb_format"], row["retired"], row["image"], row["default"]) == \
            (v.engine, v.tls, v.rdb_format, v.retired, v.image, v is CATALOG.default)
        assert [h["host"] for h in row["hosts"]] == [h.name for h in engine.settings.hosts]
        assert all(h["present"] and h["problem"] is None for h in row["hosts"]), row
        assert row["source"] == v.source and row["package_version"] == row["hosts"][0]["package"]["version"]


async def test_the_debian_build_shows_the_redis_server_installed_here_and_its_libraries(client):
    installed = dpkg_version("redis-server")
    for image in (await listing(client))["7.0.15"]["hosts"]:
        assert image["package"] == {"registry": "Debian", "name": "redis-server", "version": installed}
        # OpenSSL and glibc among the packages its files come from, each as upgraded here
        assert {"libssl3:amd64", "libc6:amd64", "redis-tools"} <= set(image["debian_packages"])
        assert image["debian_packages"] == {name: dpkg_version(name) for name in image["debian_packages"]}


async def test_the_builds_from_debian_roots_show_the_package_installed_there_and_its_libraries(client):
    """Valkey 8.0 (bookworm-backports), Valkey 8.1 and Redis 8.0 (trixie): the exact version in the root, with TLS."""
    rows = await listing(client)
    roots = {version: source for version, source in SOURCES.items() if source["kind"] == "debian-root"}
    assert sorted(roots) == ["8.0.1", "8.0.2", "8.1.1"]
    for version, source in roots.items():
        row = rows[version]
        assert row["tls"] is True and row["source"].startswith(f"Debian {source['root']} {source['package']}")
        assert row["package_version"] == installed(source["package"], source["root"])
        for image in row["hosts"]:
            assert image["package"] == {"registry": "Debian", "name": source["package"],
                                        "version": installed(source["package"], source["root"])}
            assert {"libssl3t64:amd64" if source["root"] == "trixie" else "libssl3:amd64", "libc6:amd64"} <= \
                set(image["debian_packages"])
            assert image["debian_packages"] == {p: installed(p, source["root"]) for p in image["debian_packages"]}


async def test_the_wheel_builds_show_their_pinned_wheel_and_the_debian_files_they_copy(client):
    rows = await listing(client)
    for version, source in SOURCES.items():
        if source["kind"] != "pip":
            continue
        name, _, pinned = source["spec"].partition("==")
        for image in rows[version]["hosts"]:
            assert image["package"] == {"registry": "PyPI", "name": name, "version": pinned}
            assert image["debian_packages"] == {p: dpkg_version(p) for p in image["debian_packages"]}
            if source["cli"] is None:  # Debian's redis-cli is copied in, and with it its package
                assert "redis-tools" in image["debian_packages"]


async def test_another_provider_is_refused_by_name(client):
    response = await client.get("/v1/addon_providers/memcached/versions", headers=client.headers)
    assert response.status == 404
    assert (await response.json())["error"]["message"] == \
        "unknown addon provider 'memcached'; this installation provides 'redis'"


async def test_the_cli_prints_one_row_per_version_and_host(engine, monkeypatch, tmp_path, capsys):
    server = TestServer(make_app(engine))
    await server.start_server()
    try:
        monkeypatch.setenv("REDIS_ADDONS_HOME", str(tmp_path / "client-home"))
        monkeypatch.setenv("REDIS_ADDONS_API", str(server.make_url("")).rstrip("/"))
        monkeypatch.setenv("REDIS_ADDONS_TOKEN", engine.settings.token_file.read_text().strip())
        assert await cli("versions") == 0
    finally:
        await server.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("+--") and lines[0] == lines[2] == lines[-1]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:-1]]
    header = [c.strip() for c in lines[1].strip("|").split("|")]
    assert header == ["VERSION", "ENGINE", "TLS", "RDB", "SOURCE", "HOST", "PACKAGE VERSION", "BUILT (UTC)"]
    hosts = [h.name for h in engine.settings.hosts]
    assert [(c[0], c[3], c[4], c[5]) for c in cells] == [
        (v.version + (" (default)" if v is CATALOG.default else "") + (" (retired)" if v.retired else ""),
         str(v.rdb_format), v.source, host)
        for v in CATALOG for host in hosts]
    debian = [c for c in cells if c[0] == "7.0.15 (default)"]
    assert [c[1:7] for c in debian] == [["redis", "yes", "10", "Debian bookworm redis-server", host,
                                         dpkg_version("redis-server")] for host in hosts]
    valkey_8_1 = [c for c in cells if c[0] == "8.1.1"]
    assert [c[6] for c in valkey_8_1] == [packages_in("trixie")["valkey-server"]] * len(hosts)
    assert all(c[2] == "no" and c[4].startswith("PyPI ") and c[4].endswith("(no TLS)") for c in cells
               if SOURCES[c[0].split()[0]]["kind"] == "pip")


async def image_files(docker, container) -> dict[str, bytes]:
    """Every regular file of the container's root filesystem, by absolute path (one archive request;
    uncompressed: dockerd gzips archives on one core, ten times slower)."""
    async with docker._query(f"containers/{container.id}/archive", params={"path": "/"},
                             headers={"Accept-Encoding": "identity"}) as response:
        tar = tarfile.open(fileobj=io.BytesIO(await response.read()))
    return {"/" + m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_each_image_holds_the_very_files_of_the_package_versions_it_records(engine):
    """The labels are not just words: each library in the image is, byte for byte, the file the
    recorded (and installed) package version ships here, and the Debian server is redis-tools' binary."""
    for host in engine.settings.hosts:
        docker = docker_of(host)
        try:
            for version in CATALOG:
                labels = await engine.runtime.image_labels(host.name, version.image)
                recorded = dict(item.split("=", 1) for item in labels["redis-addons.debian-packages"].split())
                container = await docker.containers.create(
                    {"Image": version.image, "Cmd": ["/usr/local/bin/redis-server", "--version"],
                     "Labels": {"redis-addons.smoke": "1"}, "HostConfig": {"NetworkMode": "none"}},
                    name=f"redis-addons-versions-test-{secrets.token_hex(4)}")
                try:
                    files = await image_files(docker, container)
                finally:
                    await container.delete(force=True)
                info = json.loads(files["/etc/redis-addons/image.json"])
                assert info["labels"] == {k: v for k, v in labels.items() if k != ROOTFS}
                assert info["libraries"], version.image
                root = SOURCES[version.version].get("root")  # a Debian root's files, or this host's
                for library, package in info["libraries"].items():
                    assert sha256(files[library]) == sha256(file_bytes(library, root)), library
                    assert recorded[package] == installed(package, root), package
                if SOURCES[version.version]["kind"] == "deb":
                    server = os.path.realpath("/usr/bin/redis-server")
                    assert sha256(files["/usr/local/bin/redis-server"]) == sha256(Path(server).read_bytes())
                if root is not None:
                    server = file_bytes(SOURCES[version.version]["server"], root)
                    assert sha256(files["/usr/local/bin/redis-server"]) == sha256(server)
        finally:
            await docker.close()
