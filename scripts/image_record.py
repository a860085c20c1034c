"""What an engine image is built from, recorded on it as labels, and when it must be rebuilt.

scripts/build-images.py writes these labels with `docker import --change LABEL ...`;
engine/versions.py reads the same names back from the real image for the `versions`
listing (keep the two in step: tests/unit/test_image_builds.py checks the round trip).
An image built from a Debian root filesystem of another release (scripts/debian_roots.py) records
and checks the packages of that root: every dpkg and apt question below takes the root's name (None:
this host).
Runs on Debian's python3 before .venv exists: standard library only.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import debian_roots  # noqa: E402

PREFIX = "redis-addons."
ENGINE, VERSION, FORMAT = PREFIX + "engine", PREFIX + "version", PREFIX + "build-format"
REGISTRY, PACKAGE, PACKAGE_VERSION = PREFIX + "package-registry", PREFIX + "package", PREFIX + "package-version"
DEBIAN_PACKAGES = PREFIX + "debian-packages"  # "name=version ..." of every Debian file in the image
BUILT_AT, ROOTFS = PREFIX + "built-at", PREFIX + "rootfs-sha256"
# Cluster component images (scripts/component_images.py) record their role and user instead of an engine.
COMPONENT, USER = PREFIX + "component", PREFIX + "user"

# Written by scripts/install-packages.sh when `apt-get update` succeeds (stamped with the time it
# started); both scripts read the same defaults from scripts/lib.sh through the environment.
APT_STAMP = Path(os.environ.get("REDIS_ADDONS_APT_STAMP", "/var/lib/redis-addons/apt-lists-refreshed"))
APT_MAX_AGE_S = int(os.environ.get("REDIS_ADDONS_APT_MAX_AGE", str(3 * 3600)))


def format_packages(packages: dict[str, str]) -> str:
    return " ".join(f"{name}={version}" for name, version in sorted(packages.items()))


def parse_packages(text: str) -> dict[str, str]:
    # Neither Debian nor PyPI versions contain "=" or spaces.
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def labels_for(engine: str, version: str, build_format: int, main: tuple[str, str, str],
               debian: dict[str, str], built_at: str) -> dict[str, str]:
    """The record of one build; `main` is (registry, package, version) of the server's package."""
    registry, package, package_version = main
    return {ENGINE: engine, VERSION: version, FORMAT: str(build_format), REGISTRY: registry,
            PACKAGE: package, PACKAGE_VERSION: package_version, DEBIAN_PACKAGES: format_packages(debian),
            BUILT_AT: built_at}


def component_labels(role: str, version: str, build_format: int, main: tuple[str, str, str],
                     debian: dict[str, str], built_at: str, user: str) -> dict[str, str]:
    """The record of a Sentinel or HAProxy image build: as an engine image's, with its role and the
    uid:gid it runs as in place of an engine (rebuild_reason reads both the same way)."""
    labels = labels_for(role, version, build_format, main, debian, built_at)
    del labels[ENGINE]
    return {**labels, COMPONENT: role, USER: user}


def rebuild_reason(recorded: dict[str, str] | None, main: tuple[str, str, str | None],
                   installed: dict[str, str | None], build_format: int) -> str | None:
    """Why an image (or a cached tarball) recorded as `recorded` must be built again, or None.

    `main`: (registry, package, version) the server comes from now (version None: not installed);
    `installed`: the version installed now of each Debian package recorded on the image (None: gone).
    Pure: the caller asks dpkg and Docker."""
    if recorded is None:
        return "no image yet"
    if recorded.get(FORMAT) != str(build_format):
        return f"image layout changed (format {recorded.get(FORMAT) or 'unrecorded'}, now {build_format})"
    if PACKAGE_VERSION not in recorded or DEBIAN_PACKAGES not in recorded:
        return "built before package versions were recorded"
    registry, package, version = main
    was = (recorded.get(REGISTRY), recorded.get(PACKAGE), recorded[PACKAGE_VERSION])
    if was != (registry, package, version):
        now = f"{package} {version}" if version else f"{package} not installed"
        return f"server package changed: {was[1]} {was[2]} -> {now}"
    changed = []
    for name, was_version in sorted(parse_packages(recorded[DEBIAN_PACKAGES]).items()):
        now_version = installed.get(name)
        if now_version != was_version:
            changed.append(f"{name} {was_version} -> {now_version or 'not installed'}")
    if changed:
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        return "Debian packages changed: " + ", ".join(changed[:3]) + more
    return None


