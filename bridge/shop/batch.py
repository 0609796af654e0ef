"""Building ``batch`` commands and reading the answer back.

The shop runs up to 50 commands in one HTTP request, so bulk writes cost one slot of the rate limit per 50.
Each command is a string ``"method?query"`` in PHP bracket form; the answer keeps results and errors per
command id, and PHP serializes an empty map as ``[]`` (and a map with keys 0..n-1 as a list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.shop import phpquery
from bridge.shop.errors import ShopError, error_from_body

MAX_COMMANDS = 50


@dataclass
class BatchResult:
    """Per command id: the result, or the error, plus ``total``/``next`` for list methods.

    A command is in at most one of ``results`` and ``errors``; with ``halt`` the commands after the first
    error are in neither.
    """

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, ShopError] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)

    def merge(self, other: BatchResult) -> None:
        self.results.update(other.results)
        self.errors.update(other.errors)
        self.totals.update(other.totals)
        self.nexts.update(other.nexts)


def command(method: str, params: Mapping[str, Any] | None) -> str:
    """One ``cmd`` value: ``method?a=1&b[c]=2``; no ``?`` when there are no parameters."""
    query = phpquery.build(params) if params else ""
    return f"{method}?{query}" if query else method


def as_map(value: Any) -> dict[str, Any]:
    """A per-command map from the answer, whichever way PHP chose to serialize it."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def parse(payload: Any, methods: Mapping[str, str]) -> tuple[BatchResult, dict[str, float]]:
    """Read the ``result`` of a batch answer; ``methods`` maps command id → method, for error messages.

    Also returns ``operating_reset_at`` per method from ``result_time``, for the operating-time pauses.
    """
    if not isinstance(payload, dict):
        payload = {}
    out = BatchResult(results=as_map(payload.get("result")))
    resets: dict[str, float] = {}
    for cmd_id, body in as_map(payload.get("result_error")).items():
        if not isinstance(body, dict):
            body = {"error": str(body)}
        out.errors[cmd_id] = error_from_body(methods.get(cmd_id, "batch"), None, body)
        out.results.pop(cmd_id, None)
        # An OPERATION_TIME_LIMIT refusal may say when the method's window resets, as it does outside a batch.
        _reset_of(body.get("time"), cmd_id, methods, resets)
    for target, source in ((out.totals, "result_total"), (out.nexts, "result_next")):
        for cmd_id, value in as_map(payload.get(source)).items():
            try:
                target[cmd_id] = int(value)
            except (TypeError, ValueError):
                continue
    for cmd_id, timing in as_map(payload.get("result_time")).items():
        _reset_of(timing, cmd_id, methods, resets)
    return out, resets


def _reset_of(timing: Any, cmd_id: str, methods: Mapping[str, str], resets: dict[str, float]) -> None:
    reset = timing.get("operating_reset_at") if isinstance(timing, dict) else None
    if isinstance(reset, int | float) and not isinstance(reset, bool) and cmd_id in methods:
        resets[methods[cmd_id]] = max(float(reset), resets.get(methods[cmd_id], 0.0))
