"""Pending markers: one key per piece of work holding its newest event, so repeated work collapses into one job.

``bridge.queue.enqueue`` sets a marker and creates the job in one script call; the job reads the marker when it
starts and clears it only if nothing newer arrived meanwhile, or else goes round once more.
"""

from __future__ import annotations

from redis import Redis

# Delete the marker only if no newer event replaced it while the job worked.
_FINISH_PENDING = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def read_pending(connection: Redis, marker: str) -> tuple[str | None, str | None]:
    """(action, token) of the newest pending event, or (None, None) when nothing is pending."""
    raw = connection.get(marker)
    if raw is None:
        return None, None
    token = raw.decode() if isinstance(raw, bytes) else str(raw)
    action = token.rsplit(":", 1)[0]
    return action, token


def finish_pending(connection: Redis, marker: str, token: str | None) -> bool:
    """Clear the marker if it still holds ``token``; False means newer work arrived meanwhile."""
    if token is None:
        return connection.get(marker) is None
    return bool(connection.eval(_FINISH_PENDING, 1, marker, token))
