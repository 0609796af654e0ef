"""A job that only records that it ran: proves RQ can run what ``enqueue_once`` wrote."""

from rq import get_current_job


def record(entity: str, action: str) -> str:
    job = get_current_job()
    assert job is not None
    job.connection.rpush("test:ran", f"{entity}:{action}")
    return "recorded"
