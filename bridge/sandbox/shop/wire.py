"""The shapes every answer shares: the error body, the ``result``/``total``/``next`` envelope, the ``time``
block, and how PHP's ``json_encode`` writes an array."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

SHOP_TZ = timezone(timedelta(hours=3))  # the shop's clock: Moscow time, as Russian shops usually run


class ShopError(Exception):
    """An error answer: ``{"error": ..., "error_description": ...}`` with its HTTP status."""

    def __init__(self, error: str | int, description: str = "", status: int = 400, **extra: Any) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, **self.extra}


@dataclass
class Answer:
    """What a method returns: ``result`` and, for lists, ``total`` and (only when more pages exist) ``next``."""

    result: Any
    total: int | None = None
    next: int | None = None


def iso(moment: datetime) -> str:
    """A moment as the shop writes it: ISO-8601 to the second, in shop time."""
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def time_block(started: float, *, reset_at: float | None = None) -> dict[str, Any]:
    """The ``time`` object of every answer; ``operating_reset_at`` is when a paused method may run again."""
    finish = time.time()
    return {
        "start": started,
        "finish": finish,
        "duration": finish - started,
        "processing": finish - started,
        "date_start": iso(datetime.fromtimestamp(started, SHOP_TZ)),
        "date_finish": iso(datetime.fromtimestamp(finish, SHOP_TZ)),
        "operating_reset_at": reset_at if reset_at is not None else int(started) + 600,
        "operating": 0,
    }


def php_map(mapping: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """json_encode of a PHP array: [] when empty, a JSON list when the keys are "0".."n-1" in order."""
    if not mapping:
        return []
    if list(mapping) == [str(i) for i in range(len(mapping))]:
        return list(mapping.values())
    return mapping
