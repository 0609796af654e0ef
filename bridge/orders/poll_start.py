"""``BRIDGE_POLL_START``: how far back the very first poll of ``sale.order.list`` looks.

Once a poll has run, the watermark in Redis says where the next one starts; this only decides the first
one. Every order changed in that window goes to 1C, so on a shop whose orders 1C already has (through the
standard exchange, or an earlier integration) a day's worth of orders would be sent again: the operator
chooses. Either a duration before the first poll (``24h``, the default; ``90m``, ``7d``, ``1h30m``; ``0``
for "only orders changed from now on", give or take the 2 minutes every poll overlaps the one before), or a moment (an ISO-8601 date or date-time such as
``2026-12-01T00:00:00+03:00``; without an offset it is UTC, as with ``ts`` in the 1C bodies).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DEFAULT = "24h"
FORMS = "a duration such as 24h, 90m, 7d or 0, or an ISO date-time such as 2026-12-01T00:00:00+03:00"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(?:\d{1,6}[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
_LONGEST = timedelta(days=3660)  # ten years back is already far more than any shop keeps


def parse(text: str) -> timedelta | datetime:
    """A look-back (a ``timedelta``) or a moment (an aware ``datetime``); ``ValueError`` in plain words."""
    value = text.strip().lower()
    if value == "0":
        return timedelta(0)
    if _DURATION.match(value):
        span = timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value)))
        if span > _LONGEST:
            raise ValueError(f"{text.strip()!r} looks back more than ten years; give a date-time instead")
        return span
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"must be {FORMS}, got {text.strip()[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def first_since(text: str, now: datetime) -> datetime:
    """Where the first poll starts, for a setting that ``parse`` accepted."""
    start = parse(text)
    return now - start if isinstance(start, timedelta) else start


def describe(text: str) -> str:
    """One line for ``bridge check``."""
    start = parse(text)
    if start == timedelta(0):
        return "first poll: only orders changed from its start on (BRIDGE_POLL_START=0)"
    if isinstance(start, timedelta):
        return f"first poll: orders changed in the {text.strip()} before it are sent to 1C (BRIDGE_POLL_START)"
    return f"first poll: orders changed since {start.isoformat()} are sent to 1C (BRIDGE_POLL_START)"
