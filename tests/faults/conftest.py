"""``make_stack``: a fault-test deployment whose processes are stopped, and their logs shown, after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Stack
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator

MakeStack = Callable[..., Stack]


@pytest.fixture
def make_stack(redis_url: str, shop: ShopEmulator, onec: OnecEmulator, tmp_path: Path) -> Iterator[MakeStack]:
    """``make_stack(redis_url=None, **env)``: a Stack on the session's Redis (or another one); env overrides
    the fault defaults (a value of None removes the variable)."""
    stacks: list[Stack] = []

    def make(url: str | None = None, **env: str | None) -> Stack:
        stack = Stack(url or redis_url, shop, onec, tmp_path / f"stack-{len(stacks)}", **env)
        stack.log_dir.mkdir()
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()
            print(stack.output())  # pytest shows it only when the test failed
    leaks = {name for stack in stacks for name in stack.leaked()}
    assert not leaks, f"secrets in the processes' output: {sorted(leaks)}"
