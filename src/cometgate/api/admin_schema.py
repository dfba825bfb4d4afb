"""The OpenAPI 3.1 document of the admin API, served at /admin/openapi.json.

Written out rather than derived, so that it says what the API promises (a test checks that
every admin route appears here and that the document is valid OpenAPI 3.1). Field names and
types mirror admin_requests.KEY_FIELDS and KeyRecord.as_document.
"""

from __future__ import annotations

import copy
from typing import Any

from cometgate.storage.key_policy import BILLABLE_FIELDS

OPENAPI_PATH = "/admin/openapi.json"
ADMIN_PATHS = (
    "/admin/keys",
    "/admin/keys/{ident}",
    "/admin/keys/{ident}/revoke",
    "/admin/keys/{ident}/rotate",
    "/admin/usage",
    "/admin/conversations",
    "/admin/conversations/{turn_id}",
    OPENAPI_PATH,
)

_MONEY = {"type": "string", "pattern": r"^\d+(\.\d{1,6})?$", "examples": ["12.50"]}
# What the repository accepts: more than zero, at most 1e9, six decimals at most.
_MONEY_IN = {"oneOf": [
    {**_MONEY, "pattern": r"^(?!0+(\.0+)?$)(\d{1,9}(\.\d{1,6})?|1000000000(\.0{1,6})?)$"},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000_000},
]}
_TIME = {"type": "string", "format": "date-time"}
# A key name: no surrounding spaces, not all digits (an id), not a key's "cg-" (a prefix).
_NAME = {"type": "string", "minLength": 1, "maxLength": 64,
         "pattern": r"^(?![0-9]+$)(?!cg-)\S(.*\S)?$",
         "description": "No control or invisible characters."}
_LIST_ENTRY = {"type": "string", "pattern": r"^\S(.*\S)?$"}
_KEY_ID = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


_POLICY_PROPERTIES: dict[str, Any] = {
    "translation": {"enum": ["default", "strict", "lenient"],
                    "description": "Overrides the models' translation policy for this key."},
    "owner": {"type": "string", "maxLength": 200, "pattern": r"\S"},
    "metadata": {"type": "object", "description": "Free-form; at most 16 KiB as JSON."},
    "expires_at": {**_TIME, "description": "RFC 3339 with a zone, or a date (its UTC start)."},
    "allowed_models": {"type": "array", "items": _LIST_ENTRY, "maxItems": 1000,
                       "description": "Model ids or glob patterns; each must match a "
                                      "configured model. Empty: every model."},
    "allowed_ips": {"type": "array", "items": _LIST_ENTRY, "maxItems": 1000,
                    "description": "CIDR ranges the key may be used from. Empty: any."},
    "rpm": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
    "tpm": {"type": "integer", "minimum": 1, "maximum": 2_000_000_000},
    "rpd": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000},
    "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "budget_total_usd": _MONEY_IN,
    "budget_period": {"enum": ["day", "month"],
                      "description": "Set together with budget_period_usd."},
    "budget_period_usd": _MONEY_IN,
    "allowed_passthrough": {
        "type": "array", "items": {"enum": list(BILLABLE_FIELDS)},
        "description": "Billable request fields (built-in tools, cachedContent, service_tier, "
                       "n or candidateCount beyond the cap) this key may send although it has "
                       "a budget or a strict translation policy. Empty: none."},
    "store_conversations": {
        "type": "boolean",
        "description": "false: the gateway keeps none of this key's conversations (Responses "
                       "API `store` is ignored, `previous_response_id` is refused). Default "
                       "true."},
}

