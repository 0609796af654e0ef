"""1C's standard exchange at ``/1c/exchange``: the protocol's answers, its sessions and uploads, and a whole run.

The web app is the real one (TestClient, real redis-server); the import jobs run in-process against the shop
emulator over real HTTP. ``tests/peers/onec_exchange.py`` plays 1C's exchange node.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from bridge import keys
from bridge.exchange import importing
from bridge.mappings import DEFAULTS_DIR
from bridge.ops import metrics, synclog
from bridge.queue import EXCHANGE_QUEUE
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.exchange_env import PASSWORD, USER, exchange_env, export, onec_for
from tests.peers.onec_exchange import OnecExchange, make_zip
from tests.peers.server import free_port
from tests.processes import wait_for
from tests.test_cli_check import run as run_cli
from tests.updates_env import UpdatesEnv, close_env


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    current = exchange_env(redis_url, shop, tmp_path)
    yield current
    close_env(current)


@pytest.fixture
def onec(env: UpdatesEnv) -> OnecExchange:
    return onec_for(env)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def text_of(answer: Any) -> str:
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=windows-1251"
    return str(answer.content.decode("windows-1251"))


def session_keys(redis: Redis) -> list[bytes]:
    return list(redis.scan_iter(match=keys.PREFIX + "exchange:session:*"))


def session_sid(redis: Redis) -> str:
    raw = redis.hget(session_keys(redis)[0], "sid")
    assert isinstance(raw, bytes)
    return raw.decode()


def import_entities(redis: Redis) -> list[str]:
    found = redis.scan_iter(match=keys.PREFIX + "exchange:import:*_*")
    return [k.decode().rsplit(":", 1)[1] for k in found if b":pending:" not in k]


# --- checkauth -------------------------------------------------------------------------------------------------


def test_checkauth_opens_a_session_of_five_lines(env: UpdatesEnv, onec: OnecExchange) -> None:
    reply = onec.checkauth()
    lines = reply.text.split("\n")
    assert lines[0] == "success" and lines[1] == "bridge_exchange" and len(lines[2]) >= 20
    assert lines[3].startswith("sessid=") and lines[4].startswith("timestamp=")
    assert int(lines[4].removeprefix("timestamp=")) > 1_700_000_000
    assert len(session_keys(env.redis)) == 1
    assert all(lines[2].encode() not in key for key in session_keys(env.redis))  # stored by a digest only


@pytest.mark.parametrize(
    "headers",
    [{}, basic(USER, "wrong"), basic("other", PASSWORD), {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}],
)
def test_wrong_or_missing_credentials_fail_and_store_nothing(env: UpdatesEnv, headers: dict[str, str]) -> None:
    answer = env.client.get("/1c/exchange", params={"type": "catalog", "mode": "checkauth"}, headers=headers)
    text = text_of(answer)
    assert text.startswith("failure\n") and PASSWORD not in text
    assert session_keys(env.redis) == []


def test_the_bitrix_path_is_the_same_handler(env: UpdatesEnv) -> None:
    answer = env.client.post(
        "/bitrix/admin/1c_exchange.php", params={"type": "sale", "mode": "checkauth"}, headers=basic(USER, PASSWORD)
    )
    assert text_of(answer).startswith("success\nbridge_exchange\n")


def test_without_the_settings_the_exchange_says_which_to_set(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, exchange_user="site")
    with TestClient(create_app(settings)) as client:
        answer = client.get("/1c/exchange", params={"type": "catalog", "mode": "checkauth"}, headers=basic("site", "x"))
        text = text_of(answer)
    assert text.startswith("failure\n") and "BRIDGE_EXCHANGE_PASSWORD" in text


def test_an_address_outside_the_allow_list_fails(redis_url: str) -> None:
    settings = Settings(
        redis_url=redis_url, exchange_user=USER, exchange_password=PASSWORD, inbound_allowed_ips="192.168.0.0/16"
    )
    with TestClient(create_app(settings), client=("10.0.0.5", 1234)) as client:
        answer = client.get(
            "/1c/exchange", params={"type": "catalog", "mode": "checkauth"}, headers=basic(USER, PASSWORD)
        )
        text = text_of(answer)
    assert text.startswith("failure\n") and "BRIDGE_INBOUND_ALLOWED_IPS" in text


def test_redis_down_is_a_plain_failure_not_a_5xx() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", exchange_user=USER, exchange_password=PASSWORD)
    with TestClient(create_app(settings)) as client:
        answer = client.get(
            "/1c/exchange", params={"type": "catalog", "mode": "checkauth"}, headers=basic(USER, PASSWORD)
        )
        text = text_of(answer)
    assert text.startswith("failure\n") and "Redis" in text


@pytest.mark.parametrize(
    "params", [{"type": "catalog", "mode": "nope"}, {"type": "crm", "mode": "checkauth"}, {}, {"mode": "init"}]
)
def test_an_unknown_command_fails_in_words(env: UpdatesEnv, params: dict[str, str]) -> None:
    text = text_of(env.client.get("/1c/exchange", params=params))
    assert text.startswith("failure\nНеизвестная команда обмена")


@pytest.mark.parametrize("cookie", [None, "bridge_exchange=forged-cookie-value", "bridge_exchange=" + "x" * 500])
def test_every_mode_after_checkauth_needs_the_session_cookie(
    env: UpdatesEnv, onec: OnecExchange, cookie: str | None
) -> None:
    onec.checkauth()  # a real session exists: a forged cookie must still not reach it
    for mode in ("init", "file", "import", "deactivate", "complete"):
        headers = {"Cookie": cookie} if cookie else {}
        env.client.cookies.clear()
        answer = env.client.post("/1c/exchange", params={"type": "catalog", "mode": mode, "filename": "a.xml"},
                                 headers=headers, content=b"<x/>")  # fmt: skip
        assert text_of(answer).startswith("failure\nСеанс обмена не найден"), mode
    assert env.redis.keys(keys.PREFIX + "exchange:files:*") == []


def test_a_wrong_sessid_is_refused_and_none_is_fine(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    assert onec.call("catalog", "init", sessid="wrong").status == "failure"
    assert onec.call("catalog", "init", sessid=onec.sessid or "").text.startswith("zip=")
    assert onec.call("catalog", "init").text.startswith("zip=")


# --- init and file -----------------------------------------------------------------------------------------------


def test_init_announces_zip_and_file_limit_and_echoes_the_version(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    assert onec.call("catalog", "init").text == "zip=yes\nfile_limit=8388608"
    reply = onec.call("catalog", "init", version="2.08")
    assert reply.text == f"zip=yes\nfile_limit=8388608\nsessid={onec.sessid}\nversion=2.08"


def test_chunks_are_appended_and_init_starts_afresh(env: UpdatesEnv) -> None:
    onec = onec_for(env)
    onec.checkauth()
    onec.init()
    onec.file_limit = 1000
    content = bytes(range(256)) * 20  # 5120 bytes: six chunks, part boundaries not aligned with them
    onec.upload("import_files\\ab\\pic.jpg", content)
    sid = session_sid(env.redis)
    from bridge.exchange import uploads

    assert uploads.sizes(env.redis, sid) == {"import_files/ab/pic.jpg": 5120}
    stream = uploads.open_file(env.redis, sid, "import_files/ab/pic.jpg")
    assert stream is not None and stream.read() == content
    onec.init()
    assert uploads.sizes(env.redis, sid) == {}
    assert env.redis.keys(keys.PREFIX + f"exchange:part:{sid}:*") == []


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b.xml", "", "a\x00b.xml", "C:/x.xml", ".."])
def test_names_that_leave_the_exchange_folder_are_refused(env: UpdatesEnv, onec: OnecExchange, name: str) -> None:
    onec.checkauth()
    onec.init()
    reply = onec.call("catalog", "file", body=b"data", filename=name)
    assert reply.readable and reply.status == "failure"
    assert env.redis.keys(keys.PREFIX + "exchange:files:*") == []


def test_an_absolute_name_is_made_relative(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    onec.init()
    assert onec.call("catalog", "file", body=b"x", filename="/tmp/import.xml").text.startswith(
        "success\nФайл import.xml"
    )


def test_a_body_past_the_file_limit_is_refused_before_it_is_read(redis_url: str, shop: Any, tmp_path: Path) -> None:
    env = exchange_env(redis_url, shop, tmp_path, exchange_file_limit=2048)
    try:
        onec = onec_for(env)
        onec.checkauth()
        onec.init()
        reply = onec.call("catalog", "file", body=b"x" * 2049, filename="import.xml")
        assert reply.status == "failure" and "file_limit = 2048" in reply.text
        assert env.redis.keys(keys.PREFIX + "exchange:part:*") == []
    finally:
        close_env(env)


def test_the_session_cap_refuses_what_would_pass_it(redis_url: str, shop: Any, tmp_path: Path) -> None:
    env = exchange_env(redis_url, shop, tmp_path, exchange_session_bytes=4096)
    try:
        onec = onec_for(env)
        onec.checkauth()
        onec.init()
        assert onec.call("catalog", "file", body=b"x" * 3000, filename="a.xml").status == "success"
        reply = onec.call("catalog", "file", body=b"x" * 2000, filename="b.xml")
        assert reply.status == "failure" and "BRIDGE_EXCHANGE_SESSION_BYTES" in reply.text
    finally:
        close_env(env)


# --- import ---------------------------------------------------------------------------------------------------


def test_a_whole_exchange_fills_the_shop_and_the_same_export_again_writes_nothing(
    env: UpdatesEnv, onec: OnecExchange, shop: Any
) -> None:
    finals = onec.run_catalog(export(3), use_zip=False)
    assert set(finals) == {"import0_1.xml", "offers0_1.xml"}
    goods_line = finals["import0_1.xml"].message
    assert "товары: 3 новых" in goods_line and "Пакет exchange-" in goods_line
    env.run_jobs()  # the flushes the imports queued
    chairs = shop.section_by_xml("g-chairs")
    assert chairs is not None and shop.section_by_xml("g-furniture") is not None
    item = shop.product_by_xml("item-2")
    assert item is not None and item["name"] == "Стул 2"
    assert shop.price_of(int(item["id"]), 1)["price"] == 102
    assert shop.amount(int(item["id"]), 1) == 3
    shop.clear_records()
    again = onec_for(env).run_catalog(export(3), use_zip=False)
    env.run_jobs()
    assert shop.requests == []
    assert "3 без изменений" in again["offers0_1.xml"].message


def test_a_zip_is_unpacked_and_its_members_imported_by_name(env: UpdatesEnv, onec: OnecExchange, shop: Any) -> None:
    finals = onec.run_catalog(export(2))  # init offers zip=yes: one v8_….zip
    assert all(reply.status == "success" for reply in finals.values())
    assert any(reply.message == "Идет распаковка архива." for reply in onec.replies if reply.status == "progress")
    env.run_jobs()
    assert shop.product_by_xml("item-1") is not None


def test_repeated_import_calls_start_one_job(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", export(1)["import0_1.xml"])
    replies = [onec.call("catalog", "import", filename="import.xml") for _ in range(5)]
    assert {r.status for r in replies} == {"progress"}
    queue = Queue(EXCHANGE_QUEUE, connection=env.redis)
    assert sum(1 for job in queue.jobs if str(job.func_name).endswith("import_file")) == 1
    env.run_jobs()
    assert onec.call("catalog", "import", filename="import.xml").status == "success"
    assert sum(1 for job in queue.jobs if str(job.func_name).endswith("import_file")) == 0


def test_an_import_call_waits_for_its_job_and_answers_success_when_it_ends(
    redis_url: str, shop: Any, tmp_path: Path
) -> None:
    """1C asks again at once after ``progress``: the call waits for the job instead, up to the setting."""
    env = exchange_env(redis_url, shop, tmp_path, exchange_import_wait=10)
    try:
        onec = onec_for(env)
        onec.checkauth()
        onec.init()
        onec.upload("import.xml", export(1)["import0_1.xml"])
        queue = Queue(EXCHANGE_QUEUE, connection=env.redis)
        with ThreadPoolExecutor(1) as pool:
            # the first call queues the job and waits; the job runs here only once it is queued
            first = pool.submit(onec.call, "catalog", "import", filename="import.xml")
            wait_for(lambda: queue.count == 1, what="the import job to be queued")
            env.run_jobs()
            reply = first.result(timeout=60)
        assert reply.status == "success" and "товары: 1 новых" in reply.message
    finally:
        close_env(env)


def test_a_job_run_again_after_it_finished_changes_nothing(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.run_catalog({"import.xml": export(1)["import0_1.xml"]}, use_zip=False)
    [entity] = import_entities(env.redis)
    before = importing.read_state(env.redis, entity)
    assert importing.import_file(entity).startswith("skipped")
    assert importing.read_state(env.redis, entity) == before


def test_a_job_killed_halfway_runs_again_from_the_start(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", export(2)["import0_1.xml"])
    assert onec.call("catalog", "import", filename="import.xml").status == "progress"
    [entity] = import_entities(env.redis)
    env.redis.hset(importing.import_key(entity), "state", importing.RUNNING)  # as a worker killed mid-import leaves it
    assert importing.import_file(entity).startswith("ok")
    reply = onec.import_file("import.xml")
    assert "товары: 2 новых" in reply.message


def test_the_exchange_is_in_the_sync_log_and_the_metrics(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.run_catalog(export(2), use_zip=False)
    sid = session_sid(env.redis)
    entries = synclog.read(env.redis, entity="exchange", entity_id=sid)
    operations = sorted((e.operation, e.outcome) for e in entries)
    assert operations == [("exchange import", "ok"), ("exchange import", "ok"), ("exchange session", "ok")]
    assert any("import0_1.xml" in (e.detail or "") and "batch exchange-" in (e.detail or "") for e in entries)
    text = metrics.exposition(env.redis).decode()
    assert 'bridge_exchange_sessions_total{type="catalog"} 1.0' in text
    assert 'bridge_exchange_imports_total{outcome="ok"} 2.0' in text
    assert 'bridge_exchange_files_total{type="catalog"} 2.0' in text


def test_deactivate_and_complete_answer_success(env: UpdatesEnv, onec: OnecExchange) -> None:
    onec.checkauth()
    assert onec.deactivate().status == "success"
    assert onec.complete().text == "success\nЗавершение процедуры импорта"


def test_the_zip_helper_makes_what_1c_sends() -> None:
    assert make_zip({"a.xml": b"<a/>"})[:2] == b"PK"


# --- bridge check ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"BRIDGE_EXCHANGE_USER": "site"}, "BRIDGE_EXCHANGE_USER is set but BRIDGE_EXCHANGE_PASSWORD is not"),
        ({"BRIDGE_EXCHANGE_PASSWORD": "secret-pass"}, "BRIDGE_EXCHANGE_PASSWORD is set but BRIDGE_EXCHANGE_USER"),
    ],
)
def test_bridge_check_explains_a_half_configured_exchange(env: dict[str, str], words: str) -> None:
    result = run_cli("check", env={"BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR), **env})
    assert result.returncode == 1 and words in result.stderr
    assert "secret-pass" not in result.stdout + result.stderr


def test_a_stored_file_is_read_one_part_at_a_time(env: UpdatesEnv, onec: OnecExchange) -> None:
    from bridge.exchange import uploads

    onec.checkauth()
    onec.init()
    content = bytes(range(251)) * (3 * uploads.PART // 251 + 7)  # three parts and a bit
    onec.upload("big.bin", content)
    stream = uploads.open_file(env.redis, session_sid(env.redis), "big.bin")
    assert stream is not None
    raw = stream.raw
    assert isinstance(raw, uploads.PartsReader)
    pieces = []
    while piece := stream.read(64 * 1024):
        pieces.append(piece)
        assert len(raw._part) <= uploads.PART  # never more than one part held
    assert b"".join(pieces) == content
    stream.seek(len(content) - 10)
    assert stream.read() == content[-10:]  # seekable, as a zip's directory at the end needs


def test_another_web_process_serves_the_same_session(env: UpdatesEnv, onec: OnecExchange) -> None:
    """A session and its uploads are in Redis: a second web process (or the first, restarted) goes on with it."""
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", export(2)["import0_1.xml"])
    with TestClient(create_app(env.rt.settings), client=("10.0.0.5", 1234)) as other:
        onec.client = other
        reply = onec.import_file("import.xml")
    assert reply.status == "success" and "товары: 2 новых" in reply.message
