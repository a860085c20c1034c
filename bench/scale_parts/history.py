"""An installation's history made through the domain, as the engine records it, with no container:
each addon provisioned, moved by a plan change to another host, and backed up once (its Addon,
Cluster, Operation and Backup aggregates and their events, saved with the engine's EventLog)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

from domain.addon import Addon
from domain.backup import Backup
from domain.catalog import PlanCatalog
from domain.names import addon_name
from domain.operation import STEPS, Operation
from domain.placement import Placement
from domain.settings import DEFAULT_SETTINGS
from engine.clusters import data_node, new_cluster, promote
from engine.settings import DockerHost
from engine.store import EventLog

ADDONS_PER_APP = 2  # what `addons` lists for one app
SAVE_EVERY = 50  # addons' aggregates per save (one transaction): the history is written faster, event by event alike
VERSION = "7.0.15"
FIRST_PLAN, SECOND_PLAN = "redis-starter-256", "redis-starter-512"
BACKUP_DAY = date(2026, 1, 1)


def app_of(number: int) -> str:
    return f"scale-{number // ADDONS_PER_APP:06d}"


def name_of(number: int) -> str:
    return addon_name(app_of(number), number % ADDONS_PER_APP + 1000)


def place(hosts: tuple[DockerHost, ...], number: int, shift: int) -> Placement:
    """Spread over the hosts and their ports (these nodes exist only in the log)."""
    host = hosts[(number + shift) % len(hosts)]
    span = host.last_port - host.first_port + 1
    return Placement(host.name, host.address, host.first_port + (number // len(hosts)) % span)


def run_steps(operation: Operation) -> None:
    for step in STEPS[operation.kind]:
        operation.start_step(step)
        operation.succeed_step(step)
    operation.mark_succeeded()


def an_addon_history(number: int, hosts: tuple[DockerHost, ...], plans: PlanCatalog) -> list:
    """The aggregates of one addon: provisioned (Provisioning's events), its plan changed onto another
    host (PlanChange's: a new node placed, promoted, the old one retired), then one scheduled backup."""
    name, app = name_of(number), app_of(number)
    first, second = place(hosts, number, 0), place(hosts, number, 1)
    provision = Operation(kind="provision", addon=name, app=app)
    node = f"redis-addons-{name}-{provision.id.hex[:8]}"
    addon = Addon(name=name, app=app, plan=FIRST_PLAN, memory_mib=plans.get(FIRST_PLAN).memory_mib,
                  redis_version=VERSION, host=first.host, address=first.address, port=first.port, container=node,
                  volume=f"{node}-data", operation_id=provision.id, settings=DEFAULT_SETTINGS, tls_port=None)
    cluster = new_cluster(addon, provision.id)
    run_steps(provision)
    addon.mark_provisioned(operation_id=provision.id)
    promote(cluster, addon.container, "provisioned")
    move = Operation(kind="change_plan", addon=name, app=app)
    moved = f"redis-addons-{name}-{move.id.hex[:8]}"
    addon.request_plan_change(plans.get(SECOND_PLAN), second, moved, f"{moved}-data", move.id, 0)
    cluster.place_node(data_node(addon, addon.target, move.id))
    run_steps(move)
    addon.mark_plan_changed(operation_id=move.id)
    promote(cluster, moved, "plan change")
    cluster.retire_node(node)
    at = datetime.combine(BACKUP_DAY, datetime.min.time(), tzinfo=timezone.utc) + timedelta(seconds=number)
    backup = Backup.request(addon=name, app=app, tier="starter", kind="scheduled", requested_at=at, day=BACKUP_DAY,
                            redis_version=VERSION)
    taking = Operation(kind="backup", addon=name, app=app, subject=str(backup.id))
    backup.mark_started()
    run_steps(taking)
    backup.mark_done(size=4096, sha256="0" * 64, location=f"{app}/{backup.name}", snapshot={"0": {"keys": 10}})
    return [addon, cluster, provision, move, backup, taking]


async def write_history(events: EventLog, addons: int, hosts: tuple[DockerHost, ...]) -> dict:
    """`addons` addons' histories saved into an opened, empty event store: how many events, how long."""
    plans = PlanCatalog.load()
    t0 = time.perf_counter()
    for start in range(0, addons, SAVE_EVERY):
        aggregates = [a for n in range(start, min(addons, start + SAVE_EVERY)) for a in an_addon_history(n, hosts, plans)]
        await events.save(*aggregates)
    return dict(events=await events.max_position(), write_s=time.perf_counter() - t0)
