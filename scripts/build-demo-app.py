#!/usr/bin/env python3
"""Build the demo app image (examples/demo_app) and load it into every engine.

Like the engine images (scripts/build-images.py): no registry, no download. The
root filesystem is made of files of Debian packages installed on this machine
(python3.11-minimal, libpython3.11-minimal/-stdlib, python3-redis and the
python3-* packages it depends on), packed as a tarball and loaded with
`docker import`.

Image content:
  /usr/bin/python3.11 (+ python3 -> python3.11)    Debian's interpreter
  /usr/lib/python3.11                               the stdlib, minus tests, tooling, GUI and
                                                    modules whose C part is left out (see EXCLUDE_*)
  /usr/lib/python3/dist-packages                    redis-py and its python3-* dependencies
  every shared library `ldd` lists for the interpreter and each kept extension module
  /app/app.py, /tmp (1777), /etc/passwd + /etc/group (root, app 10001)
CMD ["/usr/bin/python3", "-u", "/app/app.py"], runs as uid 10001, PYTHONDONTWRITEBYTECODE=1.

An image is skipped when every label in wanted_labels() already matches (app.py's
sha256, BUILD_FORMAT, the Debian versions of python3.11 and python3-redis); any
change rebuilds it. A new image is smoke-tested: it imports app.py (and with it
redis, ssl, http.server...) inside a container without network.

usage: build-demo-app.py [--engines "name=url ..."] [--force] [--no-smoke]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "examples" / "demo_app" / "app.py"
IMAGE = "redis-addons/demo-app:latest"
LABEL_PREFIX = "redis-addons.demo-app"
BUILD_FORMAT = 1  # bump when the image layout changes

PYTHON_BIN = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
DIST = Path("/usr/lib/python3/dist-packages")
ROOT_PACKAGE = "python3-redis"
# python3-* packages that are the interpreter itself (shipped via STDLIB/PYTHON_BIN), not libraries
NOT_LIBRARIES = {"python3", "python3-minimal", "python3.11", "python3.11-minimal", "python3-distutils",
                 "python3-lib2to3"}

# Left out of /usr/lib/python3.11: tests, dev tooling, GUI, and pure-Python halves of the
# C modules dropped below.
EXCLUDE_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3",
                  "pydoc_data", "distutils", "venv", "unittest", "sqlite3", "curses", "dbm",
                  "sitecustomize.py",  # a symlink into /etc/python3.11 (Debian's apport hook)
                  "EXTERNALLY-MANAGED", "LICENSE.txt"}
EXCLUDE_STDLIB_GLOBS = ("config-3.11-*",)  # static libpython for building extensions (25 MB)
EXCLUDE_DYNLOAD = re.compile(r"^(_test|xxlimited|_xx|_ctypes_test|_curses|_dbm|_gdbm|_sqlite3|_tkinter|"
                             r"readline|ossaudiodev|nis|_crypt|audioop)")


def log(msg: str) -> None:
    print(f"[demo-app] {msg}", file=sys.stderr, flush=True)


def _images_module():
    """scripts/build-images.py (ldd, docker and hosts.json helpers)."""
    spec = importlib.util.spec_from_file_location("build_images", Path(__file__).with_name("build-images.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


images = _images_module()


# --------------------------------------------------------------------------- inputs


def dpkg_version(pkg: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", pkg],
                       text=True, capture_output=True)
    status, _, version = r.stdout.partition("|")
    return version if r.returncode == 0 and status == "ii " else None


def library_packages(root: str = ROOT_PACKAGE) -> list[str]:
    """root and the python3-* packages it depends on, recursively (first installed alternative)."""
    seen: list[str] = []
    todo = [root]
    while todo:
        pkg = todo.pop()
        if pkg in seen or pkg in NOT_LIBRARIES:
            continue
        if dpkg_version(pkg) is None:
            raise RuntimeError(f"Debian package {pkg} is not installed (scripts/install-packages.sh installs it)")
        seen.append(pkg)
        deps = subprocess.run(["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", pkg],
                              text=True, capture_output=True, check=True).stdout
        for group in deps.split(","):
            alternatives = [re.sub(r"\s*\(.*\)|:any", "", a).strip() for a in group.split("|")]
            alternatives = [a for a in alternatives if a]
            if not alternatives or not alternatives[0].startswith("python3"):
                continue
            chosen = next((a for a in alternatives if dpkg_version(a) is not None), None)
            if chosen is None:
                raise RuntimeError(f"{pkg}: none of {alternatives} is installed")
            todo.append(chosen)
    return sorted(seen)


def dist_entries(packages: list[str]) -> list[Path]:
    """Top-level entries of dist-packages the packages own (package dirs, modules, metadata)."""
    out: set[Path] = set()
    for pkg in packages:
        files = subprocess.run(["dpkg-query", "-L", pkg], text=True, capture_output=True, check=True).stdout
        for line in files.splitlines():
            p = Path(line)
            if DIST in p.parents:
                out.add(DIST / p.relative_to(DIST).parts[0])
    return sorted(out)


def wanted_labels() -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}-sha256": hashlib.sha256(APP.read_bytes()).hexdigest(),
        f"{LABEL_PREFIX}-build-format": str(BUILD_FORMAT),
        f"{LABEL_PREFIX}-python": f"Debian python3.11-minimal {dpkg_version('python3.11-minimal')}",
        f"{LABEL_PREFIX}-redis-py": f"Debian python3-redis {dpkg_version('python3-redis')}",
    }


# --------------------------------------------------------------------------- rootfs


def copy_file(src: Path, root: Path, dest: Path | None = None) -> None:
    target = root / (dest or src).relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink() and not os.readlink(src).startswith("/"):
        os.symlink(os.readlink(src), target)
    else:
        shutil.copy2(os.path.realpath(src), target)


def copy_tree(src: Path, root: Path, skip) -> list[Path]:
    """Copy src (a file or a directory) into root; returns the ELF .so files copied."""
    sos: list[Path] = []
    if src.is_file() or src.is_symlink():
        copy_file(src, root)
        return [src] if src.name.endswith(".so") else []
    for dirpath, dirnames, filenames in os.walk(src):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not skip(d / n))
        for n in sorted(filenames):
            f = d / n
            if skip(f):
                continue
            copy_file(f, root)
            if n.endswith(".so") and not f.is_symlink():
                sos.append(f)
    return sos


def make_rootfs(root: Path, labels: dict[str, str]) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    for d in ("usr/bin", "app", "tmp", "etc"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)

    if not PYTHON_BIN.exists():
        raise RuntimeError(f"{PYTHON_BIN} missing (Debian python3.11-minimal)")
    copy_file(PYTHON_BIN, root)
    os.symlink("python3.11", root / "usr/bin/python3")

    excluded_stems = {n.removesuffix(".py") for n in EXCLUDE_STDLIB}

    def skip_stdlib(p: Path) -> bool:
        rel = p.relative_to(STDLIB)
        top = rel.parts[0]
        if top in EXCLUDE_STDLIB or any(Path(top).match(g) for g in EXCLUDE_STDLIB_GLOBS):
            return True
        if top == "lib-dynload" and len(rel.parts) == 2 and EXCLUDE_DYNLOAD.match(p.name):
            return True
        # the compiled stdlib is kept (faster start), but not the .pyc of excluded modules
        return p.parent.name == "__pycache__" and p.name.split(".")[0] in excluded_stems

    sos = copy_tree(STDLIB, root, skip_stdlib)
    packages = library_packages()
    entries = dist_entries(packages)
    for entry in entries:
        sos += copy_tree(entry, root, lambda p: False)

    libs: set[str] = set()
    for b in [PYTHON_BIN, *sos]:
        libs.update(images.ldd_paths(b))  # includes the dynamic loader
    for lib in sorted(libs):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)  # real file under the path ldd resolved

    shutil.copy2(APP, root / "app" / "app.py")
    os.chmod(root / "app" / "app.py", 0o644)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                         "app:x:10001:10001:demo app:/tmp:/usr/sbin/nologin\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:10001:\n")
    (root / "etc" / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    info = {"image": IMAGE, "labels": labels, "debian_packages": {p: dpkg_version(p) for p in packages},
            "dist_packages": [e.name for e in entries], "libraries": sorted(libs)}
    (root / "etc" / "demo-app.json").write_text(json.dumps(info, indent=1) + "\n")
    for f in ("app/app.py", "etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/hosts", "etc/demo-app.json"):
        os.utime(root / f, (0, 0))
    return info


def make_tarball(root: Path, out: Path) -> str:
    """Copied files keep their Debian mtimes (the stdlib .pyc files are checked against them)."""
    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        if ti.isdir():
            ti.mtime = 0
        return ti

    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(root)), recursive=False, filter=owner)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.replace(out)
    return digest


# --------------------------------------------------------------------------- docker


def current_labels(url: str) -> dict[str, str] | None:
    r = images.docker(url, "image", "inspect", "--format", "{{json .Config.Labels}}", IMAGE)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip() or "null") or {}


def import_image(url: str, tarball: Path, labels: dict[str, str]) -> None:
    label = " ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    changes = [
        'CMD ["/usr/bin/python3", "-u", "/app/app.py"]',
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "ENV PATH=/usr/bin",
        "WORKDIR /app",
        "USER 10001:10001",
        f"LABEL {label}",
    ]
    cmd = [*images.docker_command(url), "import"]
    for c in changes:
        cmd += ["--change", c]
    cmd += [str(tarball), IMAGE]
    subprocess.run(cmd, check=True, text=True, capture_output=True)


SMOKE = ("import sys; sys.path.insert(0, '/app'); import app, ssl, hashlib, json, redis; "
         "assert app.host_port('redis://u:p@127.0.1.1:30001') == '127.0.1.1:30001'; "
         "print('python', sys.version.split()[0], 'redis-py', redis.__version__, ssl.OPENSSL_VERSION)")


def smoke_test(url: str) -> str:
    r = images.docker(url, "run", "--rm", "--network", "none", "--label", "redis-addons.smoke=1",
                      IMAGE, "/usr/bin/python3", "-c", SMOKE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"smoke test failed: {(r.stdout + r.stderr).strip()[-800:]}")
    return r.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help='"host-a=unix:///... host-b=unix:///..." (default: from hosts.json)')
    ap.add_argument("--force", action="store_true", help="rebuild and re-import even when the labels match")
    ap.add_argument("--no-smoke", action="store_true", help="skip the smoke test of a new image")
    args = ap.parse_args()

    seen: dict[str, str] = {}
    for n, u in images.engines_from_args(args.engines):
        seen.setdefault(u, n)  # engines sharing one URL are handled once
    engines = [(n, u) for u, n in seen.items()]

    try:
        labels = wanted_labels()
        todo = []
        for n, u in engines:
            have = current_labels(u)
            if args.force or have is None or any(have.get(k) != v for k, v in labels.items()):
                todo.append((n, u))
        if not todo:
            return 0
        cache = images.home() / "build" / "demo-app"
        root, tarball = cache / "rootfs", cache / "demo-app.tar"
        cache.mkdir(parents=True, exist_ok=True)
        info = make_rootfs(root, labels)
        digest = make_tarball(root, tarball)
        labels = {**labels, f"{LABEL_PREFIX}-rootfs-sha256": digest}
        log(f"{IMAGE}: rootfs from {', '.join(info['debian_packages'])} + python3.11 stdlib, "
            f"{len(info['libraries'])} shared libraries ({tarball.stat().st_size / 1e6:.1f} MB tarball)")
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        log(f"ERROR {IMAGE}: {e}")
        return 1

    errors = []
    for n, u in todo:
        try:
            images.docker(u, "rmi", "-f", IMAGE)
            import_image(u, tarball, labels)
            if args.no_smoke:
                log(f"{n}: {IMAGE} imported")
            else:
                log(f"{n}: {IMAGE} imported, smoke test ok: {smoke_test(u)}")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as e:
            images.docker(u, "rmi", "-f", IMAGE)  # the next run retries
            detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) and e.stderr else e
            errors.append(f"{n} {IMAGE}: {detail}")
    for e in errors:
        log(f"ERROR {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
