"""``batch``: up to 50 commands in one request, each a ``method?query`` string.

A command may use what an earlier one returned through ``$result[cmd][field]…``. The answer keeps PHP's
artefacts: each of ``result``, ``result_error``, ``result_total``, ``result_next`` and ``result_time`` is a
JSON list when its keys happen to be "0".."n-1" and ``[]`` when it is empty. With ``halt`` the first error
stops the batch.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from bridge.sandbox.shop.values import truthy
from bridge.sandbox.shop.wire import Answer, ShopError, php_map, time_block
from bridge.shop import phpquery

BATCH_LIMIT = 50

Execute = Callable[[str, dict[str, Any]], Answer]  # runs one command as the shop would, refusals included


def run_batch(params: dict[str, Any], execute: Execute) -> Answer:
    cmd = params.get("cmd") or {}
    if isinstance(cmd, list):  # ids 0..n-1 read back from a form body as a list
        cmd = {str(i): command for i, command in enumerate(cmd)}
    if not isinstance(cmd, dict):
        raise ShopError("INVALID_ARG_VALUE", "cmd must be a map of commands", 400)
    halt = truthy(params.get("halt", 0))
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    nexts: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for index, (cmd_id, command) in enumerate(cmd.items()):
        started = time.time()
        try:
            if index >= BATCH_LIMIT:
                raise ShopError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
            method, _, query = str(command).partition("?")
            try:
                sub_params = phpquery.listify(phpquery.parse(query)) if query else {}
            except (phpquery.QueryError, UnicodeDecodeError) as exc:
                raise ShopError("INVALID_ARG_VALUE", str(exc), 400) from None
            answer = execute(method, substitute(sub_params, results))
        except ShopError as exc:
            errors[str(cmd_id)] = exc.body()
            if halt:
                break
            continue
        results[str(cmd_id)] = answer.result
        if answer.total is not None:
            totals[str(cmd_id)] = answer.total
        if answer.next is not None:
            nexts[str(cmd_id)] = answer.next
        times[str(cmd_id)] = time_block(started)
    return Answer(
        {
            "result": php_map(results),
            "result_error": php_map(errors),
            "result_total": php_map(totals),
            "result_next": php_map(nexts),
            "result_time": php_map(times),
        }
    )


_REFERENCE = re.compile(r"\$result\[([^\[\]]*)\]((?:\[[^\[\]]*\])*)")


def substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``$result[cmd][field]…`` by what an earlier batch command returned."""
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if not isinstance(value, str) or "$result[" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        return _resolve(whole, results)
    return _REFERENCE.sub(lambda m: str(_resolve(m, results) or ""), value)


def _resolve(match: re.Match[str], results: dict[str, Any]) -> Any:
    node: Any = results.get(match.group(1))
    for part in re.findall(r"\[([^\[\]]*)\]", match.group(2)):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
