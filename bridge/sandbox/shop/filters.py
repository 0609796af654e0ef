"""``select`` / ``filter`` / ``order`` / ``start``, shared by every camelCase ``*.list`` method.

The shop's ORM refuses a filter or order on a field it does not know with error 0; the field sets each area
passes in make the emulator do the same, which catches a bridge that filters on UPPER_SNAKE or misspelt
names. Filter keys carry their operator as a prefix (``>=dateUpdate``, ``@id``, ``!%name``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

from bridge.sandbox.shop.values import DATETIME_PATTERN, as_list, integer, parse_datetime
from bridge.sandbox.shop.wire import Answer, ShopError

PAGE_SIZE = 50  # fixed by Bitrix: there is no limit parameter
PROPERTY_KEY = re.compile(r"^property\d+$")  # an iblock property, ``propertyN``, selectable where ``dynamic``

_OPERATORS = sorted(
    ("!@", "!=%", "!%=", "=%", "%=", "!%", ">=", "<=", "!=", ">", "<", "@", "=", "!", "%"), key=len, reverse=True
)


def split_key(key: str) -> tuple[str, str]:
    for operator in _OPERATORS:
        if key.startswith(operator):
            return operator, key[len(operator) :]
    return "=", key


def _scalar(value: Any) -> Any:
    """An iblock property value ``{"value": …, "valueId": …}`` compares by its value."""
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    return value


def _pair(current: Any, wanted: Any) -> tuple[Any, Any] | None:
    """Both sides in one comparable type (numbers, datetimes or strings), or None when incomparable."""
    if current is None or wanted is None or isinstance(wanted, dict | list):
        return None
    if isinstance(current, bool):
        current = "Y" if current else "N"
    if isinstance(wanted, bool):
        wanted = "Y" if wanted else "N"
    if isinstance(current, int | float):
        try:
            return float(current), float(wanted)
        except (TypeError, ValueError):
            raise ShopError(0, f"Invalid filter value {wanted!r}") from None
    if isinstance(current, str) and (moment := parse_datetime(current)) is not None:
        other = parse_datetime(str(wanted))
        if other is None:
            raise ShopError(0, f"Invalid date value {wanted!r}")
        return moment, other
    return str(current), str(wanted)


def _equal(current: Any, wanted: Any) -> bool:
    if isinstance(current, list):
        return any(_equal(item, wanted) for item in current)
    if current is None or current == "":
        return wanted is None or wanted == "" or wanted is False
    pair = _pair(current, wanted)
    return pair is not None and pair[0] == pair[1]


def _like(current: Any, pattern: str, *, explicit: bool) -> bool:
    if current is None:
        return False
    if isinstance(current, list):
        return any(_like(item, pattern, explicit=explicit) for item in current)
    text = str(current).lower()
    if not explicit:
        return pattern.lower() in text
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("%")) + "$"
    return re.match(regex, text, re.DOTALL) is not None


def _matches(item: dict[str, Any], key: str, wanted: Any) -> bool:
    operator, field = split_key(key)
    current = _scalar(item.get(field))
    if operator in ("@", "!@") or (operator in ("=", "!", "!=") and isinstance(wanted, list | dict)):
        hit = any(_equal(current, value) for value in as_list(wanted))
        return not hit if operator.startswith("!") else hit
    if operator in ("=", "!", "!="):
        return _equal(current, wanted) != (operator != "=")
    if operator in ("%", "!%"):
        return _like(current, str(wanted), explicit=False) != (operator == "!%")
    if operator in ("=%", "%=", "!=%", "!%="):
        return _like(current, str(wanted), explicit=True) != operator.startswith("!")
    if isinstance(current, list):
        return any(_matches({field: value}, key, wanted) for value in current)
    pair = _pair(current, wanted)
    if pair is None:
        return False
    left, right = pair
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[operator]


Predicate = Callable[[dict[str, Any]], bool]


def _membership(key: str, wanted: Any) -> Predicate:
    """``_matches`` for an ``@field`` / ``=field`` / ``!field`` test, quick for the usual plain id or text.

    The flushes look rows up by id or xmlId among a whole catalogue's rows (``@xmlId`` with 50 values, 50 such
    lists in one batch); comparing every row through ``_pair`` made the emulator, not the bridge, the slow
    side of a big run. An int or a non-date text is compared against sets made once; every other value
    (lists, dates, empties, odd types) goes through ``_matches`` itself, so the answers are the same
    (tests/test_peers.py holds the two to each other).
    """
    operator, field = split_key(key)
    negate = operator.startswith("!")
    values = [v for v in as_list(wanted) if v is not None and not isinstance(v, dict | list)]
    texts = {("Y" if v else "N") if isinstance(v, bool) else str(v) for v in values}
    try:
        numbers: set[float] | None = {float(v) for v in values if not isinstance(v, bool)}
        if any(isinstance(v, bool) for v in values):
            numbers = None  # a number compared with "Y"/"N" is an error of the shop's: the slow path raises it
    except (TypeError, ValueError):
        numbers = None

    def test(item: dict[str, Any]) -> bool:
        current = item.get(field)
        if isinstance(current, int | float) and not isinstance(current, bool) and numbers is not None:
            return (float(current) in numbers) != negate
        if isinstance(current, str) and current and not DATETIME_PATTERN.match(current.strip()):
            return (current in texts) != negate
        return _matches(item, key, wanted)

    return test


def compile_filter(raw_filter: dict[str, Any]) -> Predicate:
    """One predicate for a whole ``filter``: what ``_matches`` says of every key, checked row by row."""
    tests: list[Predicate] = []
    # a list of values rules out most rows, so it is asked first; the rows answered are the same in any
    # order (a bad value of another key is then refused only by the rows that reach its test)
    ordered = sorted(raw_filter.items(), key=lambda pair: split_key(pair[0])[0] != "@")
    for key, wanted in ordered:
        operator = split_key(key)[0]
        if operator in ("@", "!@") or (operator in ("=", "!", "!=") and not isinstance(wanted, dict)):
            tests.append(_membership(key, wanted))
        else:
            tests.append(lambda item, k=key, w=wanted: _matches(item, k, w))  # type: ignore[misc]
    if not tests:
        return lambda item: True
    if len(tests) == 1:
        return tests[0]
    first, *rest = tests

    def every(item: dict[str, Any]) -> bool:
        return first(item) and all(test(item) for test in rest)

    return every


def _sort_key(value: Any) -> tuple[int, Any]:
    value = _scalar(value)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, float(value))
    if (moment := parse_datetime(value)) is not None:
        return (1, moment.timestamp())
    return (2, str(value))


def _check_fields(names: Iterable[str], known: Collection[str], dynamic: bool) -> None:
    for name in names:
        if name not in known and not (dynamic and PROPERTY_KEY.match(name)):
            raise ShopError(0, f'Unknown field definition "{name}"')


def rows_of_products(
    table: dict[int, dict[str, Any]], ids_of: dict[int, set[int]], params: dict[str, Any]
) -> Iterable[dict[str, Any]]:
    """The rows ``list_answer`` has to look at: only the named products' when the filter names them by
    ``productId`` (what the bridge asks for prices and stock), else every row. The filter still decides."""
    raw_filter = params.get("filter")
    if not isinstance(raw_filter, dict):
        return table.values()
    key = next((k for k in ("@productId", "productId", "=productId") if k in raw_filter), None)
    if key is None:
        return table.values()
    values = as_list(raw_filter[key])
    if any(isinstance(v, bool | float) for v in values):
        return table.values()  # compared the shop's way, row by row
    try:
        wanted = {int(v) for v in values}
    except (TypeError, ValueError):
        return table.values()  # no id: the filter itself refuses or compares it
    return [table[i] for p in wanted for i in ids_of.get(p, ()) if i in table]


def list_answer(
    items: Iterable[dict[str, Any]],
    params: dict[str, Any],
    *,
    key: str,
    fields: Collection[str],
    exclude: Collection[str] = (),
    dynamic: bool = False,
) -> Answer:
    """The shared body of every camelCase ``*.list`` method: filter, order, one page of 50, select."""
    select = [str(name) for name in as_list(params.get("select"))]
    raw_filter = params.get("filter") or {}
    if not isinstance(raw_filter, dict):
        raise ShopError(0, "Parameter filter must be an object")
    raw_order = params.get("order") or {"id": "asc"}
    if not isinstance(raw_order, dict):
        raise ShopError(0, "Parameter order must be an object")
    start = integer(params.get("start") or 0, "start")
    _check_fields((split_key(k)[1] for k in raw_filter), fields, dynamic)
    _check_fields(raw_order, fields, dynamic)

    keep = compile_filter(raw_filter)
    rows = [item for item in items if keep(item)]
    for field, direction in reversed(list(raw_order.items())):
        rows.sort(key=lambda item, f=field: _sort_key(item.get(f)), reverse=str(direction).lower() == "desc")  # type: ignore[misc]
    if start < 0:  # start=-1 is the fast mode for paging by id: no COUNT(*), no total, no next
        page, total, next_start = rows[:PAGE_SIZE], 0, None
    else:
        page, total = rows[start : start + PAGE_SIZE], len(rows)
        next_start = start + PAGE_SIZE if start + PAGE_SIZE < total else None

    def project(item: dict[str, Any]) -> dict[str, Any]:
        if not select or "*" in select:
            return {k: copy.deepcopy(v) for k, v in item.items() if k not in exclude}
        out = {name: copy.deepcopy(item[name]) for name in select if name in item and name not in exclude}
        for name in select:  # a selected property without a value comes back as null
            if dynamic and PROPERTY_KEY.match(name) and name not in out:
                out[name] = None
        return out

    return Answer({key: [project(item) for item in page]}, total=total, next=next_start)
