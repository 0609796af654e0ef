"""JSON answers in one shape, so a 1C developer reading ``Ответ.ПолучитьТелоКакСтроку()`` always finds
``error`` (a stable code to branch on) and ``message`` (what to fix, in plain words)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def not_configured(missing: list[str], feature: str) -> JSONResponse:
    names = ", ".join(missing)
    return problem(503, "not_configured", f"{feature} is off: set {names} in the bridge's environment")


def redis_down() -> JSONResponse:
    return problem(503, "redis_unavailable", "the bridge cannot reach Redis; nothing was accepted, send it again later")
