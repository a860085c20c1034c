"""Demo app: a long-running client that really uses the Redis database in its environment.

Reads REDIS_URL (fallback SCALINGO_REDIS_URL) and, every 0.2 s:
    INCR demo:counter ; SET demo:last-seen <unix time> ; LPUSH demo:log <iso time> ; LTRIM demo:log 0 99
On each (re)connection it also writes
    SET  demo:app-started-at <unix time this process started>
    HSET demo:instances <container id or hostname> <host:port of REDIS_URL>
so a test can tell which database (host:port, never the password) a running instance uses.

Connection errors are logged (first one of an outage, then one line every ~5 s) and retried
every 0.5 s with a fresh connection: the database moves during a plan change and the app is
restarted with a new URL. One status line every ~5 s on stdout. SIGTERM/SIGINT: exit within 1 s.

Optional DEMO_APP_HTTP=127.0.0.1:PORT serves GET / -> {"counter": n, "redis": "host:port", "errors": k}
on that loopback address only (any non-127.x address is refused).

Needs redis-py only (Debian python3-redis). Run: REDIS_URL=redis://default:PW@127.0.1.1:30000 python3 app.py
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import unquote, urlsplit

import redis

TICK = 0.2  # seconds between two rounds of writes
RETRY = 0.5  # seconds between two connection attempts
REPORT_EVERY = 5.0  # seconds between two status lines (and two "still failing" lines)
SOCKET_TIMEOUT = 0.5  # connect and read timeout: a dead server is noticed fast, SIGTERM is never delayed


class Stop(BaseException):
    """Raised by the signal handler: unwinds whatever the main thread is blocked in."""


def log(msg: str) -> None:
    print(f"{datetime.now(timezone.utc).isoformat(timespec='milliseconds')} demo-app: {msg}", flush=True)


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or os.environ.get("SCALINGO_REDIS_URL") or None


def host_port(url: str) -> str:
    """host:port of a redis:// or rediss:// URL, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}"


def secrets_of(url: str) -> list[str]:
    """The password as written in the URL and decoded: scrubbed from every line we print."""
    raw = urlsplit(url).password
    return [s for s in {raw, unquote(raw)} if s] if raw else []


def instance_id() -> str:
    """This container's id (short), found in the bind mounts Docker makes; else the hostname."""
    if os.environ.get("DEMO_APP_INSTANCE"):
        return os.environ["DEMO_APP_INSTANCE"]
    try:
        with open("/proc/self/mountinfo") as f:
            m = re.search(r"/containers/([0-9a-f]{64})/", f.read())
        if m:
            return m.group(1)[:12]
    except OSError:
        pass
    return f"{socket.gethostname()}:{os.getpid()}"


def loopback_bind(spec: str) -> tuple[str, int]:
    """Parse DEMO_APP_HTTP; only 127.0.0.0/8 is accepted."""
    host, sep, port = spec.rpartition(":")
    if not sep:
        raise ValueError(f"DEMO_APP_HTTP={spec!r}: expected 127.x.y.z:PORT")
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"DEMO_APP_HTTP={spec!r}: host must be a 127.x.y.z address") from None
    if not addr.is_loopback:
        raise ValueError(f"DEMO_APP_HTTP={spec!r}: refusing to listen outside loopback (127.0.0.0/8)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"DEMO_APP_HTTP={spec!r}: bad port")
    return str(addr), int(port)


class State:
    def __init__(self, endpoint: str):
        self.lock = threading.Lock()
        self.counter: int | None = None
        self.errors = 0
        self.endpoint = endpoint

    def snapshot(self) -> dict:
        with self.lock:
            return {"counter": self.counter, "redis": self.endpoint, "errors": self.errors}


def serve_http(bind: tuple[str, int], state: State) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.split("?", 1)[0] != "/":
                self.send_error(404)
                return
            body = json.dumps(state.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args) -> None:  # quiet: stdout is for status lines
            pass

    server = HTTPServer(bind, Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry_on_timeout=False,
        client_name="demo-app",
    )


def run(url: str, state: State, started_at: int, me: str) -> None:
    secrets = secrets_of(url)

    def scrub(text: str) -> str:
        for s in secrets:
            text = text.replace(s, "***")
        return text

    client: redis.Redis | None = None
    down_since: float | None = None
    down_errors = 0
    last_error_line = 0.0
    last_report = time.monotonic()
    while True:
        try:
            if client is None:
                client = connect(url)
                client.set("demo:app-started-at", started_at)
                client.hset("demo:instances", me, state.endpoint)
                if down_since is not None:
                    log(f"reconnected to {state.endpoint} after {down_errors} failed attempt(s), "
                        f"{time.monotonic() - down_since:.1f}s")
                    down_since, down_errors = None, 0
            now = time.time()
            pipe = client.pipeline(transaction=False)
            pipe.incr("demo:counter")
            pipe.set("demo:last-seen", int(now))
            pipe.lpush("demo:log", datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"))
            pipe.ltrim("demo:log", 0, 99)
            counter = pipe.execute()[0]
            with state.lock:
                state.counter = counter
            if time.monotonic() - last_report >= REPORT_EVERY:
                last_report = time.monotonic()
                log(f"counter={counter} redis={state.endpoint} errors={state.errors}")
            time.sleep(TICK)
        except (redis.RedisError, OSError) as e:
            with state.lock:
                state.errors += 1
            mono = time.monotonic()
            if down_since is None:
                down_since, down_errors, last_error_line = mono, 0, mono
                log(f"redis {state.endpoint} unavailable ({type(e).__name__}: {scrub(str(e))}); "
                    f"retrying every {RETRY}s with a fresh connection")
            elif mono - last_error_line >= REPORT_EVERY:
                last_error_line = mono
                log(f"redis {state.endpoint} still unavailable after {down_errors + 1} attempt(s) "
                    f"({type(e).__name__}: {scrub(str(e))})")
            down_errors += 1
            if client is not None:
                try:
                    client.close()
                    client.connection_pool.disconnect()
                except Exception:  # noqa: BLE001 (the connection is already broken)
                    pass
                client = None
            time.sleep(RETRY)


def main() -> int:
    url = redis_url()
    if not url:
        log("neither REDIS_URL nor SCALINGO_REDIS_URL is set")
        return 2
    if not url.startswith(("redis://", "rediss://", "unix://")):
        log(f"unsupported URL scheme in REDIS_URL ({url.split(':', 1)[0]}://...)")
        return 2
    state = State(host_port(url))

    def on_signal(signum, frame) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = None
    try:
        if os.environ.get("DEMO_APP_HTTP"):
            try:
                bind = loopback_bind(os.environ["DEMO_APP_HTTP"])
            except ValueError as e:
                log(str(e))
                return 2
            server = serve_http(bind, state)
            log(f"http on {bind[0]}:{bind[1]}")
        me = instance_id()
        log(f"instance {me} using redis {state.endpoint}")
        run(url, state, int(time.time()), me)
    except Stop as s:
        log(f"{s}: stopping (counter={state.counter}, errors={state.errors})")
    finally:
        if server is not None:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
