"""The OpenAPI entries of the installation's hosts (adapters/http/hosts.py): the operator's alone."""

from __future__ import annotations

from adapters.http.openapi_schemas import json_body, obj, ref

HOST = {"name": "host", "in": "path", "required": True, "schema": {"type": "string", "examples": ["host-z"]},
        "description": "A host's name, as `GET /v1/hosts` lists it"}
UNKNOWN = json_body(ref("Error"), "No host of that name (rule unknown-host)")

SCHEMAS = {
    "Host": {"type": "object", "required": ["name", "state", "docker_url", "address", "ports", "memory_mib",
                                            "used_memory_mib", "used_ports", "nodes"], "properties": {
        "name": {"type": "string"},
        "state": {"enum": ["active", "draining", "drained", "removed"],
                  "description": "draining and drained take no new node; removed is no longer listed"},
        "source": {"enum": ["hosts file", "operator"], "description": "who added it: the hosts file at start, or an "
                                                                      "operator (POST /v1/hosts)"},
        "docker_url": {"type": "string"}, "address": {"type": "string", "description": "what its nodes bind to"},
        "ports": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "memory_mib": {"type": "integer", "description": "capacity"},
        "used_memory_mib": {"type": "integer", "description": "what the nodes placed there hold"},
        "used_ports": {"type": "array", "items": {"type": "integer"}},
        "tls": {"type": "boolean", "description": "reached over tcp:// with mutual TLS"},
        "nodes": {"type": "array", "items": obj(addon={"type": "string"}, role={"type": "string"},
                                                 container={"type": "string"}, port={"type": "integer"},
                                                 state={"type": "string"})}}},
}


def paths(op) -> dict:
    """`op` is adapters/http/openapi.py's."""
    body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "docker_url", "bind", "ports", "memory_mib"],
        "additionalProperties": False, "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$", "examples": ["host-z"]},
            "docker_url": {"type": "string", "examples": ["unix:///run/redis-addons/host-z/docker.sock"],
                           "description": "unix:///PATH, or tcp://ADDRESS:PORT with tls"},
            "bind": {"type": "string", "examples": ["127.0.9.1"], "description": "the address its nodes bind to"},
            "ports": {"type": "array", "items": {"type": "integer", "minimum": 1024, "maximum": 65535},
                      "minItems": 2, "maxItems": 2, "examples": [[40000, 40999]]},
            "memory_mib": {"type": "integer", "minimum": 64, "examples": [16384]},
            "tls": {"type": ["object", "null"], "required": ["ca", "cert", "key"], "additionalProperties": False,
                    "properties": {k: {"type": "string"} for k in ("ca", "cert", "key")},
                    "description": "tcp:// only: paths (on the engine's machine) of the CA, client certificate, key"}}}}}}
    one = json_body(obj(host=ref("Host")), "The host")
    return {
        "/v1/hosts": {
            "get": op("Every host: capacity, used memory and ports, nodes (the operator's)",
                      {"200": json_body(obj(hosts={"type": "array", "items": ref("Host")}), "Hosts")}, tag="hosts"),
            "post": op("Add a host, checked first: its Docker engine answers (over TLS with the installation's "
                       "certificates for tcp://) and holds every image the engine runs (the operator's)",
                       {"201": json_body(obj(host=ref("Host")), "Added: it takes new nodes at once"),
                        "400": json_body(ref("Error"), "A field missing or invalid (rule invalid-host, invalid-field), "
                                                       "or a bad body"),
                        "422": json_body(ref("Error"), "Its engine does not answer, refuses our certificate, or "
                                                       "lacks images, named (rule host-not-usable): nothing recorded")},
                       body=body, tag="hosts")},
        "/v1/hosts/{host}": {
            "get": op("One host (the operator's)", {"200": one, "404": UNKNOWN}, parameters=[HOST], tag="hosts"),
            "delete": op("Remove an empty host (the operator's)",
                         {"200": json_body(obj(host=obj(name={"type": "string"}, state={"const": "removed"})),
                                           "Removed"),
                          "404": UNKNOWN,
                          "409": json_body(ref("Error"), "It holds nodes, or is being drained (rule host-not-empty)"),
                          "422": json_body(ref("Error"), "Removed already (rule host-not-usable)")},
                         parameters=[HOST], tag="hosts")},
        "/v1/hosts/{host}/drain": {
            "post": op("Drain a host: it takes no new node from now on, and every node it holds is moved elsewhere "
                       "by the sagas, a few at a time (the operator's)",
                       {"202": json_body(obj(host=ref("Host")), "Draining: `GET /v1/hosts/{host}` shows it drained "
                                                                "once it holds nothing"),
                        "404": UNKNOWN, "422": json_body(ref("Error"), "Removed (rule host-not-usable)")},
                       parameters=[HOST], tag="hosts")},
    }
