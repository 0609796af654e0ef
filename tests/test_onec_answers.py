"""What an answer from 1C means: every class, from real envelopes, in every encoding 1C is known to use."""

from __future__ import annotations

import json

import httpx
import pytest

from bridge.onec.answers import REASON_LIMIT, Answer, Outcome, classify, decode_body, extract_reason

# The real answer of a locked infobase (shape from pavel-v-sobolev/onecdc tests/test_error_handling.py).
LOCKED_403 = json.dumps(
    {
        "#exception": "{http://v8.1c.ru/8.2/virtual-resource-system}Exception",
        "exception": {
            "reason": 403,
            "descr": "HTTP: Forbidden\nОшибка при выполнении запроса POST к ресурсу /hs/exchange/orders:",
            "inner": {
                "descr": "Начало сеанса с информационной базой запрещено.\nВедутся технические работы",
                "inner": {
                    "descr": "Ведутся технические работы",
                    "creationStack": "core83.dll:0x0000000000085928 " * 40,
                    "data": "77u/ew0Ke2EwMWY0NjVjLWVkNzAtNDQyZS1hZGE1" * 30,
                },
            },
        },
    },
    ensure_ascii=False,
)
LOCKED_REASON = "HTTP 403: Начало сеанса с информационной базой запрещено. Ведутся технические работы"

SESSION_406_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<exception xmlns="http://v8.1c.ru/8.2/virtual-resource-system" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Exception" '
    'clsid="{580392e6-ba49-4280-ac67-fcd6f2180121}" reason="406">\n'
    '<descr xmlns="http://v8.1c.ru/8.1/data/core">Истекло время ожидания сеанса</descr></exception>'
)
EXCLUSIVE_XML = (
    '<exception xmlns="http://v8.1c.ru/8.2/virtual-resource-system" reason="500">'
    '<descr xmlns="http://v8.1c.ru/8.1/data/core">Ошибка при выполнении операции с информационной базой</descr>'
    "<inner><descr>Ошибка исключительной блокировки информационной базы. Активны сеансы: 3</descr></inner>"
    "</exception>"
)
HTML_500 = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n<html><head>'
    "<title>1C:Enterprise 8 application error</title><style>body{color:red}</style></head><body>"
    "<h2>1C:Enterprise 8 application error:</h2>Unrecoverable error<br>"
    "<b>by reason: </b><br>The device is full &apos;/tmp/v8_x.tmp&apos;. "
    "28(0x0000001C): No space left on device</body></html>"
)
LOCK_CONFLICT = (
    "Конфликт блокировок при выполнении транзакции:\nПревышено максимальное время ожидания предоставления блокировки"
)
SHARED_LOCK = "Ошибка разделенного доступа к базе данных. База данных заблокирована: приложение: Фоновое задание"
ODATA_500 = json.dumps(
    {"odata.error": {"code": "-1", "message": {"lang": "ru", "value": "Произошла внутренняя ошибка OData сервиса."}}},
    ensure_ascii=False,
)

CASES = [
    # id, status, body, outcome, expected reason (None: not checked)
    ("201 created", 201, '{"status":"created","number":"ЗК-000123"}', Outcome.DELIVERED, "HTTP 201: created"),
    ("200 exists", 200, '{"status":"exists","ref":"x"}', Outcome.DELIVERED, "HTTP 200: exists"),
    ("204 empty", 204, b"", Outcome.DELIVERED, "HTTP 204"),
    ("409 already exists", 409, '{"message":"Заказ 300 уже есть"}', Outcome.DELIVERED, "HTTP 409: Заказ 300 уже есть"),
    ("403 session lock json", 403, LOCKED_403, Outcome.UNAVAILABLE, LOCKED_REASON),
    ("403 session lock utf-8 bytes", 403, LOCKED_403.encode("utf-8"), Outcome.UNAVAILABLE, LOCKED_REASON),
    (
        "403 session lock with BOM",
        403,
        b"\xef\xbb\xbf" + LOCKED_403.encode("utf-8"),
        Outcome.UNAVAILABLE,
        LOCKED_REASON,
    ),
    ("403 session lock cp1251", 403, LOCKED_403.encode("cp1251"), Outcome.UNAVAILABLE, LOCKED_REASON),
    ("403 plain forbidden", 403, "Доступ запрещён", Outcome.PERMANENT, "HTTP 403: Доступ запрещён"),
    ("500 shared lock text", 500, SHARED_LOCK, Outcome.UNAVAILABLE, f"HTTP 500: {SHARED_LOCK}"),
    ("500 exclusive xml", 500, EXCLUSIVE_XML, Outcome.UNAVAILABLE, None),
    ("500 monopoly mode", 500, "Информационная база находится в монопольном режиме", Outcome.UNAVAILABLE, None),
    ("500 lock conflict", 500, LOCK_CONFLICT, Outcome.BUSY, None),
    ("409 is delivered whatever it says", 409, LOCK_CONFLICT, Outcome.DELIVERED, None),
    (
        "422 mentioning a blocked counterparty is permanent",
        422,
        '{"message":"Контрагент заблокирован"}',
        Outcome.PERMANENT,
        None,
    ),
    ("500 deadlock", 500, "Обнаружена взаимоблокировка", Outcome.BUSY, None),
    ("406 session wait xml", 406, SESSION_406_XML, Outcome.BUSY, "HTTP 406: Истекло время ожидания сеанса"),
    ("406 session wait cp1251", 406, SESSION_406_XML.encode("cp1251"), Outcome.BUSY, None),
    ("500 html page", 500, HTML_500, Outcome.UNAVAILABLE, None),
    ("500 odata", 500, ODATA_500, Outcome.UNAVAILABLE, "HTTP 500: Произошла внутренняя ошибка OData сервиса."),
    (
        "502 proxy",
        502,
        "<html><head><title>502 Bad Gateway</title></head><body></body></html>",
        Outcome.UNAVAILABLE,
        None,
    ),
    ("503 empty", 503, b"", Outcome.UNAVAILABLE, "HTTP 503"),
    ("429", 429, "slow down", Outcome.UNAVAILABLE, "HTTP 429: slow down"),
    ("401", 401, "", Outcome.PERMANENT, "HTTP 401"),
    ("400 json message", 400, '{"status":"error","message":"Не заполнен контрагент"}', Outcome.PERMANENT, None),
    ("404 wrong url", 404, "Not Found", Outcome.PERMANENT, "HTTP 404: Not Found"),
    ("422 error field", 422, '{"error":"Товар ART-9 не найден"}', Outcome.PERMANENT, "HTTP 422: Товар ART-9 не найден"),
    ("418 other 4xx", 418, "", Outcome.PERMANENT, None),
    ("302 redirect to login", 302, "", Outcome.PERMANENT, None),
    ("2xx is delivered (contract section 5)", 200, LOCKED_403, Outcome.DELIVERED, None),
]


