"""``bridge demo``: the one place outside ``bridge.sandbox`` that may load it, and only when the demo runs."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from bridge.sandbox.demo import run_demo
    from bridge.stopping import exit_on_signal

    exit_on_signal()
    return run_demo()
