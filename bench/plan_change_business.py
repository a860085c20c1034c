"""The Business case of bench/plan_change.py: the plan change of a Business addon (a cluster: two data
nodes, three Sentinels, two HAProxy bound to the entry address in REDIS_URL) holding ~100 MB while the
Starter case's writer writes through REDIS_URL. Run with `bench/plan_change.py --business` (after the
Starter case) or `--business-only`.

The addon is provisioned through the engine (add_addon, wait_for_operation) on redis-business-512
(512 MiB per data node: the ~100 MB loaded are ~150 MiB of used_memory, and a full sync's buffers fit
beside them); the app is registered with a restart hook on a loopback HTTP server of the bench, which
only counts its calls (the body, which holds the environment, is read and dropped). ~100 MB are loaded
through REDIS_URL (common.load_keys, as bench/failover.py loads). Rounds alternate the direction on the
same addon: 512 -> 1024, 1024 -> 512, ... Before each, the cluster must be fully redundant with the
three Sentinels agreeing (failover.ClusterView.wait_ready, not measured). The data nodes and Sentinels
serve TLS only: every connection the bench makes to one of them (the Sentinels' view, the probe, the
new nodes' maxmemory) is TLS verified with the installation's CA (common.over_tls).

Each round: the writer process of the Starter case (INCR of a counter and SET <round prefix><n>, each
acknowledged, one connection through REDIS_URL, a new connection 5 ms after an error; socket timeout
150 s, so a write held by CLIENT PAUSE WRITE is latency, not a failure) writes for 1 s, then
engine.change_plan, wait_for_operation, 1 s more. The URL file is followed as in the Starter case
(engine.environment every 20 ms): it must not change. Measured: the longest write gap (from the
sending of the first write that failed to the next acknowledged one), the longest latency of an
acknowledged write, the longest time without any acknowledgement, and in which saga steps each fell;
the operation's time and each step's share (the step start/end times the Operation records); the
acknowledged writes lost (every acknowledged SET and the counter read back through REDIS_URL); the
loaded keys still there; the hook's calls (the app restarted or not); both data nodes new with the
target plan's maxmemory, on two hosts, the Sentinels and HAProxy kept, the old data containers gone.

The engine runs as in production: the watcher every 2 s (the engine's default, kept), the scheduler
every 60 s. The addon is removed through the engine (in a `finally` too); plan_change.py checks the
hosts hold nothing of the run afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime

import aiodocker
from aiohttp import web

from common import (WRITER_HEADER, ca_file, load_keys, ms, node_endpoint, over_tls, p50, print_targets, remove_addon, s2, step_timings,
                    writer_cells)

from failover import ClusterView, code_state, sentinel_probe

PLANS = ("redis-business-512", "redis-business-1024")  # rounds go 512 -> 1024, 1024 -> 512, ...
STEPS = ["add_first", "sync_first", "retire_replica", "add_second", "sync_second", "switch", "retire_primary", "publish"]
GAP_TARGET_S = 1.0
OP_TIMEOUT_S = 600.0  # two full syncs of ~100 MB, each waiting for the Sentinels to read the replica's priority
READY_TIMEOUT_S = 180.0
PROVISION_ATTEMPTS = 3
WRITE_BEFORE_S = 1.0
WRITE_AFTER_S = 1.0


class Hook:
    """The app's restart hook: a loopback HTTP server counting the calls (and when)."""

    def __init__(self):
        self.calls: list[float] = []
        self.runner: web.AppRunner | None = None
        self.url = None

    async def start(self) -> None:
        async def restart(request: web.Request) -> web.Response:
            await request.read()  # the environment, passwords included: dropped
            self.calls.append(time.time())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/restart", restart)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/restart"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def live(nodes: list[dict], role: str) -> list[dict]:
    return [n for n in nodes if n["role"] == role and n["state"] not in ("retired", "left")]


def steps_during(span: list[float] | None, steps: dict) -> list[str]:
    """The saga steps whose recorded [start, end] overlaps the wall-clock span [a, b]."""
    if not span or span[0] is None:
        return []
    a, b = span[0], span[1] if span[1] is not None else time.time()
    return [name for name, s in steps.items()
            if s["started_ts"] is not None and s["ended_ts"] is not None and s["started_ts"] <= b and s["ended_ts"] >= a]


async def gone(engine, node: dict) -> bool:
    try:
        await engine.runtime.client(node["host"]).containers.get(node["container"])
    except aiodocker.DockerError as error:
        return error.status == 404
    return False


