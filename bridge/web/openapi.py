"""``GET /openapi.json``: an OpenAPI 3.1 description of every endpoint of the bridge.

The request bodies of ``/1c/*`` are the schema files in ``bridge/updates/intake/schemas`` (themselves generated
from the models that validate requests), so the document cannot promise what the bridge does not check.
Their ``$defs`` move into ``components/schemas`` because OpenAPI tools resolve ``$ref`` from the document
root. Each group of endpoints is one function returning its paths; a new group adds one to ``PATH_GROUPS``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from bridge import __version__
from bridge.updates.intake import schema_files
from bridge.updates.kinds import KINDS
from bridge.web import exchange_openapi, ops_openapi

Paths = dict[str, Any]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, **_json(_ref("Problem"))}


COMMON_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "every error answer: a stable code to branch on and a message in plain words",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    },
    "InvalidPayload": {
        "type": "object",
        "required": ["error", "message", "details"],
        "properties": {
            "error": {"const": "invalid_payload"},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "description": "every offending place of the body",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": {
                        "path": {"type": "string", "description": "JSON pointer, such as /items/3/amount"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
    "Batch": {
        "type": "object",
        "required": ["batch", "accepted", "applied", "unchanged", "superseded", "waiting", "held", "dropped"],
        "properties": {
            "batch": {"type": "string"},
            "accepted": {"type": "integer", "description": "items the push or file brought"},
            "applied": {"type": "integer", "description": "written to the shop, or found there already"},
            "unchanged": {"type": "integer", "description": "equal to what the bridge had applied: not sent again"},
            "superseded": {"type": "integer", "description": "lost to a newer value for the same key"},
            "waiting": {"type": "integer", "description": "not yet sent (the shop's rate limit, a retry)"},
            "held": {"$ref": "#/components/schemas/BatchProblems"},
            "dropped": {"$ref": "#/components/schemas/BatchProblems"},
        },
    },
    "BatchProblems": {
        "type": "object",
        "required": ["count", "reasons"],
        "properties": {
            "count": {"type": "integer"},
            "reasons": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["class", "count", "example"],
                    "properties": {
                        "class": {"type": "string", "description": "such as unmapped_store, unknown_product"},
                        "count": {"type": "integer"},
                        "example": {"type": "string", "description": "one reason of this class, in words"},
                    },
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["accepted", "batch"],
        "properties": {
            "accepted": {
                "type": "integer",
                "minimum": 0,
                "description": "the number of items accepted (0 for an empty list, which changes nothing)",
            },
            "batch": {"type": "string", "description": "the id of this push, as the bridge's log names it"},
        },
    },
}


def shop_paths() -> Paths:
    event = {
        "type": "object",
        "description": "the shop's outbound webhook: event=ONSALEORDERSAVED&data[FIELDS][ID]=300&auth[...]=...",
        "required": ["event"],
        "properties": {
            "event": {"type": "string"},
            "data": {"type": "object", "properties": {"FIELDS": {"type": "object"}}},
            "ts": {"type": "string"},
            "auth": {"type": "object", "properties": {"application_token": {"type": "string"}}},
        },
    }
    return {
        "/shop/events": {
            "post": {
                "summary": "the shop's outbound webhooks (order saved, created, deleted)",
                "description": "Authenticated by auth[application_token] (BRIDGE_SHOP_APP_TOKENS). Answered "
                "only after the work is durably queued; the shop and 1C are never called inline.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": event},
                        "application/json": {"schema": event},
                    },
                },
                "responses": {
                    "200": {
                        "description": 'accepted ({"status": "accepted", ...}) or ignored ({"status": "ignored"})',
                        **_json({"type": "object", "properties": {"status": {"enum": ["accepted", "ignored"]}}}),
                    },
                    "400": _problem("no event name or order id, or a body that cannot be read"),
                    "401": _problem("auth[application_token] does not match"),
                    "413": _problem("body over BRIDGE_MAX_BODY_BYTES"),
                    "415": _problem("neither form-encoded nor JSON"),
                    "503": _problem("BRIDGE_SHOP_APP_TOKENS is not set, or Redis is unreachable"),
                },
            }
        }
    }


def onec_paths() -> Paths:
    paths: Paths = {}
    for kind in KINDS.values():
        paths[f"/1c/{kind.name}"] = {
            "post": {
                "summary": f"1C pushes {kind.summary}",
                "description": "Answered at once: the items are kept per key (the latest value wins) and sent to "
                "the shop afterwards within its rate limit. A body with any problem is refused whole. An empty "
                "list is valid (nothing to send): 202 with accepted 0 and a batch that stays at zero.",
                "security": [{"inboundBearer": []}, {"inboundApiKey": []}],
                "requestBody": {
                    "required": True,
                    "description": "JSON, UTF-8 with or without a BOM, or the charset named in Content-Type",
                    **_json(_ref(_body_name(kind.name))),
                },
                "responses": {
                    "202": {"description": "accepted and queued", **_json(_ref("Accepted"))},
                    "400": {"description": "the body breaks the schema", **_json(_ref("InvalidPayload"))},
                    "401": _problem("no token, or a wrong one"),
                    "403": _problem("the caller's address is not in BRIDGE_INBOUND_ALLOWED_IPS"),
                    "413": _problem("body over BRIDGE_MAX_BODY_BYTES"),
                    "415": _problem("not application/json, or an unknown charset"),
                    "503": _problem("BRIDGE_INBOUND_TOKEN is not set, or Redis is unreachable"),
                },
            }
        }
    paths["/1c/batches/{batch}"] = {
        "get": {
            "summary": "What became of one push or exchange file",
            "description": "Counts of the batch's items: applied, unchanged, superseded by a newer value, waiting, "
            "held until the mappings are fixed and dropped, the last two with a count and an example per reason. "
            "Kept for 7 days.",
            "security": [{"inboundBearer": []}, {"inboundApiKey": []}],
            "parameters": [
                {
                    "name": "batch",
                    "in": "path",
                    "required": True,
                    "description": "the batch of a 202, such as stock-17",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {"description": "the batch's tallies", **_json(_ref("Batch"))},
                "401": _problem("no token, or a wrong one"),
                "403": _problem("the caller's address is not in BRIDGE_INBOUND_ALLOWED_IPS"),
                "404": _problem("no such batch, or older than 7 days"),
                "503": _problem("BRIDGE_INBOUND_TOKEN is not set, or Redis is unreachable"),
            },
        }
    }
    return paths


def operations_paths() -> Paths:
    return {
        "/healthz": {"get": {"summary": "the process runs", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {
            "get": {
                "summary": "Redis reachable; queue depths, oldest waiting job, the 1C circuit, the shop's rate limit",
                "responses": {
                    "200": {
                        "description": "ready",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "onec": {
                                        "type": "object",
                                        "properties": {
                                            "circuit": {"enum": ["closed", "open"]},
                                            "since": {"type": ["string", "null"]},
                                            "reason": {"type": ["string", "null"]},
                                        },
                                    }
                                },
                            }
                        ),
                    },
                    "503": {"description": "Redis is unreachable"},
                },
            }
        },
        "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }


# Each function returns the paths of one group of endpoints.
PATH_GROUPS: list[Callable[[], Paths]] = [
    shop_paths,
    onec_paths,
    operations_paths,
    ops_openapi.ops_paths,
    exchange_openapi.exchange_paths,
]


def _body_name(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-")) + "Body"


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` into the components and point the ``$ref``s there."""
    schema = json.loads(json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/'))
    components.update(schema.pop("$defs", {}))
    schema.pop("$schema", None)
    schema.pop("$id", None)  # an $id would make the refs above resolve against the schema file instead
    return schema


@functools.cache
def document() -> dict[str, Any]:
    components: dict[str, Any] = dict(COMMON_SCHEMAS)
    for kind in KINDS:
        components[_body_name(kind)] = _hoist(schema_files.load(kind), components)
    paths: Paths = {}
    for group in PATH_GROUPS:
        paths.update(group())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bridge",
            "version": __version__,
            "description": "Connects a 1C-Bitrix online shop with 1C:Enterprise.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "inboundBearer": {"type": "http", "scheme": "bearer", "description": "BRIDGE_INBOUND_TOKEN"},
                "inboundApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Token"},
                **ops_openapi.SECURITY_SCHEMES,
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document())
