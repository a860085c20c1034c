"""Backup resources, shaped after the reference ("Backups"): an addon's backups (listed, made on
request, restored), each one's archive (streamed, resumable with HTTP Range), the daily schedule.

`{addon}` is an addon ID or the provider name `redis` (the app's only Redis addon): the engine's
backup service resolves both."""

from __future__ import annotations

import base64
import contextlib
import re

import structlog
from aiohttp import web

from adapters.http.addons import outcome, wait_options
from adapters.http.errors import BadRequest, error_response
from adapters.http.inputs import json_object, local_zone_of, text_field
from adapters.http.keys import ENGINE
from domain.errors import InvalidSchedule
from engine.ports import ArchiveAltered

routes = web.RouteTableDef()
log = structlog.get_logger("http")

BACKUPS = "/v1/apps/{app}/addons/{addon}/backups"
LATEST = "latest"  # `{backup}` may name the most recent successful backup
ALTERED = "backup-archive-altered"
SUFFIX_RANGE = re.compile(r"^bytes=-(\d+)$", re.ASCII | re.IGNORECASE)


def service(request: web.Request):
    return request.app[ENGINE].backups


def where(request: web.Request) -> tuple[str, str]:
    return request.match_info["app"], request.match_info["addon"]


async def backup_row(request: web.Request, downloadable: bool = False) -> dict:
    """The backup named in the path (`latest`: the most recent successful one)."""
    svc, (app, addon), backup = service(request), where(request), request.match_info["backup"]
    if backup == LATEST:
        row = await svc.latest_done(app, addon)
        backup = row["id"]
        if not downloadable:
            return row
    if downloadable:
        return await svc.downloadable(app, addon, backup)
    return await svc.get(app, addon, backup)


@routes.get(BACKUPS)
async def list_backups(request: web.Request) -> web.Response:
    return web.json_response({"backups": await service(request).list(*where(request))})


@routes.post(BACKUPS)
async def create_backup(request: web.Request) -> web.Response:
    """Reference, "Creating a Manual Backup" (`backups-create`)."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    requested = await service(request).create(app, addon)
    return await outcome(request, app, requested, wait, timeout, done_status=201, more=backup_of(request, requested))


@routes.get(BACKUPS + "/{backup}")
async def get_backup(request: web.Request) -> web.Response:
    return web.json_response({"backup": await backup_row(request)})


@routes.post(BACKUPS + "/{backup}/restore")
async def restore_backup(request: web.Request) -> web.Response:
    """The addon's data replaced by the archive's: an operation, followed like a plan change."""
    app, addon = where(request)
    wait, timeout = wait_options(request)
    # A backup ID may be another addon's (of any app, removed ones included): the service finds it.
    backup = (await backup_row(request))["id"] if request.match_info["backup"] == LATEST else request.match_info["backup"]
    requested = await service(request).restore(app, addon, backup)
    return await outcome(request, app, requested, wait, timeout, done_status=200, more=backup_of(request, requested))


def backup_of(request: web.Request, requested: dict):
    async def backup() -> dict:
        return {"backup": await service(request).row(requested["backup_id"]),
                **({"from_addon": requested["from_addon"], "from_app": requested["from_app"]}
                   if "from_addon" in requested else {})}
    return backup


# -- the archive ----------------------------------------------------------------


@routes.get(BACKUPS + "/{backup}/archive")
async def download_archive(request: web.Request) -> web.StreamResponse:
    """Reference, "Downloading a Backup": the .tar.gz, streamed from the backup storage.
    One byte range may be asked for (a download resumed); `If-Range` with another ETag gets all."""
    row = await backup_row(request, downloadable=True)
    size, sha256 = int(row["size"]), row["sha256"]
    etag = f'"{sha256}"'
    headers = {
        "Content-Type": "application/gzip",
        "Content-Disposition": f'attachment; filename="{row["name"]}"',
        "ETag": etag,
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",  # RFC 9530
        "X-Backup-SHA256": sha256,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-transform",
    }
    chosen = byte_range(request, size, etag)
    if chosen == "unsatisfiable":
        return error_response(416, "range-not-satisfiable",
                              f"range {request.headers['Range']!r} is outside the archive of {size} bytes",
                              headers={"Content-Range": f"bytes */{size}", "ETag": etag, "Accept-Ranges": "bytes"})
    start, end = chosen or (0, size)
    response = web.StreamResponse(status=206 if chosen else 200, headers=headers)
    response.content_length = end - start
    if chosen:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD" or start == end:
        await response.prepare(request)
        await response.write_eof()
        return response
    async with contextlib.aclosing(service(request).read_archive(row, start, end)) as chunks:
        # The first chunk before the headers: an archive gone from the store is still an error status.
        try:
            first = await anext(chunks, b"")
        except ArchiveAltered as e:  # a resumed download (the CLI's, after a cut) learns why here
            log.error("archive altered on disk", backup=row["id"], at=e.at)
            return error_response(502, ALTERED, str(e), at=e.at)
        await response.prepare(request)
        sent = 0
        try:
            while first:
                await response.write(first)
                sent += len(first)
                first = await anext(chunks, b"")
            if sent != end - start:
                raise OSError(f"the stored archive gave {sent} bytes where {end - start} were expected")
        except ConnectionError as e:
            log.info("archive download interrupted by the client", backup=row["id"], sent=sent, error=str(e))
            return response
        except Exception as e:  # headers are sent: the only honest signal left is a cut connection (an altered
            # chunk too: the client asks for the rest, and that request is answered `backup-archive-altered`)
            log.error("archive download failed", backup=row["id"], sent=sent, error=f"{type(e).__name__}: {e}")
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


def byte_range(request: web.Request, size: int, etag: str) -> tuple[int, int] | str | None:
    """[start, end) of the one range asked for; None for the whole archive (no Range, a Range we do
    not serve — several ranges, a malformed one: RFC 9110 lets a server ignore it — or an If-Range
    that does not match this archive); "unsatisfiable" when it starts past the end."""
    if "Range" not in request.headers:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:  # strong comparison; a date never matches
        return None
    if (suffix := SUFFIX_RANGE.match(request.headers["Range"].strip())) and int(suffix[1]) == 0:
        return "unsatisfiable"  # bytes=-0: aiohttp would read it as the whole file
    try:
        asked = request.http_range
    except ValueError:
        return None
    start, stop = asked.start, asked.stop
    if start is not None and start < 0:  # the last -start bytes
        start = max(size + start, 0)
    if start >= size:
        return "unsatisfiable"
    return start, size if stop is None else min(stop, size)


# -- the schedule -----------------------------------------------------------------


@routes.get("/v1/apps/{app}/addons/{addon}/backup_schedule")
async def get_schedule(request: web.Request) -> web.Response:
    return web.json_response({"schedule": await service(request).schedule(*where(request))})


@routes.put("/v1/apps/{app}/addons/{addon}/backup_schedule")
async def set_schedule(request: web.Request) -> web.Response:
    """Reference, `backups-config --schedule-at 3` (in the CLI machine's time zone, sent as
    `local_zone`) or `--schedule-at "4:00 UTC"`."""
    body = await json_object(request)
    schedule_at = text_field(body, "schedule_at", example="4:00 UTC")
    local_zone = local_zone_of(body, "schedule_at", schedule_at, words_with_zone=2, example="4:00 UTC")
    try:
        schedule = await service(request).set_schedule(*where(request), schedule_at, local_zone)
    except InvalidSchedule as e:
        raise BadRequest(f"field 'schedule_at': {e}", rule=e.rule, field="schedule_at") from None
    return web.json_response({"schedule": schedule})
