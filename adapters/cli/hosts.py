"""The installation's Docker hosts, the operator's: `hosts` (list), `hosts add NAME --url URL --bind ADDRESS
--ports A-B --memory-mib N [--tls-ca F --tls-cert F --tls-key F]`, `hosts drain NAME`, `hosts remove NAME`."""

from __future__ import annotations

import argparse

from adapters.cli.client import Api, CliError
from adapters.cli.tables import table
from adapters.cli.timeline import INDENT
from adapters.cli.verbs import quote


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "add", "drain", "remove"], default="list")
    p.add_argument("name", nargs="?", metavar="NAME", help="add, drain, remove: the host's name")
    p.add_argument("--url", help="add: its Docker engine, unix:///PATH or tcp://ADDRESS:PORT (with --tls-*)")
    p.add_argument("--bind", help="add: the address its nodes bind to, e.g. 127.0.9.1")
    p.add_argument("--ports", help="add: the ports its nodes may take, FIRST-LAST, e.g. 40000-40999")
    p.add_argument("--memory-mib", type=int, help="add: the memory its nodes may hold, in MiB")
    for part in ("ca", "cert", "key"):
        p.add_argument(f"--tls-{part}", help=f"add, tcp:// only: the {part} file's path on the engine's machine")


def hosts(api: Api, args) -> int:
    if args.action != "list" and not args.name:
        raise CliError(f"`hosts {args.action}` needs the host's NAME (see `redis-addons hosts`)")
    return {"list": listed, "add": add, "drain": drain, "remove": remove}[args.action](api, args)


def listed(api: Api, args) -> int:
    rows = api.get("/v1/hosts")["hosts"]
    if args.name:
        rows = [h for h in rows if h["name"] == args.name] or [api.get(f"/v1/hosts/{quote(args.name)}")["host"]]
    print(table(["HOST", "STATE", "DOCKER", "BIND", "PORTS", "MEMORY (MiB)", "USED (MiB)", "PORTS USED", "NODES"],
                [[h["name"], h["state"], h["docker_url"], h["address"], f"{h['ports'][0]}-{h['ports'][1]}",
                  h["memory_mib"], h["used_memory_mib"], len(h["used_ports"]), len(h["nodes"])] for h in rows]))
    for h in rows:
        for node in h["nodes"]:
            print(f"{INDENT}{h['name']}: {node['addon']} {node['role']} {node['container']} :{node['port']} "
                  f"({node['state']})")
    return 0


def port_range(text: str | None) -> list[int]:
    first, dash, last = (text or "").partition("-")
    if not (dash and first.strip().isdigit() and last.strip().isdigit()):
        raise CliError(f"--ports {text!r}: give FIRST-LAST, e.g. 40000-40999")
    return [int(first), int(last)]


def add(api: Api, args) -> int:
    missing = [flag for flag, value in (("--url", args.url), ("--bind", args.bind), ("--ports", args.ports),
                                        ("--memory-mib", args.memory_mib)) if value is None]
    if missing:
        raise CliError(f"`hosts add` needs {', '.join(missing)}")
    tls = {part: getattr(args, f"tls_{part}") for part in ("ca", "cert", "key")}
    body = {"name": args.name, "docker_url": args.url, "bind": args.bind, "ports": port_range(args.ports),
            "memory_mib": args.memory_mib}
    if any(tls.values()):
        body["tls"] = tls
    host = api.post("/v1/hosts", body)["host"]
    print(f"-----> Host {host['name']} added ({host['docker_url']}, {host['memory_mib']} MiB, ports "
          f"{host['ports'][0]}-{host['ports'][1]}): it takes new nodes now")
    return 0


def drain(api: Api, args) -> int:
    host = api.post(f"/v1/hosts/{quote(args.name)}/drain")["host"]
    print(f"-----> Host {host['name']} is draining: it takes no new node, and its {len(host['nodes'])} node(s) are "
          "moved elsewhere a few at a time")
    print(f"{INDENT}`redis-addons hosts` shows it drained once it holds nothing; then `redis-addons hosts remove "
          f"{host['name']}`")
    return 0


def remove(api: Api, args) -> int:
    api.delete(f"/v1/hosts/{quote(args.name)}")
    print(f"-----> Host {args.name} removed: the engine no longer reaches it")
    return 0