@pytest.mark.parametrize(("status", "body", "outcome", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(status: int, body: str | bytes, outcome: Outcome, reason: str | None) -> None:
    answer = classify(status, body)
    assert answer.outcome is outcome, answer.reason
    assert answer.status == status
    if reason is not None:
        assert answer.reason == reason
    assert "\n" not in answer.reason
    assert len(answer.reason) <= REASON_LIMIT


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_answer_is_unavailable(error: Exception) -> None:
    answer = classify(None, b"", error)
    assert answer == Answer(Outcome.UNAVAILABLE, None, answer.reason, "")
    assert type(error).__name__ in answer.reason
    assert str(error) in answer.reason


def test_error_wins_over_a_status() -> None:
    # A transport that failed while reading the body: whatever status was seen, 1C's answer is unknown.
    assert classify(200, b"", httpx.ReadError("reset")).outcome is Outcome.UNAVAILABLE


def test_reason_is_the_deepest_message_that_adds_something() -> None:
    # The outer HTTP wrapper is dropped; the innermost level repeats only the admin's text, so the middle one
    # (which says the session start is forbidden) is what a person needs.
    reason = classify(403, LOCKED_403).reason
    assert "HTTP: Forbidden" not in reason
    assert "core83.dll" not in reason and "77u/" not in reason


def test_wrapper_alone_is_kept() -> None:
    body = json.dumps({"exception": {"descr": "HTTP: Forbidden\nОшибка запроса"}}, ensure_ascii=False)
    assert extract_reason(body) == "HTTP: Forbidden. Ошибка запроса"


def test_html_reason_is_readable() -> None:
    reason = classify(500, HTML_500).reason
    assert reason.startswith("HTTP 500: 1C:Enterprise 8 application error")
    assert "No space left on device" in reason
    assert "<" not in reason and "color:red" not in reason
    assert "'/tmp/v8_x.tmp'" in reason


def test_html_title_is_added_when_the_text_lacks_it() -> None:
    page = "<html><head><title>Service Unavailable</title></head><body><p>Try later</p></body></html>"
    assert extract_reason(page) == "Service Unavailable: Try later"


def test_long_reason_is_trimmed() -> None:
    reason = classify(500, "Ошибка " * 200).reason
    assert len(reason) == REASON_LIMIT
    assert reason.endswith("…")


def test_body_is_kept_decoded() -> None:
    answer = classify(500, "Конфликт блокировок".encode("cp1251"))
    assert answer.body == "Конфликт блокировок"
    assert answer.outcome is Outcome.BUSY


@pytest.mark.parametrize(
    ("raw", "charset", "text"),
    [
        ("Заказ".encode(), None, "Заказ"),
        (b"\xef\xbb\xbf" + "Заказ".encode(), None, "Заказ"),
        ("Заказ".encode("cp1251"), None, "Заказ"),
        ("Заказ".encode("cp1251"), "windows-1251", "Заказ"),
        # A wrong declaration does not win over bytes that are valid UTF-8.
        ("Заказ".encode(), "windows-1251", "Заказ"),
        ("Заказ".encode("utf-16"), None, "Заказ"),
        ("\ufeffЗаказ", None, "Заказ"),
        (None, None, ""),
    ],
)
def test_decode_body(raw: bytes | str | None, charset: str | None, text: str) -> None:
    assert decode_body(raw, charset) == text


def test_outcome_is_a_plain_string() -> None:
    assert Outcome.BUSY == "busy"
    assert f"{Outcome.DELIVERED}" == "delivered"
    assert json.dumps({"o": Outcome.PERMANENT}) == '{"o": "permanent"}'
