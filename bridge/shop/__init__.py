"""The shop side: REST client, error classification and the rate limit shared by all processes."""

from bridge.shop.batch import BatchResult
from bridge.shop.client import CallRecord, ShopClient
from bridge.shop.errors import ShopError, ShopPermanentError, ShopTransientError, classify
from bridge.shop.ratelimit import LeakyBucket, MethodPauses

__all__ = [
    "BatchResult",
    "CallRecord",
    "LeakyBucket",
    "MethodPauses",
    "ShopClient",
    "ShopError",
    "ShopPermanentError",
    "ShopTransientError",
    "classify",
]