_SCHEMAS: dict[str, Any] = {
    "KeyCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": _NAME, **_POLICY_PROPERTIES},
        "dependentRequired": {"budget_period": ["budget_period_usd"],
                              "budget_period_usd": ["budget_period"]},
    },
    "KeyUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "Only the fields given change; null clears a field (not the name).",
        "properties": {
            "name": _NAME,
            **{k: _nullable(v) for k, v in _POLICY_PROPERTIES.items()},
        },
    },
    "Key": {
        "type": "object",
        "required": ["id", "name", "prefix", "status", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "prefix": {"type": "string", "description": "The key's first 11 characters."},
            "status": {"enum": ["active", "revoked", "expired"]},
            "created_at": _TIME,
            "updated_at": _nullable(_TIME),
            "revoked_at": _nullable(_TIME),
            "expires_at": _nullable(_TIME),
            "translation": _nullable({"type": "string"}),
            "owner": _nullable({"type": "string"}),
            "metadata": {"type": "object"},
            "allowed_models": {"type": "array", "items": {"type": "string"}},
            "allowed_ips": {"type": "array", "items": {"type": "string"}},
            **{k: _nullable({"type": "integer"}) for k in ("rpm", "tpm", "rpd",
                                                            "max_concurrent")},
            "budget_total_usd": _nullable(_MONEY),
            "budget_period": _nullable({"enum": ["day", "month"]}),
            "budget_period_usd": _nullable(_MONEY),
            "allowed_passthrough": {"type": "array", "items": {"type": "string"}},
            "store_conversations": {"type": "boolean"},
        },
    },
    "KeyWithSecret": {
        "allOf": [
            {"$ref": "#/components/schemas/Key"},
            {"type": "object", "required": ["key"], "properties": {
                "key": {"type": "string", "description": "The key itself, shown only here."}}},
        ],
    },
    "KeyList": {"type": "object", "required": ["keys"], "properties": {
        "keys": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}}},
    "UsageTotals": {
        "type": "object",
        "required": ["requests", "prompt_tokens", "output_tokens", "thoughts_tokens",
                     "cached_tokens", "total_tokens", "cost_usd"],
        "properties": {
            "key_id": {"type": "integer"},
            "model": {"type": "string"},
            "day": {"type": "string", "format": "date"},
            **{k: {"type": "integer", "minimum": 0} for k in (
                "requests", "prompt_tokens", "output_tokens", "thoughts_tokens",
                "cached_tokens", "total_tokens")},
            "cost_usd": {"type": "string", "description": "USD, exact decimal text."},
        },
    },
    "UsageReport": {"type": "object", "required": ["group_by", "totals"], "properties": {
        "group_by": {"enum": ["key", "model", "day"]},
        "totals": {"type": "array", "items": {"$ref": "#/components/schemas/UsageTotals"}}}},
    "StoredTurn": {
        "type": "object",
        "required": ["id", "api", "key_id", "model", "status", "created_at", "expires_at"],
        "description": "A stored conversation turn (a Responses API response), without its "
                       "content.",
        "properties": {
            "id": {"type": "string"},
            "api": {"enum": ["responses", "interactions"]},
            "key_id": {"type": "integer"},
            "model": {"type": "string"},
            "status": {"type": "string"},
            "previous_id": _nullable({"type": "string"}),
            "created_at": _TIME,
            "expires_at": _TIME,
        },
    },
    "StoredTurnList": {"type": "object", "required": ["turns", "storage"], "properties": {
        "turns": {"type": "array", "items": {"$ref": "#/components/schemas/StoredTurn"}},
        "storage": {"enum": ["on", "off"],
                    "description": "off: storage.conversations.enabled is false."}}},
    "Purged": {"type": "object", "required": ["purged"], "properties": {
        "purged": {"type": "integer", "minimum": 0}}},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status."},
                "message": {"type": "string"},
                "status": {"type": "string", "examples": ["INVALID_ARGUMENT"]},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": schema}}}}


def _errors(*statuses: str) -> dict[str, Any]:
    """Every admin operation can answer 401 and 403; others as listed."""
    return {s: {"$ref": f"#/components/responses/E{s}"} for s in ("401", "403", *statuses)}


def _error_responses() -> dict[str, Any]:
    texts = {"400": "Invalid input; the message names the field.",
             "401": "No admin key, or a wrong one.",
             "403": "A user API key was sent instead of the admin key.",
             "404": "No such key (every admin route answers 404 when no admin key is set)."}
    return {f"E{status}": {"description": text,
                           "content": {"application/json": {"schema": _ref("Error")}}}
            for status, text in texts.items()}


