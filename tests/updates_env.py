"""A bridge set up for the 1C-update tests: its mappings, the web app 1C pushes to, and a worker to flush.

The flush runs in this process through ``BridgeSimpleWorker`` against the shop emulator over real HTTP and
a real redis-server. Retries the flush schedules are released at once by ``run_jobs`` (no sleeping): the
tests check *what* is retried, not how long the bridge waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from starlette.testclient import TestClient

from bridge import runtime
from bridge.queue import EXCHANGE_QUEUE, SHOP_QUEUE, make_queue
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.updates import inbox
from bridge.web.app import create_app
from bridge.worker import WORKER_QUEUES, BridgeSimpleWorker

TOKEN = "inbound-t0ken-0001"


@dataclass
class UpdatesEnv:
    rt: Runtime
    client: TestClient
    redis: Redis
    jobs_run: list[str] = field(default_factory=list)

    def push(self, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.client.post(f"/1c/{kind}", json={"items": items}, headers={"X-Api-Token": TOKEN})
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def run_jobs(self, *, max_rounds: int = 20) -> int:
        """Work the queues until empty, releasing scheduled retries at once. Returns the rounds it took."""
        runtime.install(self.rt)
        queues = [make_queue(name, self.redis, default_timeout=self.rt.settings.job_timeout) for name in WORKER_QUEUES]
        for round_number in range(1, max_rounds + 1):
            worker = BridgeSimpleWorker(queues, connection=self.redis)
            worker.work(burst=True, logging_level="WARNING")
            if release_scheduled(self.rt) == 0 and all(queue.count == 0 for queue in queues):
                return round_number
        raise AssertionError(f"the queues were not empty after {max_rounds} rounds")

    def pending(self, kind: str) -> int:
        """Pending entries once the stored bodies are split (the flush's first step, done here if not yet)."""
        inbox.split(self.redis, kind)
        return int(self.redis.hlen(f"bridge:pending:{kind}"))

    def failed(self) -> list[Job]:
        registries = [FailedJobRegistry(queue=make_queue(name, self.redis)) for name in (SHOP_QUEUE, EXCHANGE_QUEUE)]
        return [Job.fetch(job_id, connection=self.redis) for r in registries for job_id in r.get_job_ids()]


def release_scheduled(rt: Runtime) -> int:
    """Move every scheduled retry of the shop and exchange queues into its queue now (RQ's scheduler would, later)."""
    released = 0
    for name in (SHOP_QUEUE, EXCHANGE_QUEUE):
        queue = rt.queue(name)
        registry = ScheduledJobRegistry(queue=queue)
        job_ids = registry.get_job_ids()
        for job_id in job_ids:
            job = Job.fetch(job_id, connection=rt.redis)
            registry.remove(job)
            queue.enqueue_job(job)
        released += len(job_ids)
    return released


def write_mappings(directory: Path, catalog: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "catalog.toml").write_text(catalog, encoding="utf-8")
    return directory


def make_env(redis_url: str, shop: Any, mappings: Path, **overrides: Any) -> UpdatesEnv:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "shop_url": shop.url,
        "inbound_token": TOKEN,
        "mappings_dir": mappings,
        "retry_min_delay": 0.1,
        "retry_max_delay": 1.0,
        **overrides,
    }
    settings = Settings(**values)
    redis = Redis.from_url(redis_url)
    rt = Runtime.from_settings(settings, redis)
    runtime.install(rt)
    client = TestClient(create_app(settings), client=("10.0.0.5", 1234))
    client.__enter__()
    return UpdatesEnv(rt, client, redis)


def close_env(env: UpdatesEnv) -> None:
    env.client.__exit__(None, None, None)
    runtime.install(None)
