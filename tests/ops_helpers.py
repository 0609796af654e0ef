"""Helpers for the operations tests: settings aimed at the emulators, and an in-process worker run."""

from __future__ import annotations

from typing import Any

from redis import Redis

from bridge import runtime
from bridge.mappings import DEFAULTS_DIR
from bridge.settings import Settings, load_settings
from bridge.worker import build_worker


def emulator_settings(redis_url: str, shop: Any, onec: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "shop_url": shop.url,
        "shop_app_tokens": shop.application_token,
        "onec_url": onec.url,
        "onec_user": onec.user,
        "onec_password": onec.password,
        "mappings_dir": DEFAULTS_DIR,
        "retry_min_delay": 0.2,
        "retry_max_delay": 1.0,
        "poll_interval": 0,
    }
    values.update(overrides)
    return load_settings(**values)


def run_jobs(settings: Settings, redis: Redis) -> None:
    """Run every queued job once, in this process, and return when the queues are empty."""
    worker = build_worker(settings, redis, simple=True)
    try:
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    finally:
        runtime.install(None)
