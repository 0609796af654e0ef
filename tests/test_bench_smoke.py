"""Every benchmark script under ``bench/`` still runs and reports its figures (tiny sizes, a few seconds each).

These are not performance tests: the figures of a smoke run mean nothing, and no target is checked. They
keep the scripts from rotting as the bridge changes under them; BENCHMARKS.md has the real runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.slow

RESULT_PREFIX = "BENCH-RESULT "


def run_bench(module: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """Run ``python -m bench.<module> args`` and return its BENCH-RESULT figures."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert lines, result.stdout[-3000:]
    figures = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    assert figures["bench"] == module
    assert figures["rounds"], "the script reported no round"
    return dict(figures)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_intake_reports_its_ratio_and_p99() -> None:
    figures = run_bench(
        "intake", "--rounds", "1", "--duration", "1", "--warmup", "1", "--connections", "4", "--client", "python"
    )
    assert is_number(figures["ratio"]) and figures["ratio"] > 0
    assert is_number(figures["bridge_p99_ms"])
    assert is_number(figures["web_peak_rss_mb"]) and figures["web_peak_rss_mb"] > 0


def test_orders_reports_latency_drain_and_memory() -> None:
    figures = run_bench(
        "orders",
        "--rounds", "1", "--latency-events", "5", "--latency-gap", "0.05",
        "--drain-orders", "12", "--drain-onec-latency", "0.02", "--workers", "2",
    )  # fmt: skip
    assert is_number(figures["p50_ms"]) and is_number(figures["p95_ms"])
    assert is_number(figures["drain_ratio"]) and figures["drain_ratio"] > 0
    assert is_number(figures["worker_peak_rss_mb"]) and figures["worker_peak_rss_mb"] > 0
    assert is_number(figures["limit_drain_ratio"]) and figures["limit_drain_ratio"] > 0
    # 0 is a real figure here: an order whose snapshot was fetched before the unlock needs no shop request after it
    assert is_number(figures["limit_requests_per_order"]) and figures["limit_requests_per_order"] >= 0


def test_stock_reports_the_push_and_request_ratios() -> None:
    figures = run_bench("stock", "--rounds", "1", "--items", "600", "--pushes", "1")
    assert is_number(figures["push_ratio"]) and figures["push_ratio"] > 0
    assert is_number(figures["request_ratio"]) and figures["request_ratio"] >= 1  # the bound is a lower bound


def test_ratelimit_reports_the_share_of_the_rate_used() -> None:
    # 1,500 keys are 30 batches: with a burst of 5 at 20/s the drain lasts at least 1.25 s however fast the
    # machine, so the measured window after the skipped 0.5 s is never empty.
    figures = run_bench("ratelimit", "--rounds", "1", "--keys", "1500", "--rate", "20", "--burst", "5", "--skip", "0.5")
    assert is_number(figures["use"]) and figures["use"] > 0
    assert 0 <= figures["refused_share"] <= 1


def test_exchange_sale_reports_the_query_and_the_documents_back() -> None:
    figures = run_bench("exchange_sale", "--rounds", "1", "--orders", "60", "--rate", "50", "--burst", "50")
    assert figures["offered"] == 60 and figures["statuses_applied"] == 60
    assert is_number(figures["query_vs_fetch"]) and is_number(figures["rss_growth_mb"])
    assert is_number(figures["documents_vs_rate"])


def test_exchange_reports_the_import_ratio_and_the_requests() -> None:
    figures = run_bench("exchange", "--offers", "200", "--changed", "0.05")
    assert is_number(figures["import_ratio"]) and figures["import_ratio"] > 0
    assert figures["again_writes"] == 0  # the same export again writes nothing
    assert figures["first_missing"] == 0  # the first export arrived whole
    assert is_number(figures["request_ratio"]) and figures["changed_requests"] >= 1
    assert is_number(figures["worker_peak_rss_mb"]) and figures["worker_peak_rss_mb"] > 0


def test_exchange_import_reports_the_job_against_the_bare_parse() -> None:
    figures = run_bench("exchange_import", "--offers", "200", "--rounds", "1")
    for name in ("bare_s", "read_ratio", "first_ratio", "again_ratio", "first_cpu_ratio"):
        assert is_number(figures[name]) and figures[name] > 0, name


def test_applied_reports_bytes_per_key() -> None:
    figures = run_bench("applied", "--rounds", "1", "--keys", "2000")
    assert is_number(figures["hash_bytes_per_key"]) and figures["hash_bytes_per_key"] > 0
