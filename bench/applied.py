"""What remembering the applied value costs in Redis memory, per key, as the stock and price flushes write it.

Each round fills one generation's applied hash (``bridge.updates.pending``) through ``settle`` with
``--keys`` stock keys shaped as 1C names them (a product's 36-character xml id and a store key) and a value
with its 1C timestamp, then reads ``MEMORY USAGE`` of the hash and ``used_memory`` of the server before and
after. The figure is bytes per key; a million products with one store each cost that many megabytes per
generation, and at most two generations are kept (a key rewritten in both counts twice until the older
expires).

    python -m bench.applied [--rounds 3] [--keys 200000]
"""

from __future__ import annotations

import uuid
from typing import Any

from redis import Redis

from bench.common import base_parser, emit, median, table, workdir
from bridge import keys
from bridge.updates import pending
from tests.peers.redis_server import RedisServer

KIND = "stock"


def fill(redis: Redis, count: int) -> None:
    """``count`` keys settled as applied, through the same code the flush uses, a chunk at a time."""
    ts = 1_733_000_000_000_000
    for start in range(0, count, pending.CHUNK):
        staged = [
            (f'["xml","{uuid.UUID(int=n)}","key","Main"]', str(ts + n), f"[{n % 500}.0]")
            for n in range(start, min(count, start + pending.CHUNK))
        ]
        pending.stage(redis, KIND, staged, seq=int(redis.incr(keys.SEQUENCE)))
        entries, _bad = pending.load(redis, KIND, pending.scan(redis, KIND))
        pending.settle(redis, KIND, [(entry, True) for entry in entries])


def measure(redis: Redis, count: int) -> dict[str, Any]:
    redis.flushall()
    before = int(redis.info("memory")["used_memory"])
    fill(redis, count)
    after = int(redis.info("memory")["used_memory"])
    current = pending.applied_key(KIND)
    usage = int(redis.memory_usage(current, samples=0) or 0)
    return {
        "keys": count,
        "hash_bytes_per_key": usage / count,
        "server_bytes_per_key": (after - before) / count,
        "mb_per_million": usage / count,  # bytes per key = MB per million keys
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--keys", type=int, default=200_000)
    args = parser.parse_args(argv)
    rounds: list[dict[str, Any]] = []
    with workdir(args.keep) as work:
        server = RedisServer(work / "redis")
        try:
            redis = Redis.from_url(server.url)
            for number in range(args.rounds):
                rounds.append({"round": number + 1, **measure(redis, args.keys)})
                print(table(rounds[-1:], list(rounds[-1])), flush=True)
        finally:
            server.stop()
    figures = {
        "hash_bytes_per_key": median([r["hash_bytes_per_key"] for r in rounds]),
        "server_bytes_per_key": median([r["server_bytes_per_key"] for r in rounds]),
    }
    print(
        f"\nmedian over {len(rounds)} rounds: {figures['hash_bytes_per_key']:.0f} B per key in the hash"
        f" ({figures['server_bytes_per_key']:.0f} B of server memory): a million keys ≈"
        f" {figures['hash_bytes_per_key']:.0f} MB per generation, at most twice that"
    )
    emit("applied", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
