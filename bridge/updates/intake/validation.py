"""Checking a 1C body: either the items, ready to be queued, or every problem at once.

A 1C developer fixes a rejected exchange by reading the answer in the configurator, so the answer lists
*every* offending place as a JSON pointer (``/items/3/amount``) with a message in plain words, not just the
first one. pydantic checks the structure; one plain loop then checks what pydantic cannot express cheaply
(exactly one of ``product_id``/``xml_id``/``sku`` and the like; whether a date-time's date exists) and turns
each ``ts`` into microseconds since the epoch. When pydantic has already refused the body, the same loop
runs over the raw JSON, so those problems are listed too.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bridge.updates.intake.models import ISO_PATTERN, MAX_NUMBER

if TYPE_CHECKING:
    from bridge.updates.kinds.base import UpdateKind

_ISO = re.compile(ISO_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TEXT_FIELDS = {
    "ts": "must be an ISO-8601 date-time such as 2024-05-01T10:00:00+03:00",
    "currency": "must be an ISO 4217 currency code in capitals, such as RUB",
    "status_id": "must be a shop status id: letters, digits, _ and - only",
}


@dataclass(frozen=True)
class Problem:
    """One offending place: a JSON pointer into the body, and what is wrong there."""

    path: str
    message: str


class InvalidPayload(Exception):
    """The body breaks the schema; ``problems`` lists every place."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the body")
        self.problems = list(problems)


@dataclass(frozen=True)
class Accepted:
    """The validated items and, per item, its ``ts`` in microseconds since the epoch (None when absent)."""

    items: list[dict[str, Any]]
    stamps: list[int | None]


def validate(kind: UpdateKind, text: str) -> Accepted:
    """Validate a body of the ``kind`` endpoint; raises ``InvalidPayload`` with every problem."""
    try:
        body = kind.adapter.validate_json(text)
    except ValidationError as exc:
        raise InvalidPayload(_all_problems(kind, exc, text)) from None
    items: list[dict[str, Any]] = body["items"]
    stamps, problems = check_items(kind, items)
    if problems:
        raise InvalidPayload(problems)
    return Accepted(items, stamps)


def check_items(kind: UpdateKind, items: Sequence[Any]) -> tuple[list[int | None], list[Problem]]:
    """The rules pydantic does not check, over validated or raw items; also reads each ``ts``.

    Written for speed (this runs once per item of bodies with tens of thousands): set intersections for
    the usual case, and each distinct ``ts`` text parsed once (1C tends to stamp a whole upload alike).
    """
    groups = [(group, frozenset(group)) for group in kind.choices]
    read: dict[str, int | str | None] = {}  # ts text → microseconds, or the reason it is not a date-time
    stamps: list[int | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            stamps.append(None)
            continue
        for group, names in groups:
            given = item.keys() & names
            if len(given) != 1 or item[next(iter(given))] is None:
                problem = _choice_problem(item, group)
                if problem is not None:
                    problems.append(Problem(f"/items/{index}", problem))
        ts = item.get("ts")
        stamp: int | None = None
        if isinstance(ts, str):
            micros_or_reason = read[ts] if ts in read else read.setdefault(ts, _read_ts(ts))
            if isinstance(micros_or_reason, str):
                problems.append(Problem(f"/items/{index}/ts", micros_or_reason))
            else:
                stamp = micros_or_reason
        stamps.append(stamp)
    return stamps, problems


def _choice_problem(item: dict[str, Any], group: tuple[str, ...]) -> str | None:
    given = [name for name in group if item.get(name) is not None]
    if len(given) == 1:
        return None
    got = "none was given" if not given else f"got {' and '.join(given)}"
    return f"give exactly one of {', '.join(group)} ({got})"


def _read_ts(text: str) -> int | str | None:
    """Microseconds, or the problem in words; None for a text that pydantic already refused (not ISO-shaped)."""
    if not _ISO.match(text):
        return None
    try:
        return to_micros(text)
    except ValueError as exc:
        return f"is not a real date-time: {exc}"


def to_micros(text: str) -> int:
    """An ISO-8601 date-time as microseconds since the epoch; without an offset it is taken as UTC."""
    moment = datetime.fromisoformat(text.upper())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _all_problems(kind: UpdateKind, exc: ValidationError, text: str) -> list[Problem]:
    found = [(tuple(error["loc"]), _message(kind, error)) for error in exc.errors(include_url=False)]
    raw = _raw_items(text)
    if raw is not None:
        _, extra = check_items(kind, raw)
        found.extend((_loc(problem.path), problem.message) for problem in extra)
    unique = dict.fromkeys(found)  # keeps the first of equal (place, message) pairs
    ordered = sorted(unique, key=lambda pair: tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pair[0]))
    return [Problem(pointer(loc), message) for loc, message in ordered]


def _raw_items(text: str) -> list[Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    items = data.get("items") if isinstance(data, dict) else None
    return items if isinstance(items, list) else None


def pointer(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a JSON pointer (RFC 6901): ("items", 3, "amount") → /items/3/amount."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def _loc(path: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in path.strip("/").split("/"))


def _message(kind: UpdateKind, error: Any) -> str:
    """pydantic's message, rewritten where a 1C developer would otherwise have to guess."""
    error_type, loc, given = error["type"], error["loc"], error.get("input")
    name = loc[-1] if loc else None
    if error_type == "json_invalid":
        return f"the body is not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    if not loc:
        return 'the body must be a JSON object such as {"items": [...]}'
    if error_type == "extra_forbidden":
        allowed = _allowed_fields(kind, loc)
        close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
        return f"unknown field {name!r}{hint}"
    if error_type == "missing":
        return "is required"
    if error_type == "finite_number":
        return "must be a finite number, not NaN or Infinity"
    if error_type in ("float_type", "float_parsing"):
        return "must be a number" + (", not text" if isinstance(given, str) else "")
    if error_type in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + (", not text" if isinstance(given, str) else "")
    if error_type == "less_than_equal":
        limit = error.get("ctx", {}).get("le")
        return "must not exceed 10^15" if limit == MAX_NUMBER else f"must be at most {limit}"
    if error_type == "greater_than_equal":
        return f"must be at least {error.get('ctx', {}).get('ge')}"
    if error_type == "string_type":
        return "must be text"
    if error_type == "string_pattern_mismatch":
        return _TEXT_FIELDS.get(str(name), "must be one line of text that is not blank")
    if error_type == "string_too_long":
        return f"must be at most {error.get('ctx', {}).get('max_length')} characters"
    if error_type in ("list_type", "dict_type", "typed_dict_type", "model_type"):
        return "must be a list of items" if name == "items" else "must be a JSON object"
    return str(error["msg"])


def _allowed_fields(kind: UpdateKind, loc: Sequence[Any]) -> list[str]:
    return ["items"] if len(loc) <= 1 else list(kind.item.__annotations__)
