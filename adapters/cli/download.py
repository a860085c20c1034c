"""`backups-download`: an archive streamed to `<name>.part` in 1 MiB chunks, hashed as it comes,
renamed to `<name>` only once whole and equal to the server's SHA-256. An interrupted download
leaves the `.part` and the ETag it came from (`<name>.part.etag`); the next run asks for the rest
with `Range: bytes=N-` and `If-Range: <etag>`, so a different archive is fetched whole instead.

A stream cut short is resumed once at once: that is also how an archive altered on disk is told. The
server decrypts as it sends and cuts the stream at the first chunk that fails its authentication; asked
for the rest, it answers `backup-archive-altered` with the byte where it is. The partial file is then
removed: nothing of an altered archive is trusted."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import unquote

from tqdm import tqdm

from adapters.cli.client import Api, ApiError, CliError

CHUNK = 1024 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
ALTERED = "backup-archive-altered"


class StreamCut(CliError):
    """The archive's stream ended early: the `.part` is kept to be resumed."""


def target_path(output: str | None, name: str) -> Path:
    """`--output`: a directory (the archive keeps its name in it) or a file path; default: here."""
    if not output:
        return Path(name)
    path = Path(output).expanduser()
    if path.is_dir():
        return path / name
    if output.endswith(("/", os.sep)):
        raise CliError(f"--output {output}: no such directory")
    if not path.parent.is_dir():
        raise CliError(f"--output {output}: directory {path.parent} does not exist")
    return path


def part_files(target: Path) -> tuple[Path, Path]:
    return target.with_name(target.name + ".part"), target.with_name(target.name + ".part.etag")


def download(api: Api, archive: str, target: Path, progress=None) -> Path:
    """Fetch the archive at API path `archive` into `target`, resuming a `.part` left by an
    interrupted download of the same archive (and once more at once if this one is cut). Returns `target`."""
    try:
        return fetch(api, archive, target, progress)
    except StreamCut:
        return fetch(api, archive, target, progress)


def fetch(api: Api, archive: str, target: Path, progress=None) -> Path:
    part, etag_file = part_files(target)
    offset, etag = resumable(part, etag_file)
    headers = {"Accept": "application/gzip, application/json"}
    if offset:
        headers |= {"Range": f"bytes={offset}-", "If-Range": etag}
    try:
        response = api.stream(archive, headers)
    except ApiError as e:
        if e.rule == ALTERED:
            part.unlink(missing_ok=True)
            etag_file.unlink(missing_ok=True)
            backup = unquote(archive.rstrip("/").split("/")[-2])
            at = (e.body.get("error") or {}).get("at", "?")
            raise CliError(f"backup {backup} is altered on disk at byte {at}: not downloaded") from None
        if e.status != 416 or not offset:
            raise
        # the .part is as long as the archive, or longer: it is not a prefix we can trust; start over
        offset = 0
        headers = {"Accept": headers["Accept"]}
        response = api.stream(archive, headers)
    with response:
        offset = start_of(response, offset)
        expected = response.headers.get("X-Backup-SHA256", "").strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", expected):
            raise CliError("the server sent no X-Backup-SHA256 header with the archive: nothing can check the download")
        length = int(response.headers.get("Content-Length") or -1)
        total = offset + length if length >= 0 else None
        digest = hashlib.sha256()
        if offset:
            hash_file(part, offset, digest)
        etag_file.write_text((response.headers.get("ETag") or "").strip() + "\n")
        received = offset
        with open(part, "r+b" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, file=progress or sys.stderr,
            dynamic_ncols=True, leave=True,
        ) as bar:
            out.seek(offset)
            out.truncate()
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as e:
                raise StreamCut(f"the download stopped at {received} bytes ({str(e) or type(e).__name__}): "
                               f"{part} is kept; run the same command again to resume it") from None
            except KeyboardInterrupt:
                bar.close()
                print(f"interrupted: {part} is kept; run the same command again to resume it", file=sys.stderr)
                raise
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        raise StreamCut(f"the download stopped at {received} of {total} bytes: {part} is kept; "
                       "run the same command again to resume it")
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        etag_file.unlink(missing_ok=True)
        raise CliError(f"checksum mismatch: the downloaded archive's SHA-256 is {digest.hexdigest()}, the server's is "
                       f"{expected}; the file was deleted, download it again")
    os.replace(part, target)
    etag_file.unlink(missing_ok=True)
    return target


def resumable(part: Path, etag_file: Path) -> tuple[int, str]:
    """How much of a previous download is there, and the ETag of the archive it came from
    (without that ETag a .part cannot be trusted: it is fetched again whole)."""
    try:
        etag = etag_file.read_text().strip()
        size = part.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return 0, ""
    return (size, etag) if etag and size else (0, "")


def start_of(response, offset: int) -> int:
    """Where the body starts in the archive: `offset` for a 206 that resumes it, 0 for a whole
    archive (200: no range asked, or If-Range found another archive)."""
    if response.status == 200:
        return 0
    if response.status != 206:
        raise CliError(f"the API answered HTTP {response.status} for the archive")
    match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if not match or int(match[1]) != offset:
        raise CliError(f"the API sent the range {response.headers.get('Content-Range')!r} "
                       f"where bytes {offset}- were asked for")
    return offset


def hash_file(path: Path, length: int, digest) -> None:
    """Feed the first `length` bytes of `path` to `digest`, 1 MiB at a time."""
    with open(path, "rb") as f:
        left = length
        while left and (chunk := f.read(min(CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
