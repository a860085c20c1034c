"""Force TLS on a Business addon (reference, "Force TLS Connections"), as engine/tls_change.py runs
it: only the entry changes. A cluster made to serve TLS (engine/cluster_forming.py) has no
plaintext path inside it from the start: its data nodes and Sentinels serve TLS only, replicate
and watch each other over TLS, and HAProxy checks them over TLS. What the app reaches is the
entry, which serves both until TLS is forced; forced, HAProxy binds its TLS port only.

An HAProxy reloaded (SIGUSR2) stops listening on the port it no longer binds at once; the
plaintext sessions still open stay with the old process until `hard-stop-after` (10 s) ends them.
"""

from __future__ import annotations

from domain.addon import Addon
from domain.catalog import ComponentCatalog
from domain.cluster import Cluster
from engine.cluster_nodes import address, entry_endpoint, proxy_spec, serves_tls_only
from engine.cluster_provisioning import sentinel_secret
from engine.cluster_rewiring import route_proxies
from engine.ports import EffectError, Endpoint, RedisAdmin, Runtime, SecretStore, TransientError

ENTRY_ASKS = 6  # fresh connections each way: one HAProxy of two missed by all of them 1 time in 64


def serves_tls_inside(cluster: Cluster) -> bool:
    """Every data node and Sentinel of the cluster serves TLS only (a cluster made before Business
    addons served TLS has none that does)."""
    inside = [n for n in cluster.live_nodes if n["role"] in ("data", "sentinel")]
    return bool(inside) and all(serves_tls_only(n) for n in inside)


async def bind_entry(runtime: Runtime, components: ComponentCatalog, secrets: SecretStore, addon: Addon,
                     cluster: Cluster, operation, settings: dict, password: str | None = None,
                     every_proxy: bool = False) -> list[str]:
    """Each running HAProxy binds the entry as `settings` say (TLS only when forced) and reloads. Its checks
    authenticate with `password` (a rotation's new one), else the addon's.

    `every_proxy` (a rotation): an HAProxy left checking with the other password marks every data node
    down once that password is refused, so each one recorded down is reached too: its file written
    where its container is, reloaded if that runs again, and one whose host cannot be asked fails the
    call (the step retries it, then fails and is undone) instead of being skipped."""
    password = password or secrets.password_for(addon.name)
    sentinel_password = secrets.password_for(sentinel_secret(addon.name))
    members = {role: [n for n in cluster.live_nodes if n["role"] == role] for role in ("data", "sentinel", "proxy")}
    running = [p for p in members["proxy"] if p["state"] == "running"]

    async def route(proxies: list[dict]) -> list[str]:
        return await route_proxies(runtime, components.get("haproxy"), addon, proxies, members["data"],
                                   members["sentinel"], operation, password, sentinel_password, settings=settings)

    reloaded = await route(running)
    entry = address({"address": addon.address, "port": addon.port})
    for proxy in [p for p in members["proxy"] if p["state"] != "running"]:
        # One that is down gets the file too where its container is left, so that it does not come back
        # binding as before; one whose container or host is gone is replaced from the addon's settings.
        try:
            state = await runtime.is_running(proxy["host"], proxy["container"])
            if state is True and every_proxy:  # back before the watcher saw it: it checks as its file says
                reloaded += await route([proxy])
            elif state is False:
                await runtime.create_node(proxy_spec(addon, proxy, entry, members["data"], members["sentinel"],
                                                     components.get("haproxy"), operation, password, sentinel_password,
                                                     settings=settings))
        except (TransientError, EffectError):
            if every_proxy:
                raise
    return reloaded


async def entry_answers_as_set(redis: RedisAdmin, addon: Addon, password: str, force_tls: bool) -> str:
    """The entry answers over TLS, and over plaintext only when TLS is not forced (a reload just sent
    may not have taken yet: then it is asked again). Both HAProxy bind the entry (SO_REUSEPORT: the
    kernel hands each new connection to one of them), so it is asked on ENTRY_ASKS fresh connections:
    one HAProxy whose new process has not taken yet is found with them, not by the app after."""
    for _ in range(ENTRY_ASKS):
        await redis.ping(entry_endpoint(addon, password))
        try:
            await redis.ping(Endpoint(addon.address, addon.port, password))
            plaintext = True
        except TransientError:
            plaintext = False
        if plaintext == force_tls:
            raise TransientError(f"the entry {addon.address}:{addon.port} "
                                 f"{'still answers' if force_tls else 'does not answer'} plaintext yet")
    if force_tls:
        return f"the entry answers over TLS on {addon.tls_port} only; plaintext on {addon.port} is refused"
    return f"the entry answers plaintext on {addon.port} and TLS on {addon.tls_port}"