async def maxmemory(node: dict, password: str, ca) -> int | None:
    """The node's maxmemory, asked of itself (over TLS verified with the CA: it serves nothing else)."""
    import redis.asyncio as aioredis

    address, port = node_endpoint(node)
    client = aioredis.Redis(host=address, port=port, username="default", password=password, **over_tls(node, ca),
                            socket_connect_timeout=2, socket_timeout=5, decode_responses=True)
    try:
        return int((await client.config_get("maxmemory"))["maxmemory"])
    except Exception:  # noqa: BLE001 - recorded as unknown
        return None
    finally:
        await client.aclose()


async def business_round(engine, kit: dict, view: ClusterView, hook: Hook, app: str, addon: str, url: str, source: str,
                         target: str, keys: int, workdir, label: str) -> dict:
    """One plan change under the writer; the sample (also when the operation did not succeed)."""
    ready = await view.wait_ready(READY_TIMEOUT_S)
    before = await engine.nodes(app, addon)
    hook_calls = len(hook.calls)
    load_before = os.getloadavg()[0]
    writer = kit["Writer"](workdir, label, url, prefix=f"w{label}:")
    probe = None
    old_primary = await view.primary()
    async with kit["writing"](engine, app, writer) as done:
        await asyncio.sleep(WRITE_BEFORE_S)
        wall_t0, t0 = time.time(), time.perf_counter()
        # Every 50 ms: when one, two, three Sentinels first name a primary other than the old one.
        probe = asyncio.create_task(sentinel_probe(view, old_primary, wall_t0, done))
        change = await engine.change_plan(app, addon, target)
        op = await engine.wait_for_operation(change["operation_id"], timeout=OP_TIMEOUT_S)
        t1, wall_t1 = time.perf_counter(), time.time()
        await asyncio.sleep(WRITE_AFTER_S)
        written = await writer.stop()
    sentinels = await probe if probe is not None else {}
    load_after = os.getloadavg()[0]
    checked = await kit["check"](url, written, keys)
    timings = await step_timings(engine, addon, change["operation_id"])
    steps = timings.get("steps", {})
    recorded_s = (timings["finished_ts"] - timings["started_ts"]) if timings.get("finished_ts") and timings.get("started_ts") else None
    shares = {name: dict(duration_s=s["duration_s"], gap_before_s=s["gap_before_s"], attempts=s["attempts"],
                         share=None if s["duration_s"] is None or not recorded_s else s["duration_s"] / recorded_s,
                         started_after_s=None if s["started_ts"] is None else s["started_ts"] - wall_t0, detail=s["detail"])
              for name, s in steps.items()}
    w = kit["summary"](written)
    gap = w["longest_gap"]
    switch = steps.get("switch", {})
    # Where the longest gap goes, in s from the switch step's start.
    since = (lambda t: None if t is None or switch.get("started_ts") is None else round(t - switch["started_ts"], 3))
    timeline = None if gap is None else dict(
        switch_ended=since(switch.get("ended_ts")), first_failed_write_sent=since(gap["start"]),
        majority_of_sentinels_named_new=since(None if "named_by_2_s" not in sentinels else wall_t0 + sentinels["named_by_2_s"]),
        errors={k: dict(n=v[0], first=since(v[1]), last=since(v[2])) for k, v in (gap.get("kinds") or {}).items()},
        writes_back=since(gap["end"]))
    after = await engine.nodes(app, addon)
    password = engine.secrets.password_for(addon)
    memory = engine.plans.provisionable(target).memory_mib
    new_data = live(after, "data")
    old_data = live(before, "data")
    old_gone = [await gone(engine, n) for n in old_data]
    shown = await engine.addon(app, addon)
    url_after = (await engine.environment(app)).get("REDIS_URL")
    return dict(
        case="business", label=label, addon=addon, plans=[source, target], operation_id=change["operation_id"],
        status=op["status"], error=op.get("error"), operation_steps=op.get("steps"),
        ready_waited_s=ready["waited_s"], load_1m_before=load_before, load_1m_after=load_after,
        operation_s=t1 - t0, recorded_operation_s=recorded_s, wall_t0=wall_t0, wall_t1=wall_t1,
        after_last_step_s=timings.get("after_last_step_s"), steps=shares,
        writer=w, checked=checked, sentinels_named_new_after_start=sentinels, gap_timeline=timeline,
        where=dict(longest_gap=steps_during(None if gap is None else [gap["start"], gap["end"]], steps),
                   longest_latency=steps_during(w["max_latency_at"], steps),
                   longest_noack=steps_during(w["max_noack_span"], steps)),
        longest_gap_after_start_s=None if gap is None else gap["start"] - wall_t0,
        longest_noack_after_start_s=None if not w["max_noack_span"] else w["max_noack_span"][0] - wall_t0,
        app_restarted=len(hook.calls) > hook_calls, hook_calls=len(hook.calls) - hook_calls,
        restart_step=any(s.get("name") == "restart_app" for s in op.get("steps") or []),
        url_unchanged=url_after == url and len(written["urls"]) == 1 and len(writer.url_changes) == 1,
        plan_after=shown["plan"], status_after=shown["status"],
        nodes=dict(data_before=[n["id"] for n in old_data], data_after=[n["id"] for n in new_data],
                   data_all_new=not {n["id"] for n in new_data} & {n["id"] for n in old_data},
                   data_hosts=sorted({n["host"] for n in new_data}),
                   maxmemory_mib=[None if (m := await maxmemory(n, password, ca_file(engine))) is None else m / 2**20 for n in new_data],
                   target_memory_mib=memory, old_data_containers_gone=all(old_gone),
                   sentinels_proxies_kept=sorted(n["id"] for n in live(before, "sentinel") + live(before, "proxy"))
                   == sorted(n["id"] for n in live(after, "sentinel") + live(after, "proxy"))))


