"""One TLS context for every HTTP client of a process.

httpx builds a fresh ``ssl.SSLContext`` for each ``httpx.Client``, loading the whole CA bundle: about 50 ms on
the benchmark machine. A forking worker creates its shop and 1C clients in every work-horse, so that was two
contexts, a good part of the order latency, per job (profile in BENCHMARKS.md). The context holds only
configuration and trusted certificates, never a connection, so one instance is shared by all clients, and
``bridge.worker.preload`` builds it in the worker before it forks, so every horse inherits it ready.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """The context httpx would build by default (certifi's CA bundle, hostname checks), built once."""
    return httpx.create_ssl_context()
