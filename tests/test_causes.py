"""The cause of a transient failure is one of a fixed set, and it alone picks the retry's back-off."""

from __future__ import annotations

import pickle
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bridge.errors import Cause, TransientError
from bridge.queue import retry
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.shop.errors import ShopTransientError


def test_the_causes_are_the_words_the_logs_show() -> None:
    assert sorted(Cause) == ["busy", "overload", "paused", "rate_limited", "unavailable"]
    assert f"retry ({Cause.RATE_LIMITED})" == "retry (rate_limited)"


@pytest.mark.parametrize("word", ["bussy", "Busy", "", "rate-limited"])
def test_a_misspelt_cause_cannot_be_made(word: str) -> None:
    with pytest.raises(ValueError):
        TransientError("x", cause=cast(Cause, word))
    with pytest.raises(ValueError):
        ShopTransientError("x", method="batch", cause=cast(Cause, word))


def test_a_cause_given_as_its_word_becomes_the_enum() -> None:
    assert TransientError("x", cause=cast(Cause, "paused")).cause is Cause.PAUSED
    assert TransientError("x").cause is Cause.UNAVAILABLE


# attempt → delay without jitter, at the default BRIDGE_RETRY_MIN_DELAY (5 s) and BRIDGE_RETRY_MAX_DELAY (600 s).
SOON = {0: 1.0, 1: 2.0, 4: 16.0, 5: 30.0, 20: 30.0}
LONG = {0: 5.0, 1: 10.0, 4: 80.0, 7: 600.0, 20: 600.0}


@pytest.mark.parametrize(
    ("cause", "delays"),
    [
        (Cause.BUSY, SOON),
        (Cause.UNAVAILABLE, LONG),
        (Cause.RATE_LIMITED, LONG),
        (Cause.PAUSED, LONG),
        (Cause.OVERLOAD, LONG),
    ],
)
def test_the_retry_delay_per_cause(cause: Cause, delays: dict[int, float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: 0.0)
    runtime = cast(Runtime, SimpleNamespace(settings=Settings(_env_file=None)))  # type: ignore[call-arg]
    found = {attempt: retry.retry_delay(runtime, TransientError("x", cause=cause), attempt) for attempt in delays}
    assert found == delays
    # What the peer said still wins over a shorter back-off.
    assert retry.retry_delay(runtime, TransientError("x", cause=cause, retry_after=900.0), 0) == 900.0


@pytest.mark.parametrize(
    "error",
    [
        TransientError("1C busy", cause=Cause.BUSY, retry_after=3.0),
        ShopTransientError("shop paused", method="batch", cause=Cause.PAUSED, retry_after=12.0, status=429),
    ],
)
def test_the_cause_survives_pickling(error: TransientError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.cause, copy.retry_after) == (
        type(error),
        str(error),
        error.cause,
        error.retry_after,
    )
    assert copy.cause is error.cause


@pytest.mark.parametrize(
    "error",
    [TransientError("old", retry_after=1.0), ShopTransientError("old", method="batch", retry_after=1.0)],
)
def test_an_error_pickled_when_the_cause_was_called_kind_still_loads(error: TransientError) -> None:
    state: dict[str, Any] = error.__dict__
    del state["cause"]
    state["kind"] = "busy"  # what such a pickle holds
    copy = pickle.loads(pickle.dumps(error))
    assert copy.cause is Cause.BUSY and "kind" not in copy.__dict__ and copy.retry_after == 1.0
