#!/usr/bin/env python3
"""Debian root filesystems the engine images of newer Debian releases are built from (`make setup`, after
scripts/install-packages.sh).

The host is Debian bookworm: its redis-server is Redis 7.0. Valkey 8.1 and Redis 8.0 are packaged in trixie,
Valkey 8.0 in bookworm-backports, built with TLS and followed by Debian's security team (backports by their
maintainers). A trixie binary needs trixie's C library, so each such build comes from a minimal root
filesystem of its own release (`debootstrap --variant=minbase`, from the mirror the host's apt uses), with the
server packages installed in it; scripts/build-images.py copies the server, its cli and the libraries `ldd`
lists inside the root into the image, as it does from the host for Redis 7.0.

Each root is kept like the host's packages (scripts/install-packages.sh): its package lists are refreshed
when the host's were (or are older than REDIS_ADDONS_APT_MAX_AGE), and everything in it is then upgraded to
the newest (security) update, so that build-images.py rebuilds the images whose packages changed and refuses
to build from stale lists or with an update not installed. Made once under $REDIS_ADDONS_HOME/build/debian/;
with nothing to do a run only reads a few files. Maintainer scripts never start a service in a root
(policy-rc.d), and nothing is mounted into it.

Runs on Debian's python3 before .venv exists: standard library only.
usage: debian_roots.py [NAME ...]   (default: every root)
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name -> the release it is made from, the suites its apt reads, and the packages installed in it
# ("package/suite" takes the package from that suite: backports are never chosen by default).
ROOTS: dict[str, dict] = {
    "trixie": {"release": "trixie", "suites": ["trixie", "trixie-updates", "trixie-security"],
               "packages": ["valkey-server", "valkey-tools", "redis-server", "redis-tools"]},
    "bookworm-backports": {"release": "bookworm",
                           "suites": ["bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports"],
                           "packages": ["valkey-server/bookworm-backports", "valkey-tools/bookworm-backports"]},
}

APT_STAMP = Path(os.environ.get("REDIS_ADDONS_APT_STAMP", "/var/lib/redis-addons/apt-lists-refreshed"))
APT_MAX_AGE_S = int(os.environ.get("REDIS_ADDONS_APT_MAX_AGE", str(3 * 3600)))
APT = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
NO_SERVICES = "#!/bin/sh\n# redis-addons scripts/debian_roots.py: a root for building images, no service runs here\nexit 101\n"
APT_CONF = 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'


def log(msg: str) -> None:
    print(f"[roots] {msg}", file=sys.stderr, flush=True)


def home() -> Path:
    p = Path(os.environ.get("REDIS_ADDONS_HOME", "var"))
    return p if p.is_absolute() else REPO / p


def base() -> Path:
    return home() / "build" / "debian"


def path(name: str) -> Path:
    """The root filesystem `name` (scripts/image_sources.py copies the servers from it)."""
    return base() / name


def lists_stamp(name: str) -> Path:
    """Touched, with the time it started, after each complete `apt-get update` inside the root."""
    return base() / f"{name}.lists-refreshed"


def chroot(name: str, *cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["chroot", str(path(name)), *cmd], check=check, text=True, env=env, **kw)


def host_mirrors() -> tuple[str, str]:
    """(archive, security archive) URIs the host's apt uses for its own release: the roots are made from the
    same mirror (no other host is written anywhere)."""
    codename = next((line.split("=", 1)[1].strip().strip('"') for line in Path("/etc/os-release").read_text()
                     .splitlines() if line.startswith("VERSION_CODENAME=")), "")
    out = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)"], text=True,
                         capture_output=True, check=True).stdout
    uris = {release: uri.rstrip("/") for uri, release in (line.split() for line in out.splitlines() if line.strip())}
    if codename not in uris or f"{codename}-security" not in uris:
        raise SystemExit(f"[roots] ERROR: the host's apt sources list no '{codename}' and '{codename}-security' "
                         f"suites (found: {', '.join(sorted(uris)) or 'none'}): cannot tell which Debian mirror to use")
    return uris[codename], uris[f"{codename}-security"]


def sources_list(spec: dict, mirrors: tuple[str, str]) -> str:
    archive, security = mirrors
    return "".join(f"deb {security if s.endswith('-security') else archive} {s} main\n" for s in spec["suites"])


def newer(a: Path, b: Path) -> bool:
    """`a` was modified after `b` (a missing `b` counts as very old)."""
    try:
        return a.stat().st_mtime > b.stat().st_mtime
    except FileNotFoundError:
        return a.exists()


def mounts_under(directory: Path) -> list[str]:
    """Mount points inside `directory`, deepest first (/proc/mounts escapes spaces as \\040)."""
    prefix = str(directory.resolve()) + "/"
    points = [line.split()[1].replace("\\040", " ") for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def unmount_under(directory: Path) -> None:
    """debootstrap mounts /proc in the root it makes and may leave it there: never kept, and never removed
    through (a removal would walk into it)."""
    for point in mounts_under(directory):
        subprocess.run(["umount", point], check=False, capture_output=True)
    left = mounts_under(directory)
    if left:
        raise SystemExit(f"[roots] ERROR: could not unmount {', '.join(left)}: unmount them, then run again")


def remove(directory: Path) -> None:
    if directory.exists():
        unmount_under(directory)
        shutil.rmtree(directory)


def make(name: str, spec: dict, mirrors: tuple[str, str]) -> None:
    """debootstrap into a temporary directory, renamed into place once complete: an interrupted run leaves
    no half root behind to be taken for a made one."""
    target, tmp = path(name), base() / f"{name}.tmp"
    remove(tmp)
    started = time.monotonic()
    log(f"making the {name} root filesystem: debootstrap --variant=minbase {spec['release']} from {mirrors[0]}")
    r = subprocess.run(["debootstrap", "--variant=minbase", spec["release"], str(tmp), mirrors[0]],
                       text=True, capture_output=True)
    if tmp.exists():
        unmount_under(tmp)
    if r.returncode != 0:
        remove(tmp)
        raise SystemExit(f"[roots] ERROR: debootstrap {spec['release']} failed:\n{(r.stdout + r.stderr)[-2000:]}")
    (tmp / "usr/sbin/policy-rc.d").write_text(NO_SERVICES)
    (tmp / "usr/sbin/policy-rc.d").chmod(0o755)
    (tmp / "etc/apt/apt.conf.d/90redis-addons").write_text(APT_CONF)
    remove(target)
    tmp.rename(target)
    log(f"{name}: made in {time.monotonic() - started:.0f}s")


def refresh_due(name: str, sources_changed: bool) -> str | None:
    stamp = lists_stamp(name)
    if sources_changed or not stamp.exists():
        return "never refreshed with these sources"
    if newer(APT_STAMP, stamp):
        return "the host's lists were refreshed since"
    age = time.time() - stamp.stat().st_mtime
    if age > APT_MAX_AGE_S:
        return f"refreshed {age / 3600:.1f} h ago"
    return None


def installed(name: str, packages: list[str]) -> list[str]:
    wanted = [p.split("/")[0] for p in packages]
    r = chroot(name, "dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *wanted, check=False,
               capture_output=True)
    return [line.split()[0] for line in r.stdout.splitlines() if line.endswith(" ii ")]


def keep(name: str, mirrors: tuple[str, str]) -> None:
    """Make the root if needed, then refresh its lists, install what is missing and upgrade, when due."""
    spec = ROOTS[name]
    if not (path(name) / "var/lib/dpkg/status").exists():
        make(name, spec, mirrors)
    sources = path(name) / "etc/apt/sources.list"
    want = sources_list(spec, mirrors)
    changed = sources.read_text() != want if sources.exists() else True
    if changed:
        sources.write_text(want)
        lists_stamp(name).unlink(missing_ok=True)
    reason = refresh_due(name, changed)
    if reason:
        log(f"{name}: refreshing the package lists ({reason}): apt-get update")
        started = time.time()
        r = chroot(name, *APT, "update", "-o", "APT::Update::Error-Mode=any", check=False, capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"[roots] ERROR: apt-get update in the {name} root failed (the images are never built "
                             f"from stale lists):\n{(r.stdout + r.stderr)[-2000:]}")
        lists_stamp(name).touch()
        os.utime(lists_stamp(name), (started, started))
    missing = [p for p in spec["packages"] if p.split("/")[0] not in installed(name, spec["packages"])]
    if missing:
        log(f"{name}: installing {' '.join(missing)}")
        chroot(name, *APT, "install", "-y", *missing, capture_output=True)
    upgraded = base() / f"{name}.upgraded"
    status = path(name) / "var/lib/dpkg/status"  # packages installed (or downgraded) in it since
    if missing or not upgraded.exists() or newer(lists_stamp(name), upgraded) or newer(status, upgraded):
        plan = chroot(name, *APT, "-s", "upgrade", "--with-new-pkgs", capture_output=True).stdout
        todo = [line.split()[1] for line in plan.splitlines() if line.startswith("Inst ")]
        if todo:
            log(f"{name}: upgrading {', '.join(todo)}")
            chroot(name, *APT, "upgrade", "-y", "--with-new-pkgs", capture_output=True)
        chroot(name, *APT, "clean", capture_output=True)  # the .deb files installed: ~120 MB a root
        upgraded.touch()


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in ROOTS]
    if unknown:
        raise SystemExit(f"[roots] ERROR: unknown root {', '.join(unknown)}; roots are: {', '.join(ROOTS)}")
    if os.geteuid() != 0:
        raise SystemExit("[roots] ERROR: run as root (debootstrap, chroot)")
    if not shutil.which("debootstrap"):
        raise SystemExit("[roots] ERROR: debootstrap is not installed (scripts/install-packages.sh installs it)")
    base().mkdir(parents=True, exist_ok=True)
    mirrors = host_mirrors()
    with open(base() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `make setup` waits rather than debootstrapping beside us
        for name in names or list(ROOTS):
            try:
                if path(name).exists():
                    unmount_under(path(name))  # one left by an earlier debootstrap
                keep(name, mirrors)
            except subprocess.CalledProcessError as e:
                raise SystemExit(f"[roots] ERROR: {name}: {' '.join(e.cmd)} failed:\n"
                                 f"{((e.stdout or '') + (e.stderr or ''))[-2000:]}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
