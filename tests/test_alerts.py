"""Alerts: one notice when an incident opens, one when it clears, through each configured channel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from bridge import keys
from bridge.ops.alerts import Alerts, open_incidents
from bridge.ops.notify import Email, Notice, NotifyError, Telegram, Webhook, channels
from bridge.queue import FAILURE_TTL, ORDERS_QUEUE
from bridge.settings import Settings, load_settings
from tests.peers.alert_receivers import AlertReceiver, SmtpServer
from tests.peers.server import run_app

NOW = 1_800_000_000.0


class Recorder:
    def __init__(self, name: str = "fake", failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> None:
        if self.failures:
            self.failures -= 1
            raise NotifyError("the fake channel is down")
        self.sent.append(notice)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def settings(**overrides: Any) -> Settings:
    return load_settings(
        **{"alert_onec_down_after": 60, "alert_dead_letters": 3, "alert_dead_letters_window": 600, **overrides}
    )


def open_circuit(
    redis: Redis, since: float, reason: str = "HTTP 403: Начало сеанса с информационной базой запрещено"
) -> None:
    from datetime import UTC, datetime

    iso = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
    redis.hset(keys.ONEC_CIRCUIT, mapping={"state": "open", "since": iso, "reason": reason})


def test_1c_down_alerts_once_after_the_threshold_and_once_when_it_clears(redis: Redis) -> None:
    channel, clock = Recorder(), Clock()
    alerts = Alerts(redis, settings(), {"fake": channel}, clock=clock)
    open_circuit(redis, NOW - 30)
    alerts.tick()
    assert channel.sent == []  # open for 30 s only: a short lock is no incident
    clock.now += 40
    for _ in range(5):
        alerts.tick()
        clock.now += 1
    assert [(n.alert, n.state) for n in channel.sent] == [("onec_down", "open")]
    assert "Начало сеанса с информационной базой запрещено" in channel.sent[0].text
    assert "onec_down" in open_incidents(redis)
    redis.hset(keys.ONEC_CIRCUIT, mapping={"state": "closed"})
    for _ in range(5):
        alerts.tick()
    assert [(n.alert, n.state) for n in channel.sent] == [("onec_down", "open"), ("onec_down", "resolved")]
    assert channel.sent[1].title == "1C available again"
    assert open_incidents(redis) == {}


def test_a_second_clock_does_not_repeat_the_notice(redis: Redis) -> None:
    first, second, clock = Recorder(), Recorder(), Clock()
    open_circuit(redis, NOW - 3600)
    Alerts(redis, settings(), {"fake": first}, clock=clock).tick()
    Alerts(redis, settings(), {"fake": second}, clock=clock).tick()  # after a change of leader
    assert len(first.sent) == 1 and second.sent == []


def add_dead_letters(redis: Redis, n: int, at: float) -> None:
    for i in range(n):
        redis.zadd(f"rq:failed:{ORDERS_QUEUE}", {f"job-{at}-{i}": at + FAILURE_TTL})


def test_dead_letters_alert_when_they_pile_up_and_clear_after_a_quiet_window(redis: Redis) -> None:
    channel, clock = Recorder(), Clock()
    alerts = Alerts(redis, settings(), {"fake": channel}, clock=clock)
    add_dead_letters(redis, 2, NOW - 10)
    alerts.tick()
    assert channel.sent == []  # 2 < 3
    add_dead_letters(redis, 1, NOW - 5)
    alerts.tick()
    alerts.tick()
    assert [(n.alert, n.state) for n in channel.sent] == [("dead_letters", "open")]
    assert channel.sent[0].title == "3 jobs failed for good in the last 10 min"
    assert "bridge failed retry --all" in channel.sent[0].text
    clock.now += 300
    add_dead_letters(redis, 1, clock.now)  # one more keeps the incident open, without a new notice
    clock.now += 500
    alerts.tick()
    assert len(channel.sent) == 1
    clock.now += 601
    alerts.tick()
    assert [(n.alert, n.state) for n in channel.sent] == [("dead_letters", "open"), ("dead_letters", "resolved")]
    assert "4 job(s) remain" in channel.sent[1].text


def test_a_failing_channel_is_retried_without_resending_to_the_others(redis: Redis) -> None:
    flaky, steady, clock = Recorder("flaky", failures=2), Recorder("steady"), Clock()
    alerts = Alerts(redis, settings(), {"flaky": flaky, "steady": steady}, clock=clock)
    open_circuit(redis, NOW - 3600)
    alerts.tick()
    assert (len(flaky.sent), len(steady.sent)) == (0, 1)
    alerts.tick()
    assert len(flaky.sent) == 0  # not due yet: back-off
    clock.now += 10
    alerts.tick()  # second failure
    clock.now += 20
    alerts.tick()
    assert (len(flaky.sent), len(steady.sent)) == (1, 1)
    assert redis.zcard(keys.ALERT_OUTBOX) == 0


def test_notices_never_carry_a_secret(redis: Redis) -> None:
    channel = Recorder()
    secret = "adm1n-secret-token"
    alerts = Alerts(redis, settings(admin_token=secret), {"fake": channel}, clock=Clock())
    open_circuit(redis, NOW - 3600, reason=f"echoed {secret} back")
    alerts.tick()
    assert secret not in channel.sent[0].text and "echoed *** back" in channel.sent[0].text


def test_shop_overload_is_an_incident(redis: Redis) -> None:
    channel, clock = Recorder(), Clock()
    alerts = Alerts(redis, settings(), {"fake": channel}, clock=clock)
    redis.set(keys.SHOP_PAUSE_ALL, repr(NOW + 600))
    alerts.tick()
    clock.now += 601
    alerts.tick()
    assert [(n.alert, n.state) for n in channel.sent] == [("shop_blocked", "open"), ("shop_blocked", "resolved")]


@pytest.fixture
def receiver() -> Iterator[tuple[AlertReceiver, str]]:
    receiver = AlertReceiver()
    with run_app(receiver.app()) as server:
        yield receiver, server.url


NOTICE = Notice("onec_down", "open", "1C unavailable for 5 min", "since 10:00: locked", NOW - 300, NOW)


def test_telegram_gets_the_message_at_the_configured_base_url(receiver: tuple[AlertReceiver, str]) -> None:
    peer, url = receiver
    Telegram(url, peer.token, "-100123").send(NOTICE)
    [message] = peer.telegram
    assert message["chat_id"] == "-100123"
    assert message["text"] == "🔴 bridge: 1C unavailable for 5 min\nsince 10:00: locked"


def test_a_telegram_refusal_names_the_cause_but_not_the_token(receiver: tuple[AlertReceiver, str]) -> None:
    _peer, url = receiver
    with pytest.raises(NotifyError) as caught:
        Telegram(url, "999:wrong-token-value", "1").send(NOTICE)
    assert str(caught.value) == "Telegram answered HTTP 401: Unauthorized"
    with pytest.raises(NotifyError) as unreachable:
        Telegram("http://127.0.0.1:1", "999:wrong-token-value", "1").send(NOTICE)
    assert "wrong-token-value" not in str(unreachable.value)


def test_the_webhook_gets_json(receiver: tuple[AlertReceiver, str]) -> None:
    peer, url = receiver
    Webhook(f"{url}/hook").send(NOTICE)
    [body] = peer.hooks
    assert (body["alert"], body["state"], body["title"], body["source"]) == (
        "onec_down", "open", "1C unavailable for 5 min", "bridge",
    )  # fmt: skip
    assert body["since"].endswith("Z") and "1C unavailable" in body["message"]


def test_email_is_sent_with_login() -> None:
    with SmtpServer() as smtp:
        Email(
            "127.0.0.1", smtp.port, sender="bridge@shop.example", recipients=["ops@shop.example"],
            user="bridge", password="smtp-pa55word", security="none",
        ).send(NOTICE)  # fmt: skip
        [mail] = smtp.recorder.mails
    assert mail.login == ("bridge", "smtp-pa55word")
    assert mail.recipients == ["ops@shop.example"]
    assert mail.message["Subject"] == "[bridge] ALERT: 1C unavailable for 5 min"
    assert "since 10:00: locked" in mail.message.get_payload(decode=True).decode()


def test_email_failure_is_a_notify_error() -> None:
    with pytest.raises(NotifyError, match="e-mail not sent"):
        Email("127.0.0.1", 1, sender="a@b", recipients=["c@d"], security="none").send(NOTICE)


def test_channels_follow_the_settings() -> None:
    assert channels(load_settings()) == {}
    configured = channels(
        load_settings(
            telegram_bot_token="1:x",
            telegram_chat_id="5",
            alert_webhook_url="http://h/x",
            smtp_host="m",
            smtp_to="a@b,c@d",
        )
    )
    assert sorted(configured) == ["email", "telegram", "webhook"]
    email = configured["email"]
    assert isinstance(email, Email) and email.recipients == ["a@b", "c@d"]


def test_alert_settings_are_secrets() -> None:
    configured = load_settings(
        telegram_bot_token="123:bot-token", smtp_password="smtp-pass", alert_webhook_url="https://hooks.example/T/B/key"
    )
    assert {"123:bot-token", "smtp-pass", "https://hooks.example/T/B/key"} <= set(configured.secrets())


def test_evaluations_are_counted(redis: Redis) -> None:
    alerts = Alerts(redis, settings(), {}, clock=time.time)
    alerts.tick()
    alerts.tick()
    assert int(redis.hget(keys.ALERT_CHECKS, "evaluations") or 0) == 2