_IDENT = {"name": "ident", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "The key's id, name or 11-character prefix."}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_USAGE_PARAMETERS = [
    _query("group_by", {"enum": ["key", "model", "day"]},
           "Totals per key, model or UTC day (default key). With format=csv and no group_by, "
           "one row per request."),
    _query("since", _TIME, "Inclusive lower bound (RFC 3339, or a date)."),
    _query("until", _TIME, "Exclusive upper bound (RFC 3339, or a date)."),
    _query("key_id", _KEY_ID, "Only this key's requests."),
    _query("model", {"type": "string"}, "Only requests for this model alias."),
    _query("format", {"enum": ["json", "csv"]}, "csv answers text/csv (RFC 4180)."),
]


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _paths() -> dict[str, Any]:
    key_ok = _ok("The key.", _ref("Key"))
    return {
        "/admin/keys": {
            "get": {"operationId": "listKeys", "summary": "Every key, revoked ones included.",
                    "responses": {**_ok("The keys.", _ref("KeyList")), **_errors()}},
            "post": {"operationId": "createKey", "summary": "Create a key.",
                     "requestBody": _body("KeyCreate"),
                     "responses": {**_ok("The key, with its secret (shown once).",
                                         _ref("KeyWithSecret"), "201"), **_errors("400")}},
        },
        "/admin/keys/{ident}": {
            "parameters": [_IDENT],
            "get": {"operationId": "showKey", "summary": "One key.",
                    "responses": {**key_ok, **_errors("400", "404")}},
            "patch": {"operationId": "updateKey", "summary": "Change some fields of a key.",
                      "requestBody": _body("KeyUpdate"),
                      "responses": {**key_ok, **_errors("400", "404")}},
            "delete": {"operationId": "deleteKey",
                       "summary": "Remove a key; its usage history stays.",
                       "responses": {**_ok("The deleted key.", {
                           "type": "object", "required": ["deleted"],
                           "properties": {"deleted": _ref("Key")}}),
                           **_errors("400", "404")}},
        },
        "/admin/keys/{ident}/revoke": {
            "parameters": [_IDENT],
            "post": {"operationId": "revokeKey", "summary": "Revoke a key (idempotent).",
                     "responses": {**key_ok, **_errors("400", "404")}},
        },
        "/admin/keys/{ident}/rotate": {
            "parameters": [_IDENT],
            "post": {"operationId": "rotateKey",
                     "summary": "New secret for the same key; the old one stops working.",
                     "responses": {**_ok("The key, with its new secret (shown once).",
                                         _ref("KeyWithSecret")), **_errors("400", "404")}},
        },
        "/admin/usage": {
            "get": {"operationId": "usage", "summary": "Usage totals, or a CSV export.",
                    "parameters": _USAGE_PARAMETERS,
                    "responses": {"200": {"description": "Totals (JSON) or CSV.", "content": {
                        "application/json": {"schema": _ref("UsageReport")},
                        "text/csv": {"schema": {"type": "string"}}}},
                        **_errors("400")}},
        },
        "/admin/conversations": {
            "get": {"operationId": "listConversations",
                    "summary": "Live stored turns, newest first (never their content).",
                    "parameters": [
                        _query("key_id", {"type": "integer"}, "Only this key's turns."),
                        _query("api", {"enum": ["responses", "interactions"]}, "Only this API."),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                               "At most this many (default 100)."),
                        _query("after", {"type": "string"},
                               "Continue after this turn id (the last of the previous page)."),
                    ],
                    "responses": {**_ok("The turns.", _ref("StoredTurnList")),
                                  **_errors("400")}},
            "delete": {"operationId": "purgeConversations",
                       "summary": "Remove stored turns matching every filter given.",
                       "parameters": [
                           _query("key_id", {"type": "integer"}, "Only this key's turns."),
                           _query("api", {"enum": ["responses", "interactions"]},
                                  "Only this API's turns."),
                           _query("created_before", _TIME, "Only turns made before this."),
                           _query("all", {"enum": ["true"]},
                                  "Required to purge everything when no filter is given."),
                       ],
                       "responses": {**_ok("How many were removed.", _ref("Purged")),
                                     **_errors("400")}},
        },
        "/admin/conversations/{turn_id}": {
            "parameters": [{"name": "turn_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "delete": {"operationId": "purgeConversation", "summary": "Remove one stored turn.",
                       "responses": {**_ok("1, or 0 when there was no such turn.",
                                           _ref("Purged")), **_errors()}},
        },
        OPENAPI_PATH: {
            "get": {"operationId": "openapi", "summary": "This document.",
                    "responses": {**_ok("OpenAPI 3.1.", {"type": "object"}), **_errors()}},
        },
    }


def admin_openapi() -> dict[str, Any]:
    """The document; a fresh dict each call, so a caller may change its copy."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "cometgate admin API", "version": "1"},
        "security": [{"adminKey": []}],
        "paths": _paths(),
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "responses": _error_responses(),
            "securitySchemes": {"adminKey": {
                "type": "http", "scheme": "bearer",
                "description": "The admin key (COMETGATE_ADMIN_KEY); user API keys are refused.",
            }},
        },
    }
