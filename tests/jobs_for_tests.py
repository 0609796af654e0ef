"""A job that only records that it ran: proves RQ can run what ``enqueue_once`` wrote."""

from rq import get_current_job


def record(entity: str, action: str) -> str:
    job = get_current_job()
    assert job is not None
    job.connection.rpush("test:ran", f"{entity}:{action}")
    return "recorded"


def block(name: str) -> str:
    """A job that says it started, then runs until the test lets it go (``test:release:<name>``), at most a
    minute: the job in hand when a worker is asked to stop."""
    import time

    job = get_current_job()
    assert job is not None
    job.connection.rpush("test:started", name)
    deadline = time.monotonic() + 60
    while not job.connection.exists(f"test:release:{name}") and time.monotonic() < deadline:
        time.sleep(0.05)
    job.connection.rpush("test:finished", name)
    return "released"


def outlived(name: str) -> str:
    """A re-run of an abandoned job, during which the dead run's execution hash runs out: its entry stays
    in the job's execution registry, as RQ 3.0.0 leaves it."""
    import time

    job = get_current_job()
    assert job is not None
    job.connection.zadd(job.execution_registry.key, {f"dead-{name}": time.time() + 60})
    job.connection.rpush("test:outlived", name)
    return "done"