async def business_case(engine, kit: dict, app: str, args, workdir, record: dict, say) -> None:
    """Provision, load, the rounds, removal; fills `record` as it goes (an interrupted run keeps what was measured)."""
    hook = Hook()
    await hook.start()
    addon = None
    try:
        await engine.register_app(app, restart="hook", url=hook.url)
        record.update(app=app, rounds=[], plans=list(PLANS), keys=args.keys, provision_failures=[], code=code_state(),
                      watch_interval_s=engine.settings.watch_interval_s, scheduler_tick_s=engine.settings.scheduler_tick_s)
        for attempt in range(PROVISION_ATTEMPTS):
            t0 = time.monotonic()
            requested = await engine.add_addon(app, PLANS[0])
            addon = requested["addon"]
            op = await engine.wait_for_operation(requested["operation_id"], timeout=OP_TIMEOUT_S)
            if op["status"] == "succeeded":
                break
            # Other engines (other people's tests) share the hosts: one may take a port this one chose
            # at the same moment. The provisioning removed what it made; recorded, then tried again.
            record["provision_failures"].append(f"{addon}: {op['status']}: {op.get('error')}")
            say(f"provisioning {addon} ended {op['status']}: {op.get('error')}")
            if op["status"] != "failed" or attempt + 1 == PROVISION_ATTEMPTS:
                raise RuntimeError(f"provisioning {addon} ended {op['status']}: {op.get('error')}")
            addon = None
        record["addon"] = addon
        record["provision_s"] = time.monotonic() - t0
        url = (await engine.environment(app))["REDIS_URL"]
        view = ClusterView(engine, app, addon)
        say(f"{addon} ({PLANS[0]}) provisioned in {record['provision_s']:.1f} s")
        record["data"] = await load_keys(url, args.keys)
        say(f"loaded {args.keys} keys through REDIS_URL, used_memory {record['data']['used_memory'] / 2**20:.0f} MiB")
        for i in range(args.business_rounds):
            source, target = PLANS[i % 2], PLANS[(i + 1) % 2]
            label = f"b{i + 1}"
            sample = await business_round(engine, kit, view, hook, app, addon, url, source, target, args.keys, workdir, label)
            sample["round"] = i + 1
            record["rounds"].append(sample)
            w, c = sample["writer"], sample["checked"]
            say(f"{label} {source} -> {target}: {sample['status']} in {sample['operation_s']:.2f} s; longest write gap "
                f"{w['longest_gap_s']:.2f} s {sample['where']['longest_gap']}, longest latency {w['max_latency_s']:.2f} s, "
                f"longest no-ack {w['max_noack_s']:.2f} s {sample['where']['longest_noack']}; acked writes lost "
                f"{c['acked_writes_lost']}; app restarted {sample['app_restarted']}")
            if sample["status"] != "succeeded":
                record["stopped"] = f"{label}: the plan change ended {sample['status']}: {sample['error']}"
                break
    finally:
        if addon is not None:
            record["removal_error"] = await remove_addon(engine, app, addon, OP_TIMEOUT_S)
            record["removed"] = record["removal_error"] is None
        await hook.close()