# --------------------------------------------------------------------------- dpkg and apt


def in_root(root: str | None, cmd: list[str]) -> list[str]:
    """`cmd` as run inside the Debian root filesystem `root`, or on this host (None)."""
    return cmd if root is None else ["chroot", str(debian_roots.path(root)), *cmd]


def real_paths(paths: list[str], root: str | None = None) -> dict[str, str]:
    """{path: the file it names, symlinks followed} here, or inside `root` (its links lead within it)."""
    if root is None or not paths:
        return {p: os.path.realpath(p) for p in paths}
    r = subprocess.run(in_root(root, ["readlink", "-e", "--", *paths]), text=True, capture_output=True)
    real = r.stdout.splitlines()
    if r.returncode != 0 or len(real) != len(paths):
        raise RuntimeError(f"the {root} root lacks some of {', '.join(paths)}: {r.stderr.strip()}")
    return dict(zip(paths, real))


def path_variants(path: str, real: str | None = None) -> list[str]:
    """The names dpkg may know a file by: Debian 12 merged /lib into /usr/lib, but each package
    still registers the path it ships (libc6: /lib/..., libssl3: /usr/lib/...)."""
    real = os.path.realpath(path) if real is None else real
    out = []
    for p in (path, real):
        out.append(p)
        if p.startswith(("/lib", "/bin", "/sbin")):
            out.append("/usr" + p)
        elif p.startswith(("/usr/lib", "/usr/bin", "/usr/sbin")):
            out.append(p[len("/usr"):])
    return list(dict.fromkeys(out))


def dpkg_owners(paths: list[str], root: str | None = None) -> dict[str, str]:
    """{path: Debian package (arch-qualified where dpkg says so)} of each file; raise naming the
    files no package owns (they would never follow a security update)."""
    real = real_paths(paths, root)
    variants = {p: path_variants(p, real[p]) for p in paths}
    wanted = sorted({v for vs in variants.values() for v in vs})
    r = subprocess.run(in_root(root, ["dpkg-query", "-S", *wanted]), text=True, capture_output=True)
    owner_of: dict[str, str] = {}
    for line in r.stdout.splitlines():
        if line.startswith("diversion ") or ": " not in line:
            continue
        packages, _, path = line.partition(": ")
        owner_of[path] = packages.split(", ")[0]
    found, unowned = {}, []
    for path, vs in variants.items():
        owner = next((owner_of[v] for v in vs if v in owner_of), None)
        if owner is None:
            unowned.append(path)
        else:
            found[path] = owner
    if unowned:
        raise RuntimeError(f"no Debian package owns {', '.join(unowned)}: an image made of it would not "
                           "follow security updates")
    return found


def installed_versions(packages: list[str], root: str | None = None) -> dict[str, str | None]:
    """{package: installed version, or None when not installed}."""
    out: dict[str, str | None] = {p: None for p in packages}
    if not packages:
        return out
    r = subprocess.run(in_root(root, ["dpkg-query", "-W", "-f=${binary:Package}\t${db:Status-Abbrev}\t${Version}\n",
                                      *packages]), text=True, capture_output=True)
    for line in r.stdout.splitlines():
        name, status, version = line.split("\t")
        for asked in (name, name.split(":")[0]):
            if asked in out and status == "ii ":
                out[asked] = version
    return out


