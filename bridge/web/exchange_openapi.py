"""The OpenAPI paths of 1C's standard exchange (``/1c/exchange`` and its 1C-Bitrix twin).

The protocol is 1C's, not ours: one URL, the command in the query string, the outcome in the first line of a
plain-text body, always HTTP 200. Described here so that a tool reading ``/openapi.json`` knows the paths
exist and what they answer; ``bridge.web.exchange`` is the behaviour.
"""

from __future__ import annotations

from typing import Any

from bridge.web.exchange import PATHS

Paths = dict[str, Any]

_PARAMETERS = [
    {"name": "type", "in": "query", "required": True, "schema": {"enum": ["catalog", "sale"]}},
    {
        "name": "mode",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "checkauth, init, file, import, deactivate, complete (catalog); the sale side adds its own",
    },
    {"name": "filename", "in": "query", "schema": {"type": "string"}, "description": "for file and import"},
    {"name": "version", "in": "query", "schema": {"type": "string"}, "description": "CommerceML version, at init"},
    {"name": "sessid", "in": "query", "schema": {"type": "string"}, "description": "accepted, not required"},
]

_ANSWER = {
    "200": {
        "description": (
            "Always 200. The first line is success, progress or failure (init: zip=…/file_limit=… lines); after "
            "failure, a sentence for 1C's operator"
        ),
        "content": {"text/plain; charset=windows-1251": {"schema": {"type": "string"}}},
    }
}


def exchange_paths() -> Paths:
    operation = {
        "summary": "1C's standard CommerceML exchange (HTTP Basic on checkauth, then the session cookie)",
        "parameters": _PARAMETERS,
        "responses": _ANSWER,
    }
    post = {
        **operation,
        "requestBody": {
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "mode=file: one chunk of the file, raw",
        },
    }
    return {path: {"get": dict(operation), "post": post} for path in PATHS}