# -- summary and report ---------------------------------------------------------------------------


def summarise_business(record: dict) -> dict:
    rs = record.get("rounds", [])
    rows = [dict(case=f"{r['label']} {r['plans'][0].rsplit('-', 1)[1]}->{r['plans'][1].rsplit('-', 1)[1]}", n=1,
                 status=r["status"], operation_s=r["operation_s"], longest_gap_s=r["writer"]["longest_gap_s"],
                 max_latency_s=r["writer"]["max_latency_s"], max_noack_s=r["writer"]["max_noack_s"],
                 lost=r["checked"]["acked_writes_lost"], writes_per_s=r["writer"]["writes_per_s"], restarted=r["app_restarted"])
            for r in rs]
    if rs:
        rows.append(dict(case="business p50", n=len(rs), status="", operation_s=p50([r["operation_s"] for r in rs]),
                         longest_gap_s=p50([r["writer"]["longest_gap_s"] for r in rs]),
                         max_latency_s=p50([r["writer"]["max_latency_s"] for r in rs]),
                         max_noack_s=p50([r["writer"]["max_noack_s"] for r in rs]),
                         lost=sum(r["checked"]["acked_writes_lost"] for r in rs),
                         writes_per_s=p50([r["writer"]["writes_per_s"] for r in rs]),
                         restarted=any(r["app_restarted"] for r in rs)))
    steps = {name: dict(duration_p50_s=p50([r["steps"].get(name, {}).get("duration_s") for r in rs]),
                        share_p50=p50([r["steps"].get(name, {}).get("share") for r in rs]),
                        per_round_s=[r["steps"].get(name, {}).get("duration_s") for r in rs])
             for name in STEPS}
    between = p50([sum(s["gap_before_s"] or 0 for s in r["steps"].values()) + (r["after_last_step_s"] or 0) for r in rs])
    gap = max((r["writer"]["longest_gap_s"] for r in rs), default=None)
    noack = max((r["writer"]["max_noack_s"] for r in rs), default=None)
    lost = sum(r["checked"]["acked_writes_lost"] for r in rs)
    only_switch = all(set(r["where"]["longest_noack"]) <= {"switch"} and set(r["where"]["longest_gap"]) <= {"switch"} for r in rs)
    ok = bool(rs) and all(r["status"] == "succeeded" for r in rs)
    targets = {
        f"longest write gap <= {GAP_TARGET_S:.0f} s (max over rounds)": dict(value=gap, passed=ok and gap <= GAP_TARGET_S),
        f"longest time without any acknowledgement <= {GAP_TARGET_S:.0f} s (max over rounds)":
            dict(value=noack, passed=ok and noack <= GAP_TARGET_S),
        "the longest gap and no-ack fall in the switch only": dict(value=only_switch, passed=ok and only_switch),
        "acknowledged writes lost == 0": dict(value=lost, passed=ok and lost == 0),
        "app not restarted, REDIS_URL unchanged": dict(
            value=all(not r["app_restarted"] and not r["restart_step"] and r["url_unchanged"] for r in rs),
            passed=ok and all(not r["app_restarted"] and not r["restart_step"] and r["url_unchanged"] for r in rs)),
    }
    checks = dict(
        loaded_data_intact=all(r["checked"]["loaded_keys_found"] == r["checked"]["loaded_keys"] for r in rs),
        writes_resumed=all(r["writer"]["writes_resumed"] for r in rs),
        data_nodes_replaced=all(r["nodes"]["data_all_new"] and len(r["nodes"]["data_after"]) == 2
                                and len(r["nodes"]["data_hosts"]) == 2 for r in rs),
        maxmemory_of_target=all(r["nodes"]["maxmemory_mib"] == [r["nodes"]["target_memory_mib"]] * 2 for r in rs),
        old_data_containers_gone=all(r["nodes"]["old_data_containers_gone"] for r in rs),
        sentinels_proxies_kept=all(r["nodes"]["sentinels_proxies_kept"] for r in rs),
        plan_and_status=all(r["plan_after"] == r["plans"][1] and r["status_after"] == "running" for r in rs),
    )
    return dict(table=rows, steps_p50=steps, saga_between_steps_p50_s=between, targets=targets, checks=checks)


