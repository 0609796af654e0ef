"""Hostile input to 1C's exchange: each answers ``failure`` (or is harmless), never a 5xx, and changes nothing.

Files that attack the XML reader (external entities, entity expansion, broken XML), archives that attack the
unpacking (a zip bomb, names that climb out of the folder, too many members, a truncated archive), calls out
of order (an import of a file never uploaded, an order file sent as a catalogue), a Redis restart mid-exchange,
and any query and body at all. Nothing reaches the shop: after each, the queues are worked and the shop
emulator must have had no write.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.exchange_env import PASSWORD, USER, exchange_env, export, onec_for
from tests.peers.onec_exchange import OnecExchange, Reply, make_zip
from tests.peers.redis_server import RedisServer
from tests.updates_env import UpdatesEnv, close_env

READS = {"catalog.catalog.list", "catalog.section.list", "catalog.product.list", "catalog.storeproduct.list"}


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    current = exchange_env(redis_url, shop, tmp_path, exchange_zip_entries=50)
    yield current
    close_env(current)


@pytest.fixture
def onec(env: UpdatesEnv) -> OnecExchange:
    exchange = onec_for(env)
    exchange.checkauth()
    exchange.init()
    return exchange


def import_answer(onec: OnecExchange, name: str) -> Reply:
    """The last answer to ``import`` of ``name`` (a ``failure`` is an answer here, not an error)."""
    for _round in range(200):
        reply = onec.call("catalog", "import", filename=name)
        assert reply.readable, reply.text
        if reply.status != "progress":
            return reply
        assert onec.on_progress is not None
        onec.on_progress()
    raise AssertionError("still in progress")


def nothing_written(env: UpdatesEnv, shop: Any) -> None:
    env.run_jobs()
    writes = [method for method, _params in shop.commands if method.split(".")[-1] not in ("list", "get")]
    assert writes == []


XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<\xd0\x9a\xd0\xbe\xd0\xbc\xd0\xbc\xd0\xb5\xd1\x80\xd1\x87\xd0\xb5\xd1\x81\xd0\xba\xd0\xb0\xd1\x8f\xd0\x98\xd0\xbd\xd1\x84\xd0\xbe\xd1\x80\xd0\xbc\xd0\xb0\xd1\x86\xd0\xb8\xd1\x8f>&secret;</\xd0\x9a\xd0\xbe\xd0\xbc\xd0\xbc\xd0\xb5\xd1\x80\xd1\x87\xd0\xb5\xd1\x81\xd0\xba\xd0\xb0\xd1\x8f\xd0\x98\xd0\xbd\xd1\x84\xd0\xbe\xd1\x80\xd0\xbc\xd0\xb0\xd1\x86\xd0\xb8\xd1\x8f>
"""
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode() for i in range(1, 10))
    + b"]>\n<lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (XXE, ""),
        (LAUGHS, ""),
        (export(2)["import0_1.xml"][:-200], "строк"),  # cut short: the reader names the line
        (b"<not-commerceml/>", ""),
        (b"\xff\xfe\x00garbage", ""),
        (b"", ""),
    ],
    ids=["xxe", "billion-laughs", "truncated", "unknown-root", "binary", "empty"],
)
def test_files_the_reader_refuses_fail_and_change_nothing(
    env: UpdatesEnv, onec: OnecExchange, shop: Any, content: bytes, words: str
) -> None:
    onec.upload("import.xml", content)
    reply = import_answer(onec, "import.xml")
    assert reply.status == "failure" and reply.message, reply.text
    assert words in reply.message and "root:" not in reply.message  # /etc/passwd never echoed
    nothing_written(env, shop)


def test_an_order_file_sent_as_a_catalogue_fails(env: UpdatesEnv, onec: OnecExchange, shop: Any) -> None:
    orders = '<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="2.08"><Документ><Ид>1</Ид></Документ></КоммерческаяИнформация>'
    onec.upload("documents.xml", orders.encode())
    reply = import_answer(onec, "documents.xml")
    assert reply.status == "failure" and "type=sale" in reply.message
    nothing_written(env, shop)


def test_an_import_of_a_file_never_uploaded_fails_at_once(env: UpdatesEnv, onec: OnecExchange, shop: Any) -> None:
    reply = onec.call("catalog", "import", filename="import0_1.xml")
    assert reply.status == "failure" and "не был загружен" in reply.message
    nothing_written(env, shop)


