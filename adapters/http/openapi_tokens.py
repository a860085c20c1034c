"""The OpenAPI entries of access tokens (adapters/http/tokens.py), and who asked for an operation or event."""

from __future__ import annotations

from adapters.http.openapi_schemas import json_body, obj, ref
from domain.access_token import GRANTS, MAX_NAME

TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "Token ID, e.g. tok-3f9a1c2b7d4e"}
REQUESTED_BY = {"type": ["object", "null"], "required": ["id", "name"],
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "description": "Who asked: a token's ID and name; operator (the installation's token), local (the "
                               "embedded library), engine (its own rounds); null when recorded before requesters were"}
OPERATOR_ONLY_ANSWER = json_body(ref("Error"), "A token scoped to apps: this route is the operator's, or needs a "
                                               "grant the token lacks (rule operator-only)")

SCHEMAS = {
    "AccessToken": obj(
        id={"type": "string"}, name={"type": "string"}, apps={"type": "array", "items": {"type": "string"}},
        grants={"type": "array", "items": {"enum": list(GRANTS)}},
        created_at={"type": "string", "format": "date-time"}, revoked={"type": "boolean"},
        revoked_at={"type": ["string", "null"], "format": "date-time"}),
    "RequestedBy": REQUESTED_BY,
}


def paths(op) -> dict:
    """`op` is adapters/http/openapi.py's."""
    body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "apps"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "examples": ["ci-deploy"]},
            "apps": {"type": "array", "minItems": 1, "items": {"type": "string"}, "examples": [["my-app"]]},
            "grants": {"type": "array", "items": {"enum": list(GRANTS)},
                       "description": "metrics: GET /metrics (every app's figures) too"}}}}}}
    created = json_body(obj(token=ref("AccessToken"), secret={
        "type": "string", "description": "The bearer token: shown here only (the engine keeps its SHA-256)"}),
        "Created")
    bad = json_body(ref("Error"), "No name, no apps, an app unknown here, an unknown grant (rule access-token, "
                                  "field name, apps or grants), or a bad body")
    return {
        "/v1/tokens": {
            "post": op("Create a token scoped to apps (the operator's)", {"201": created, "400": bad, "403": OPERATOR_ONLY_ANSWER},
                       body=body, tag="tokens"),
            "get": op("Every token: never its secret (the operator's)",
                      {"200": json_body(obj(tokens={"type": "array", "items": ref("AccessToken")}), "Tokens"),
                       "403": OPERATOR_ONLY_ANSWER}, tag="tokens")},
        "/v1/tokens/{token}": {
            "delete": op("Revoke a token: refused (401) from the next request on (the operator's)",
                         {"200": json_body(obj(token=ref("AccessToken")), "Revoked (or revoked already)"),
                          "403": OPERATOR_ONLY_ANSWER, "404": json_body(ref("Error"), "Unknown token (rule unknown-token)")},
                         [TOKEN], tag="tokens")},
    }


def mark_operator_only(paths: dict) -> None:
    """The routes refused to a token scoped to apps (adapters/http/ownership.py) document that 403."""
    from adapters.http.ownership import GRANTED, OPERATOR_ONLY

    for path in OPERATOR_ONLY | set(GRANTED):
        for spec in paths.get(path, {}).values():
            spec["responses"].setdefault("403", OPERATOR_ONLY_ANSWER)
            spec["responses"] = dict(sorted(spec["responses"].items()))