def print_business(record: dict, summary: dict) -> None:
    rs = record.get("rounds", [])
    data = record.get("data")
    print(f"\nBusiness plan change  {' <-> '.join(record.get('plans', PLANS))}  addon {record.get('addon')}  "
          f"(provisioned in {s2(record.get('provision_s'))} s; engine watcher every {record.get('watch_interval_s')} s, "
          f"scheduler every {record.get('scheduler_tick_s')} s)")
    code = record.get("code") or {}
    if code:
        print(f"engine: commit {code.get('commit')}" + (f" with uncommitted changes to {', '.join(code['uncommitted'])}"
                                                         if code.get("uncommitted") else ""))
    if data:
        print(f"data: {data['keys']} keys x {data['value_bytes']} B random in 5 databases, loaded through REDIS_URL "
              f"(used_memory {data['used_memory'] / 2**20:.0f} MiB); writer: separate process through REDIS_URL (the entry), "
              "INCR + SET, one at a time")
    for failure in record.get("provision_failures") or []:
        print(f"provisioning failed and was tried again: {failure}")
    if record.get("stopped"):
        print(f"STOPPED: {record['stopped']}")
    if rs:
        loads = [x for r in rs for x in (r["load_1m_before"], r["load_1m_after"])]
        print(f"machine load (1-min average) around the rounds: {min(loads):.2f} .. {max(loads):.2f}")
    print()
    header = f"{'case':<13} | {'n':>1} | {'operation s':>11} | {WRITER_HEADER} | {'app restarted':>13}"
    print(header)
    print("-" * len(header))
    for r in summary["table"]:
        print(f"{r['case']:<13} | {r['n']:>1} | {s2(r['operation_s']):>11} | {writer_cells(r)} | {'yes' if r['restarted'] else 'no':>13}")
    for r in rs:
        w, g = r["writer"], r["writer"]["longest_gap"]
        print(f"  {r['label']}: {r['status']}; longest gap at +{s2(r['longest_gap_after_start_s'])} s in {r['where']['longest_gap']}"
              + (f" ({g['failures']} failed attempts, first: {g['first_error'][:60]}; outstanding {s2(g['first_failure_outstanding_s'])} s)"
                 if g else "")
              + f"; longest latency in {r['where']['longest_latency']}; longest no-ack at +{s2(r['longest_noack_after_start_s'])} s "
                f"in {r['where']['longest_noack']}; {w['acks']} acks, {w['failures']} failures {w['errors']}")
        t = r.get("gap_timeline")
        if t:
            errors = ", ".join(f"{k} x{v['n']} {s2(v['first'])}..{s2(v['last'])}" for k, v in t["errors"].items())
            print(f"    longest gap, s from the switch step's start: first failed write sent {s2(t['first_failed_write_sent'])}; "
                  f"2 of 3 Sentinels name a new primary {s2(t['majority_of_sentinels_named_new'])}; switch step ends "
                  f"{s2(t['switch_ended'])}; errors {errors}; writes back {s2(t['writes_back'])}")
        if r["status"] != "succeeded":
            print(f"    error: {r['error']}")
            for s in r["operation_steps"] or []:
                print(f"    step {s.get('name')}: {s.get('status')} attempts {s.get('attempts')} {str(s.get('detail'))[:120]} "
                      f"{str(s.get('error') or '')[:200]}")
    print("\nsteps: p50 s (share of the recorded operation time), per round s")
    for name, v in summary["steps_p50"].items():
        share = "-" if v["share_p50"] is None else f"{v['share_p50'] * 100:.0f} %"
        print(f"  {name:<15} {s2(v['duration_p50_s']):>6} s  {share:>5}   {' '.join(s2(x) for x in v['per_round_s'])}")
    print(f"  between steps (the saga's own time) {ms(summary['saga_between_steps_p50_s'])} ms")
    for r in rs:
        sw = r["steps"].get("switch", {})
        print(f"  {r['label']} switch: {str(sw.get('detail'))[:150]}")
    print_targets(summary["targets"], "targets (Business)")
    c = summary["checks"]
    print("checks: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items()))
    print(f"Business addon removed through the engine: {record.get('removed')}"
          + (f" ({record['removal_error']})" if record.get("removal_error") else ""))


def business_only_note(started_at: str | None) -> str:
    when = datetime.fromisoformat(started_at).strftime("%Y-%m-%d %H:%M UTC") if started_at else "no earlier run"
    return f"(--business-only: the Starter samples in the results file are kept from their own run, {when})"