def test_a_member_missing_from_the_zip_fails(env: UpdatesEnv, onec: OnecExchange, shop: Any) -> None:
    onec.upload("v8_1.zip", make_zip({"import0_1.xml": export(1)["import0_1.xml"]}))
    reply = import_answer(onec, "offers0_1.xml")
    assert reply.status == "failure" and "не был загружен" in reply.message


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        (zip_of([("import.xml", b"<a/>"), ("bomb.bin", b"\0" * (16 * 1024 * 1024))]), "BRIDGE_EXCHANGE_ZIP_RATIO"),
        (zip_of([("import.xml", b"<a/>"), ("../../etc/cron.d/x", b"x")]), "выходит за папку"),
        (zip_of([("import.xml", b"<a/>"), ("/etc/passwd", b"x"), ("a\\..\\..\\b", b"x")]), "выходит за папку"),
        (zip_of([("import.xml", b"<a/>")] + [(f"f{n}.jpg", b"x") for n in range(60)]), "BRIDGE_EXCHANGE_ZIP_ENTRIES"),
        (make_zip({"import.xml": export(1)["import0_1.xml"]})[:-30], "повреждён"),
        (b"PK\x03\x04 not a zip at all", "повреждён"),
    ],
    ids=["bomb", "slip", "absolute-and-backslash", "entries", "truncated", "not-a-zip"],
)
def test_hostile_archives_fail_and_change_nothing(
    env: UpdatesEnv, onec: OnecExchange, shop: Any, archive: bytes, words: str
) -> None:
    onec.upload("v8_1A76_155ae.zip", archive)
    reply = import_answer(onec, "import.xml")
    assert reply.status == "failure" and words in reply.message, reply.text
    nothing_written(env, shop)


def test_a_redis_restart_with_persistence_loses_no_upload(shop: Any, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        env = exchange_env(server.url, shop, tmp_path)
        try:
            onec = onec_for(env)
            onec.checkauth()
            onec.init()
            onec.file_limit = 4096
            onec.upload("import0_1.xml", export(3)["import0_1.xml"])
            server.restart()
            wait_until_serving(server)
            reply = import_answer(onec, "import0_1.xml")
            assert reply.status == "success" and "товары: 3 новых" in reply.message
        finally:
            close_env(env)


def test_a_redis_restart_without_persistence_is_a_plain_failure(shop: Any, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        env = exchange_env(server.url, shop, tmp_path)
        try:
            onec = onec_for(env)
            onec.checkauth()
            onec.init()
            onec.upload("import0_1.xml", export(1)["import0_1.xml"])
            server.kill()
            down = onec.call("catalog", "import", filename="import0_1.xml")
            assert down.readable and down.status == "failure" and "Redis" in down.message
            server.start()
            lost = onec.call("catalog", "import", filename="import0_1.xml")
            assert lost.readable and lost.status == "failure" and "checkauth" in lost.message
            nothing_written(env, shop)
        finally:
            close_env(env)


def wait_until_serving(server: RedisServer) -> None:
    """Poll until the restarted server has loaded its AOF and answers (it refuses with LOADING until then)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with server.client() as client:
                if client.ping():
                    return
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


queries = st.dictionaries(
    st.sampled_from(["type", "mode", "filename", "version", "sessid", "timestamp", "x"]),
    st.one_of(
        st.sampled_from(["catalog", "sale", "checkauth", "init", "file", "import", "deactivate", "complete", "query"]),
        st.text(max_size=40),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=queries, body=st.binary(max_size=200), cookie=st.booleans(), auth=st.booleans())
def test_any_call_gets_an_answer_1c_can_read(
    onec: OnecExchange, params: dict[str, str], body: bytes, cookie: bool, auth: bool
) -> None:
    headers = {"User-Agent": "1C+Enterprise/8.3"}
    if cookie and onec.cookie is not None:
        headers["Cookie"] = f"{onec.cookie[0]}={onec.cookie[1]}"
    if auth:
        headers["Authorization"] = "Basic " + __import__("base64").b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    params = {k: v.replace("\x00", "") for k, v in params.items()}
    answer = onec.client.post("/1c/exchange", params=params, headers=headers, content=body)
    assert answer.status_code == 200
    text = answer.content.decode("windows-1251")
    assert text.split("\n", 1)[0] in ("success", "progress", "failure") or text.startswith("zip=")
    assert "<html" not in text.lower()


def test_a_chunked_body_past_the_file_limit_is_cut_off(redis_url: str, shop: Any, tmp_path: Path) -> None:
    env = exchange_env(redis_url, shop, tmp_path, exchange_file_limit=4096)
    try:
        onec = onec_for(env)
        onec.checkauth()
        onec.init()

        def body() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
            for _ in range(10):
                yield b"x" * 1000

        assert onec.cookie is not None
        answer = env.client.post(
            "/1c/exchange",
            params={"type": "catalog", "mode": "file", "filename": "import.xml"},
            headers={"Cookie": f"{onec.cookie[0]}={onec.cookie[1]}"},
            content=body(),
        )
        text = answer.content.decode("windows-1251")
        assert answer.status_code == 200 and text.startswith("failure\n") and "file_limit = 4096" in text
        assert env.redis.keys("bridge:exchange:part:*") == []
    finally:
        close_env(env)
