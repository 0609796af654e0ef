"""The PHP bracket format the shop speaks: parsed as PHP would, written as http_build_query does."""

from __future__ import annotations

import pytest

from bridge.shop.phpquery import QueryError, build, listify, parse


def test_shop_event_body_as_sent_on_the_wire() -> None:
    body = (
        "event=ONSALEORDERSAVED&event_handler_id=975&data%5BFIELDS%5D%5BID%5D=300&data%5BFIELDS%5D%5BXML_ID%5D="
        "&data%5BFIELDS%5D%5BACTION%5D=save&ts=1714649632&auth%5Bdomain%5D=shop.example.ru"
        "&auth%5Bapplication_token%5D=jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
    )
    assert parse(body) == {
        "event": "ONSALEORDERSAVED",
        "event_handler_id": "975",
        "data": {"FIELDS": {"ID": "300", "XML_ID": "", "ACTION": "save"}},
        "ts": "1714649632",
        "auth": {"domain": "shop.example.ru", "application_token": "jvh9y1ulvt2m6k5or90v9mg8nn32ozas"},
    }


def test_unencoded_brackets_appends_and_later_keys_win() -> None:
    assert parse("select[]=id&select[]=name&a[b]=1&a[b]=2") == {"select": ["id", "name"], "a": {"b": "2"}}


def test_values_keep_encoded_specials() -> None:
    assert parse("fields[TITLE]=John%26Martin&q=%2B7+900") == {"fields": {"TITLE": "John&Martin"}, "q": "+7 900"}


@pytest.mark.parametrize(
    "body",
    ["a[b]=1&a=2", "a=1&a[b]=2", "a[]=1&a[x]=2", "a" + "[x]" * 9 + "=1"],
    ids=["value-then-group", "group-then-value", "list-then-key", "too-deep"],
)
def test_ambiguous_or_too_deep_keys_are_refused(body: str) -> None:
    with pytest.raises(QueryError):
        parse(body)


def test_build_matches_http_build_query() -> None:
    query = build({"filter": {">=dateUpdate": "2024-04-01T00:00:00+03:00", "@id": [1, 2]}, "halt": False, "x": None})
    assert query == (
        "filter%5B%3E%3DdateUpdate%5D=2024-04-01T00%3A00%3A00%2B03%3A00"
        "&filter%5B%40id%5D%5B0%5D=1&filter%5B%40id%5D%5B1%5D=2&halt=0"
    )


def test_round_trip_through_listify() -> None:
    params = {"select": ["id", "statusId"], "filter": {"@id": ["1", "2"], "payed": "N"}, "start": "0"}
    assert listify(parse(build(params))) == params
