"""The OpenAPI paths of the operations endpoints: ``/metrics`` and ``/admin/*``.

Kept next to the handlers' module group rather than inside ``bridge.web.openapi`` so that whoever changes
an admin answer sees its description in the same small place; ``openapi.PATH_GROUPS`` lists this group.
"""

from __future__ import annotations

from typing import Any

Paths = dict[str, Any]

SECURITY_SCHEMES: dict[str, Any] = {
    "adminBearer": {"type": "http", "scheme": "bearer", "description": "BRIDGE_ADMIN_TOKEN"},
}

_PROBLEM = {"$ref": "#/components/schemas/Problem"}

DEAD_LETTER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "queue", "what", "why", "when", "attempts"],
    "properties": {
        "id": {"type": "string", "description": "the job id, for retry"},
        "queue": {"type": "string"},
        "what": {"type": "string", "description": 'what the job was about, e.g. "order 300 (save)"'},
        "why": {"type": "string", "description": "the reason it gave up, in plain words"},
        "when": {"type": ["string", "null"], "format": "date-time"},
        "attempts": {"type": "integer"},
        "entity": {"type": ["string", "null"]},
        "entity_id": {"type": ["string", "null"]},
    },
}

RETRY_REPORT: dict[str, Any] = {
    "type": "object",
    "required": ["requeued", "missing"],
    "properties": {
        "requeued": {"type": "array", "items": DEAD_LETTER},
        "missing": {"type": "array", "items": {"type": "string"}, "description": "ids not in the failed list"},
    },
}
DISCARD_REPORT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "discarded": {"type": "array", "items": DEAD_LETTER},
        "missing": {"type": "array", "items": {"type": "string"}},
    },
}

LOG_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["peer", "operation", "outcome", "time"],
    "properties": {
        "time": {"type": "string", "format": "date-time"},
        "peer": {"enum": ["shop", "1c", "bridge"]},
        "operation": {"type": "string", "description": "a REST method, 'orders' (1C), or order.save, poll, retry"},
        "outcome": {"type": "string"},
        "entity": {"type": "string"},
        "entity_id": {"type": "string"},
        "duration": {"type": "number", "description": "seconds"},
        "error": {"type": "string", "description": "the peer's words when it failed"},
        "detail": {"type": "string"},
        "process": {"type": "string", "description": "host:pid of the process that did it"},
        "entry_id": {"type": "string"},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _admin(
    summary: str, ok: dict[str, Any], *, extra: dict[str, Any] | None = None, **operation: Any
) -> dict[str, Any]:
    responses = {
        "200": {"description": "ok", **_json(ok)},
        "401": {"description": "no Bearer token, or a wrong one", **_json(_PROBLEM)},
        "503": {
            "description": "BRIDGE_ADMIN_TOKEN is not set (admin API off), or Redis is unreachable",
            **_json(_PROBLEM),
        },
        **(extra or {}),
    }
    return {"summary": summary, "security": [{"adminBearer": []}], "responses": responses, **operation}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def ops_paths() -> Paths:
    bad = {"400": {"description": "a malformed parameter or body", **_json(_PROBLEM)}}
    return {
        "/metrics": {
            "get": {
                "summary": "Prometheus text: events, items from 1C, queues, peer calls and latency, 1C circuit, alerts",
                "description": "Figures of every bridge process (web, workers, clock), kept in Redis.",
                "responses": {
                    "200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}},
                    "503": {"description": "Redis is unreachable", **_json(_PROBLEM)},
                },
            }
        },
        "/admin/failed": {
            "get": _admin(
                "dead letters: jobs that failed for good, newest first",
                {
                    "type": "object",
                    "properties": {"count": {"type": "integer"}, "failed": {"type": "array", "items": DEAD_LETTER}},
                },
                parameters=[
                    _query(
                        "limit",
                        "at most this many (1…10000)",
                        {"type": "integer", "default": 1000, "minimum": 1, "maximum": 10000},
                    )
                ],
                extra=bad,
            )
        },
        "/admin/failed/retry": {
            "post": _admin(
                "put failed jobs back on their queue, as if never tried",
                RETRY_REPORT,
                requestBody={
                    "required": True,
                    **_json(
                        {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": ["ids"],
                                    "properties": {
                                        "ids": {"type": "array", "minItems": 1, "items": {"type": "string"}}
                                    },
                                },
                                {"type": "object", "required": ["all"], "properties": {"all": {"const": True}}},
                            ]
                        }
                    ),
                },
                extra=bad,
            )
        },
        "/admin/failed/{job_id}/retry": {
            "post": _admin(
                "put one failed job back on its queue",
                RETRY_REPORT,
                parameters=[{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                extra={"404": {"description": "no such failed job", **_json(_PROBLEM)}},
            )
        },
        "/admin/log": {
            "get": _admin(
                "the sync log: every operation with the shop and 1C, newest first",
                {
                    "type": "object",
                    "properties": {"count": {"type": "integer"}, "entries": {"type": "array", "items": LOG_ENTRY}},
                },
                parameters=[
                    _query("entity", "e.g. order", {"type": "string"}),
                    _query("id", "the entity's id (needs entity), e.g. the shop's order id", {"type": "string"}),
                    _query(
                        "limit",
                        "at most this many (1…1000)",
                        {"type": "integer", "default": 100, "minimum": 1, "maximum": 1000},
                    ),
                ],
                extra=bad,
            )
        },
        "/admin/failed/discard": {
            "post": _admin(
                "drop failed jobs for good; the reason is kept in the sync log",
                DISCARD_REPORT,
                requestBody={
                    "required": True,
                    **_json(
                        {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": ["ids", "reason"],
                                    "properties": {
                                        "ids": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                                        "reason": {"type": "string", "minLength": 1},
                                    },
                                },
                                {
                                    "type": "object",
                                    "required": ["all", "reason"],
                                    "properties": {
                                        "all": {"const": True},
                                        "reason": {"type": "string", "minLength": 1},
                                    },
                                },
                            ]
                        }
                    ),
                },
                extra=bad,
            )
        },
        "/admin/failed/{job_id}/discard": {
            "post": _admin(
                "drop one failed job for good; the reason is kept in the sync log",
                DISCARD_REPORT,
                parameters=[{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                requestBody={
                    "required": True,
                    **_json({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}),
                },
                extra={**bad, "404": {"description": "no such failed job", **_json(_PROBLEM)}},
            )
        },
    }
