"""Property tests of the form parser (``bridge.shop.phpquery``) with hostile and random input.

Every shop event passes through ``parse`` before the token is even checked, so whatever bytes arrive, it
may only return a nested dict or refuse with ``QueryError``/``ValueError`` (which the intake turns into a
400): never another exception (a 500), never a structure deeper than ``MAX_DEPTH``. And it must read back
what ``build`` (the shop's ``http_build_query``) writes, so that no real event is misread.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.shop.phpquery import MAX_DEPTH, QueryError, build, form_pairs, key_path, listify, parse

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text made mostly of the characters that mean something in a form body, plus anything else.
FORM_ALPHABET = st.sampled_from(list("&=[]%+;#aZ09 ._-")) | st.sampled_from(["%5B", "%5D", "%26", "%3D", "%D0", "%B0"])
form_text = st.lists(FORM_ALPHABET | st.characters(), max_size=80).map("".join)

# Keys as a form would name them: no brackets, not empty, not all digits (PHP makes those list indices).
safe_key = st.text(min_size=1, max_size=12).filter(lambda k: "[" not in k and "]" not in k and not k.isdigit())
leaf = st.text(max_size=20)


def nested(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return leaf
    child = nested(depth - 1)
    return leaf | st.dictionaries(safe_key, child, min_size=1, max_size=3) | st.lists(child, min_size=1, max_size=3)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@FAST
@given(form_text)
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        result = parse(text)
    except (QueryError, ValueError):
        return
    assert isinstance(result, dict)
    assert depth_of(result) <= MAX_DEPTH


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_cleanly(body: bytes) -> None:
    try:
        result = parse(body)
    except (QueryError, ValueError):  # UnicodeDecodeError included
        return
    assert isinstance(result, dict)


@FAST
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=5000), st.sampled_from(["[x]", "[]", "[0]"]))
def test_deep_bracket_keys_are_refused_not_followed(depth: int, part: str) -> None:
    with pytest.raises(QueryError):
        parse("a" + part * depth + "=1")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(safe_key, nested(3), min_size=1, max_size=4))
def test_what_build_writes_parse_reads_back(params: dict[str, Any]) -> None:
    assert listify(parse(build(params))) == params


@FAST
@given(form_text)
def test_the_fast_splitter_agrees_with_parse_qsl(text: str) -> None:
    assert form_pairs(text) == parse_qsl(text, keep_blank_values=True, max_num_fields=10_000)


@FAST
@given(st.text(max_size=30))
def test_key_path_agrees_with_the_bracket_grammar(key: str) -> None:
    match = re.match(r"^([^\[\]]*)((?:\[[^\[\]]*\])*)$", key)
    expected = None if match is None or not match.group(1) else (match.group(1), *re.findall(r"\[([^\[\]]*)\]", key))
    assert key_path(key) == expected


def test_too_many_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        parse("&".join(f"f{i}=1" for i in range(10_001)))