def parse_policy(text: str) -> dict[str, tuple[str | None, str | None]]:
    """{package (without architecture): (installed, candidate)} from `apt-cache policy` output."""
    seen: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        if not line.startswith(" ") and line.endswith(":"):
            current = seen.setdefault(line[:-1].split(":")[0], {})
        elif current is not None and line.strip().startswith(("Installed: ", "Candidate: ")):
            key, _, value = line.strip().partition(": ")
            current[key] = value.strip()
    return {name: (policy.get("Installed"), policy.get("Candidate")) for name, policy in seen.items()}


def all_installed(root: str) -> dict[str, str | None]:
    """{package (plain and arch-qualified): version} of every package installed in `root`."""
    r = subprocess.run(in_root(root, ["dpkg-query", "-W", "-f=${binary:Package}\t${db:Status-Abbrev}\t${Version}\n"]),
                       text=True, capture_output=True)
    out: dict[str, str | None] = {}
    for line in r.stdout.splitlines():
        name, status, version = line.split("\t")
        if status == "ii ":
            out[name] = out[name.split(":")[0]] = version
    return out


def pending_upgrades(packages: list[str], root: str | None = None) -> dict[str, tuple[str, str]]:
    """{package: (installed, candidate)} for each package apt would upgrade now."""
    policies = parse_policy(subprocess.run(in_root(root, ["apt-cache", "policy", *packages]), text=True,
                                           capture_output=True, env={**os.environ, "LC_ALL": "C"}).stdout)
    pending = {}
    for package in packages:
        have, candidate = policies.get(package.split(":")[0], (None, None))
        if have and candidate and have != "(none)" and candidate not in (have, "(none)") and subprocess.run(
                ["dpkg", "--compare-versions", candidate, "gt", have]).returncode == 0:
            pending[package] = (have, candidate)
    return pending


def check_lists_fresh(now: float | None = None, root: str | None = None) -> None:
    """Refuse to build from package lists refreshed longer than APT_MAX_AGE_S ago: a security
    update published since would be missed. A root's lists must also be newer than the host's: the
    setup refreshes them together (scripts/debian_roots.py)."""
    now = time.time() if now is None else now
    if root is not None:
        stamp = debian_roots.lists_stamp(root)
        try:
            mtime = stamp.stat().st_mtime
        except FileNotFoundError:
            raise RuntimeError(f"the package lists of the {root} root were never refreshed ({stamp} missing): "
                               "run `make setup`") from None
        if APT_STAMP.exists() and APT_STAMP.stat().st_mtime > mtime:
            raise RuntimeError(f"the host's package lists were refreshed after the {root} root's: run `make setup` "
                               "(it refreshes the root's and upgrades what is in it)")
        if now - mtime > APT_MAX_AGE_S:
            raise RuntimeError(f"the package lists of the {root} root were refreshed {(now - mtime) / 3600:.1f} h "
                               f"ago, more than {APT_MAX_AGE_S / 3600:g} h: run `make setup`")
    try:
        age = now - APT_STAMP.stat().st_mtime
    except FileNotFoundError:
        raise RuntimeError(f"the package lists were never refreshed by the setup ({APT_STAMP} missing): "
                           "run `make setup`") from None
    if age > APT_MAX_AGE_S:
        raise RuntimeError(f"the package lists were refreshed {age / 3600:.1f} h ago, more than "
                           f"{APT_MAX_AGE_S / 3600:g} h: run `make setup` (it refreshes them and upgrades the "
                           "packages the images are made of)")


def check_up_to_date(packages: list[str], root: str | None = None) -> None:
    pending = pending_upgrades(packages, root)
    if pending:
        listed = ", ".join(f"{p} {a} -> {b}" for p, (a, b) in sorted(pending.items()))
        where = f" in the {root} root" if root else ""
        upgrader = "scripts/debian_roots.py" if root else "scripts/install-packages.sh"
        raise RuntimeError(f"updates not installed yet{where}: {listed}; run `make setup` ({upgrader} "
                           "upgrades them) before building")
