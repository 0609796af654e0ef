"""Reading parameter values as the shop does: form bodies send every value as a string, so numbers, flags
and dates are recognised from text, and a value that is not what the field holds is error 0."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bridge.sandbox.shop.wire import SHOP_TZ, ShopError

DATETIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_datetime(value: Any) -> datetime | None:
    """ISO-8601 with or without offset (naive means shop time); None if it is not a date."""
    if not isinstance(value, str) or not DATETIME_PATTERN.match(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHOP_TZ)


def number(value: Any, name: str) -> int | float:
    """A JSON or form value as a number (form values arrive as strings); ints stay ints."""
    if isinstance(value, bool):
        raise ShopError(0, f"Invalid value of field {name}")
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise ShopError(0, f"Invalid value of field {name}") from None
    if isinstance(value, int) or (isinstance(value, str) and parsed.is_integer() and "." not in value):
        return int(parsed)
    return parsed


def integer(value: Any, name: str) -> int:
    parsed = number(value, name)
    if isinstance(parsed, float) and not parsed.is_integer():
        raise ShopError(0, f"Invalid value of field {name}")
    return int(parsed)


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "y", "yes"}


def as_list(value: Any) -> list[Any]:
    """A parameter that may come as one value, a list, or a form map ``a[0]=…&a[1]=…``, as a list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def like_existing(existing: Any, value: Any, name: str) -> Any:
    """Coerce a form-encoded string to the type the field already holds."""
    if isinstance(existing, bool) or not isinstance(value, str):
        return value
    if isinstance(existing, int):
        return integer(value, name)
    if isinstance(existing, float):
        return float(number(value, name))
    return value
