"""``/openapi.json`` describes every route the app serves, including the operations endpoints."""

from __future__ import annotations

from starlette.routing import Route

from bridge.web.app import routes
from bridge.web.openapi import document


def test_every_route_is_in_the_openapi_document() -> None:
    paths = document()["paths"]
    missing = []
    for route in routes():
        assert isinstance(route, Route)
        if route.path == "/console" or route.path.startswith("/console/"):
            continue  # the console's HTML pages are for people, not a JSON API (docs/reference.md describes them)
        if route.path == "/favicon.ico":
            continue  # asked for by browsers on their own, answered with an empty 204; not part of the API
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if method.lower() not in paths.get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert missing == []


def test_admin_endpoints_need_the_admin_bearer_scheme() -> None:
    doc = document()
    assert doc["components"]["securitySchemes"]["adminBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "BRIDGE_ADMIN_TOKEN",
    }
    admin = {path: ops for path, ops in doc["paths"].items() if path.startswith("/admin/")}
    assert sorted(admin) == sorted(
        [
            "/admin/failed",
            "/admin/failed/retry",
            "/admin/failed/{job_id}/retry",
            "/admin/log",
            "/admin/failed/discard",
            "/admin/failed/{job_id}/discard",
        ]
    )
    for ops in admin.values():
        for operation in ops.values():
            assert operation["security"] == [{"adminBearer": []}]
            assert {"200", "401", "503"} <= set(operation["responses"])
