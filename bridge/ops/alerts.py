"""Alerts on error series: one notice when an incident opens and one when it clears, never one per failure.

The clock's leader calls ``Alerts.tick`` every second. Each *check* looks at state the bridge keeps anyway
and says whether its condition holds now:

- ``onec_down``: the 1C circuit has been open longer than ``BRIDGE_ALERT_ONEC_DOWN_AFTER`` seconds;
- ``dead_letters``: at least ``BRIDGE_ALERT_DEAD_LETTERS`` jobs failed for good within the last
  ``BRIDGE_ALERT_DEAD_LETTERS_WINDOW`` seconds (clears after a window without a new one);
- ``shop_blocked``: the shop answered ``OVERLOAD_LIMIT`` and every shop call is paused.

The open incidents live in Redis (``keys.ALERT_INCIDENTS``), written with HSETNX and removed with HDEL, so
only the evaluation that actually changes the state queues a notice, even across a clock restart or a
change of leader. Notices go to an outbox (``keys.ALERT_OUTBOX``, one entry per channel) and are sent from
there; a channel that fails is retried with back-off without resending to the channels that worked.
Every notice is also logged, so an installation with no channel configured still sees its alerts.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from redis import Redis

from bridge import keys
from bridge.ops import metrics, status
from bridge.ops.notify import Channel, Notice, NotifyError
from bridge.queue import deadletters
from bridge.redaction import scrub
from bridge.settings import Settings

log = logging.getLogger("bridge.ops.alerts")

MAX_ATTEMPTS = 30
RETRY_MIN = 10.0
RETRY_MAX = 600.0
SEND_BUDGET = 10.0  # seconds of sending per tick at most, so the clock keeps its leadership


@dataclass(frozen=True)
class Condition:
    """What a check found: ``active`` now, and the words for the notice if that changes the state."""

    alert: str
    active: bool
    title: str = ""
    text: str = ""


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_onec(redis: Redis, settings: Settings, now: float) -> Condition:
    circuit = status.circuit(redis)
    since = status.open_since(circuit)
    if since is None or now - since < settings.alert_onec_down_after:
        return Condition("onec_down", False)
    reason = circuit.reason or "no reason given"
    return Condition(
        "onec_down",
        True,
        f"1C unavailable for {_minutes(now - since)}",
        f"1C has refused or not answered every call since {_clock(since)}: {reason}\n"
        "Orders wait in the queue and are retried; nothing is lost.",
    )


def check_dead_letters(redis: Redis, settings: Settings, now: float) -> Condition:
    threshold, window = settings.alert_dead_letters, settings.alert_dead_letters_window
    if threshold <= 0:
        return Condition("dead_letters", False)
    recent = status.failed_since(redis, now - window)
    if recent == 0:
        return Condition("dead_letters", False)
    if recent < threshold:
        return Condition("dead_letters", True)  # keeps an open incident open; too few to open one
    examples = [f"- {d.what}: {d.why}" for d in deadletters.list_failed(redis, limit=3)]
    return Condition(
        "dead_letters",
        True,
        f"{recent} jobs failed for good in the last {_minutes(window)}",
        "Latest:\n" + "\n".join(examples) + "\nSee `bridge failed list`; once the cause is fixed, "
        "`bridge failed retry --all` sends them again.",
    )


def check_shop(redis: Redis, settings: Settings, now: float) -> Condition:
    until = status.shop_paused_until(redis, now)
    if until is None:
        return Condition("shop_blocked", False)
    return Condition(
        "shop_blocked",
        True,
        "the shop blocked REST calls (OVERLOAD_LIMIT)",
        f"All calls to the shop are paused until {_clock(until)}; work waits and resumes by itself.",
    )


CHECKS: tuple[Callable[[Redis, Settings, float], Condition], ...] = (check_onec, check_dead_letters, check_shop)
RESOLVED_TITLES = {
    "onec_down": "1C available again",
    "dead_letters": "no new dead letters",
    "shop_blocked": "shop calls resumed",
}


class Alerts:
    """Evaluates the checks, keeps incidents in Redis and sends notices through ``channels``."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.channels = dict(channels)
        self.clock = clock
        self._secrets = settings.secrets()

    def tick(self) -> list[Notice]:
        """Evaluate every check, then send what is due. Returns the notices this tick created."""
        notices = self.evaluate()
        self.deliver()
        return notices

    def evaluate(self) -> list[Notice]:
        now = self.clock()
        notices = []
        for check in CHECKS:
            condition = check(self.redis, self.settings, now)
            notice = self._transition(condition, now)
            if notice is not None:
                notices.append(notice)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(keys.ALERT_CHECKS, "evaluations", 1)
        pipe.hset(keys.ALERT_CHECKS, "checked_at", repr(now))
        pipe.execute()
        return notices

    def _transition(self, condition: Condition, now: float) -> Notice | None:
        if condition.active and condition.title:
            incident = json.dumps({"since": now, "title": condition.title})
            if not self.redis.hsetnx(keys.ALERT_INCIDENTS, condition.alert, incident):
                return None
            notice = Notice(condition.alert, "open", condition.title, condition.text, now, now)
        elif not condition.active:
            raw = self.redis.hget(keys.ALERT_INCIDENTS, condition.alert)
            if raw is None or not self.redis.hdel(keys.ALERT_INCIDENTS, condition.alert):
                return None
            opened = json.loads(raw)
            since = float(opened.get("since", now))
            text = f"Resolved after {_minutes(now - since)}; it began as: {opened.get('title', condition.alert)}."
            if condition.alert == "dead_letters":
                text += f" {deadletters.count(self.redis)} job(s) remain in the dead-letter list."
            notice = Notice(condition.alert, "resolved", RESOLVED_TITLES[condition.alert], text, since, now)
        else:
            return None
        notice = Notice(
            notice.alert, notice.state, scrub(notice.title, self._secrets), scrub(notice.text, self._secrets),
            notice.since, notice.at,
        )  # fmt: skip
        level = logging.ERROR if notice.state == "open" else logging.WARNING
        log.log(
            level,
            "ALERT %s %s: %s",
            notice.alert,
            notice.state,
            notice.title,
            extra={"extra_fields": {"alert": notice.alert, "state": notice.state}},
        )
        self._queue(notice, now)
        return notice

    def _queue(self, notice: Notice, now: float) -> None:
        if not self.channels:
            return
        entries = {
            json.dumps({"id": uuid.uuid4().hex, "channel": name, "attempts": 0, "notice": asdict(notice)}): now
            for name in self.channels
        }
        self.redis.zadd(keys.ALERT_OUTBOX, entries)

    def deliver(self, budget: float = SEND_BUDGET) -> int:
        """Send the due notices (oldest first) until ``budget`` seconds are used; returns how many went out."""
        started = time.monotonic()
        sent = 0
        due: list[bytes] = self.redis.zrangebyscore(keys.ALERT_OUTBOX, "-inf", self.clock(), start=0, num=20)  # type: ignore[assignment]
        for raw in due:
            if time.monotonic() - started > budget:
                break
            if not self.redis.zrem(keys.ALERT_OUTBOX, raw):
                continue  # another clock took it
            item = json.loads(raw)
            notice = Notice.from_dict(item["notice"])
            channel = self.channels.get(item["channel"])
            if channel is None:
                continue  # the channel was unconfigured since
            try:
                channel.send(notice)
            except NotifyError as exc:
                self._failed(item, notice, str(exc))
                continue
            sent += 1
            metrics.inc(self.redis, "bridge_alert_notices", (notice.alert, channel.name, "sent"))
            log.info("alert %s %s sent to %s", notice.alert, notice.state, channel.name)
        return sent

    def _failed(self, item: dict[str, object], notice: Notice, reason: str) -> None:
        attempts = int(str(item.get("attempts", 0))) + 1
        metrics.inc(self.redis, "bridge_alert_notices", (notice.alert, str(item["channel"]), "failed"))
        reason = scrub(reason, self._secrets)
        if attempts >= MAX_ATTEMPTS:
            log.error(
                "alert %s %s to %s dropped after %d attempts: %s",
                notice.alert,
                notice.state,
                item["channel"],
                attempts,
                reason,
            )
            return
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** (attempts - 1))
        log.warning(
            "alert %s %s to %s failed (%s); retry in %.0f s", notice.alert, notice.state, item["channel"], reason, delay
        )
        item = {**item, "attempts": attempts}
        self.redis.zadd(keys.ALERT_OUTBOX, {json.dumps(item): self.clock() + delay})


def open_incidents(redis: Redis) -> dict[str, dict[str, object]]:
    """The incidents open now (the snapshot of ``bridge.ops.status`` holds them too)."""
    return status.open_alerts(redis)
