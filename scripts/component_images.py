"""The cluster components' images (scripts/build-images.py): Redis Sentinel and HAProxy, from the
Debian packages installed here, listed in domain/catalogs/components.json (role -> image, package,
user, configuration directory).

Built like the engine images: a minimal root filesystem of the binary and exactly the libraries
`ldd` lists, `docker import`ed, with labels recording the exact version of every Debian package a
file of the image comes from (scripts/image_record.py), rebuilt when one of them changes.

Unlike the engine images, a component runs as a non-root user (the catalog's numeric uid:gid, the
image's USER, named in its /etc/passwd and /etc/group) and is meant to run with a read-only root
filesystem: its configuration lives on a volume mounted at the catalog's config_dir. Sentinel
rewrites its own sentinel.conf (a temporary file in the same directory, then a rename), so its
directory belongs to the user and a new volume mounted there inherits that; HAProxy only reads
haproxy.cfg, so its directory stays root's (mode 755): the proxy cannot change its own routing.
Neither needs a tmpfs (tests/integration/test_component_images.py runs both with --read-only).

Image content:
  sentinel  /usr/local/bin/redis-sentinel  redis-tools' server binary (Debian's redis-sentinel package
                                           ships only the symlink /usr/bin/redis-sentinel to it: the
                                           binary runs as Sentinel when its argv[0] says redis-sentinel)
            /usr/local/bin/redis-cli       redis-tools' cli
            /etc/sentinel (uid 999)        CMD ["/usr/local/bin/redis-sentinel", "/etc/sentinel/sentinel.conf"]
  haproxy   /usr/local/sbin/haproxy        Debian's haproxy
            /etc/haproxy (root, 755)       CMD ["/usr/local/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
  both      /etc/passwd, /etc/group (root, and the component's user), /etc/nsswitch.conf, /etc/hosts,
            /etc/redis-addons/image.json (what the image was built from: labels, files, libraries)
No shell, no coreutils. Runs on Debian's python3 before .venv exists: standard library only.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import image_record as record

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "domain" / "catalogs" / "components.json"

FORMAT = 1  # bump to force rebuilding the component images when their layout changes

# role -> the files copied from this machine: (host path, path in the image); the first is the
# binary, checked to report the catalog's version (VERSION_PATTERN on its `--version`/`-v` output).
FILES: dict[str, list[tuple[str, str]]] = {
    "sentinel": [("/usr/bin/redis-sentinel", "usr/local/bin/redis-sentinel"),
                 ("/usr/bin/redis-cli", "usr/local/bin/redis-cli")],
    "haproxy": [("/usr/sbin/haproxy", "usr/local/sbin/haproxy")],
}
VERSION_ARGS = {"sentinel": ["--version"], "haproxy": ["-v"]}
VERSION_PATTERN = {"sentinel": r"\bv=(\d+\.\d+\.\d+)", "haproxy": r"^HAProxy version (\d+\.\d+\.\d+)"}


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def components() -> list[dict]:
    return json.loads(CATALOG.read_text())["components"]


def key(component: dict) -> str:
    """The build cache's name for it (beside the engines' "<engine>-<version>")."""
    return f"component-{component['role']}-{component['version']}"


def main_package(component: dict, installed: dict[str, str | None]) -> tuple[str, str, str | None]:
    return "debian", component["package"], installed.get(component["package"])


def command(component: dict) -> list[str]:
    config = f"{component['config_dir']}/{component['config_file']}"
    if component["role"] == "sentinel":
        return ["/usr/local/bin/redis-sentinel", config]
    if component["role"] == "haproxy":
        # -W: master-worker (a reload is SIGUSR2 to pid 1); -db: stay in the foreground, log to stderr
        return ["/usr/local/sbin/haproxy", "-W", "-db", "-f", config]
    raise RuntimeError(f"components.json: no build known for role {component['role']!r}")


def import_changes(component: dict) -> list[str]:
    """`docker import --change` lines: the default command, the non-root user, no shell anywhere."""
    return [f"CMD {json.dumps(command(component))}", f"USER {component['user']}",
            f"WORKDIR {component['config_dir']}", "ENV PATH=/usr/local/sbin:/usr/local/bin"]


def binary_version(role: str, binary: Path) -> str | None:
    try:
        r = subprocess.run([str(binary), *VERSION_ARGS[role]], text=True, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(VERSION_PATTERN[role], r.stdout + r.stderr, re.M)
    return m.group(1) if m else None


def make_rootfs(root: Path, component: dict, ldd_paths) -> tuple[list[str], list[str]]:
    """Lay out the image under `root`; return (the host files copied, the host libraries copied)."""
    role, (uid, gid) = component["role"], component["user"].split(":")
    if role not in FILES:
        raise RuntimeError(f"components.json: no build known for role {role!r}")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("etc/redis-addons", component["config_dir"].lstrip("/")):
        (root / d).mkdir(parents=True, exist_ok=True)
    copied, binaries = [], []
    for host_path, image_path in FILES[role]:
        if not Path(host_path).exists():
            raise RuntimeError(f"{host_path} missing (Debian package {component['package']} or one it depends on "
                               "is not installed: scripts/install-packages.sh installs it)")
        real = os.path.realpath(host_path)
        dest = root / image_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, dest)  # named as in the image: redis-sentinel must be called so to run as Sentinel
        os.chmod(dest, 0o755)
        copied += [host_path] + ([real] if real != host_path else [])
        binaries.append(dest)
    got = binary_version(role, binaries[0])
    if got != component["version"]:
        raise RuntimeError(f"{FILES[role][0][0]} (Debian {component['package']}) reports version {got!r}, "
                           f"components.json wants {component['version']}")
    libs: set[str] = set()
    for b in binaries:
        libs.update(ldd_paths(b))  # includes the dynamic loader
    for lib in sorted(libs):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    etc = root / "etc"
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                f"{role}:x:{uid}:{gid}:{role}:{component['config_dir']}:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\n{role}:x:{gid}:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    return copied, sorted(libs)


def owners(component: dict) -> dict[str, tuple[int, int]]:
    """Archive names not owned by root: the configuration directory when the component writes there."""
    if not component["config_writable"]:
        return {}
    uid, gid = (int(x) for x in component["user"].split(":"))
    return {component["config_dir"].lstrip("/"): (uid, gid)}


def build_tarball(component: dict, cache: Path, main_now: tuple, tarball: Path, ldd_paths, make_tarball) -> dict:
    """Build the root filesystem and its tarball; return the labels recording what it is made of."""
    record.check_lists_fresh()
    root = cache / "rootfs" / key(component)
    files, libs = make_rootfs(root, component, ldd_paths)
    owned_by = record.dpkg_owners(files + libs)
    names = sorted(set(owned_by.values()) | {component["package"]})
    record.check_up_to_date(names)
    debian = record.installed_versions(names)
    if debian.get(component["package"]) != main_now[2]:
        raise RuntimeError(f"{component['package']} changed during the build ({main_now[2]} -> "
                           f"{debian.get(component['package'])}): run the build again")
    built_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    labels = record.component_labels(component["role"], component["version"], FORMAT, main_now, debian, built_at,
                                     component["user"])
    info = {"component": component["role"], "version": component["version"], "user": component["user"],
            "config": f"{component['config_dir']}/{component['config_file']}",
            "files": {"/" + image: host for host, image in FILES[component["role"]]},
            "packages_of_files": {f: owned_by[f] for f in files},
            "libraries": {lib: owned_by[lib] for lib in libs}, "labels": labels}
    (root / "etc" / "redis-addons" / "image.json").write_text(json.dumps(info, indent=1) + "\n")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    labels[record.ROOTFS] = make_tarball(root, tarball, owners(component))
    tarball.with_suffix(".json").write_text(json.dumps({"labels": labels, "source": component["package"]}) + "\n")
    log(f"{component['image']}: rootfs from Debian {component['package']} {main_now[2]} and {len(debian)} Debian "
        f"packages ({tarball.stat().st_size / 1e6:.1f} MB tarball)")
    return labels
