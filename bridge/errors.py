"""The two kinds of failure every job distinguishes.

A job either gives up at once (``PermanentError``: retrying cannot help, the work goes to the dead-letter
list with the reason a person needs to fix it) or waits and tries again (``TransientError``: the peer is
down, busy or rate-limited). Peer clients raise subclasses of these; the job layer only looks at the two.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class BridgeError(Exception):
    """Base of the bridge's own errors. The message never contains a secret."""


class PermanentError(BridgeError):
    """Retrying cannot help: bad data, a mapping that is missing, credentials 1C or the shop rejects."""


class Cause(StrEnum):
    """Why a transient failure happened, which decides how long the retry waits (``bridge.queue.retry``).

    An enum rather than a word, so that a misspelt cause fails where it is written instead of silently
    getting the long back-off. Its values are the words the logs and the sync log have always shown.
    """

    BUSY = "busy"  # the peer is up, something else holds the work (a lock, a slot): retry soon
    UNAVAILABLE = "unavailable"  # the peer is down or did not answer: back off long
    RATE_LIMITED = "rate_limited"  # the shop's leaky bucket is full: wait for a slot
    PAUSED = "paused"  # the shop paused one method (OPERATION_TIME_LIMIT)
    OVERLOAD = "overload"  # the shop blocked every call (OVERLOAD_LIMIT)

    def __str__(self) -> str:
        return self.value


class TransientError(BridgeError):
    """Worth another try later.

    ``retry_after`` is the earliest moment (seconds from now) a retry can succeed, when the peer said so
    (a paused shop method, an open 1C circuit); ``cause`` says why, for logs and the back-off choice.
    A plain string is accepted where it names a cause (it is converted); any other raises ``ValueError``.
    """

    def __init__(self, reason: str, *, cause: Cause = Cause.UNAVAILABLE, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.cause = Cause(cause)
        self.retry_after = retry_after

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        state = dict(state or {})
        if "kind" in state and "cause" not in state:  # pickled before the cause had its name
            state["cause"] = Cause(str(state.pop("kind")))
        self.__dict__.update(state)
