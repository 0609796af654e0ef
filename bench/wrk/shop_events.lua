-- wrk script for the webhook-intake benchmark (bench/intake.py).
--
-- Every request carries a distinct order id, so each one has to create its own job: with a repeated id the
-- bridge's pending marker would collapse the events into one job and the benchmark would measure a cheaper
-- path than a busy shop produces. The body is the shop's own outgoing-webhook form (built in Python by the
-- shop emulator and passed in as the text before and after the id), so the bridge parses what it would
-- parse in production. The bare endpoint is sent exactly the same bytes.
--
-- Environment: BENCH_BODY_PREFIX, BENCH_BODY_SUFFIX, BENCH_PATH (default /shop/events),
-- BENCH_ID_BASE (first id; each wrk thread gets its own block of 100,000,000 ids).

local prefix = os.getenv("BENCH_BODY_PREFIX") or "event=ONSALEORDERSAVED&data%5BFIELDS%5D%5BID%5D="
local suffix = os.getenv("BENCH_BODY_SUFFIX") or ""
local path = os.getenv("BENCH_PATH") or "/shop/events"
local base = tonumber(os.getenv("BENCH_ID_BASE") or "1000000")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = {}
local counter = 0

function setup(thread)
  thread:set("block", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local id = base + (block or 0) * 100000000 + counter
  return wrk.format("POST", path, headers, prefix .. id .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_s": %.6f, "rps": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout))
end
