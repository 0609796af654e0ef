"""Emulators of the bridge's two peers (the shop's REST API and the 1C HTTP service), served over real HTTP.

The bridge's tests talk to these over loopback sockets rather than mocked transports, so that timeouts,
status codes, content types and body encodings are exercised exactly as in production.
"""

# The shop and 1C emulators live in the package (``bridge.sandbox``) so that ``bridge demo`` runs the very
# emulators the tests use. Their old import paths stay valid as aliases of the same module objects (never
# second copies, so classes and their instances compare as one), and no file sits at the old paths, so a
# change made there on another line of work follows the files to their new place when it is merged.
import importlib as _importlib
import pkgutil as _pkgutil
import sys as _sys

import bridge.sandbox.onec as _onec
import bridge.sandbox.onec_exchange as _onec_exchange
import bridge.sandbox.shop as _shop

_sys.modules[f"{__name__}.onec"] = _onec
_sys.modules[f"{__name__}.shop"] = _shop
_sys.modules[f"{__name__}.onec_exchange"] = _onec_exchange
for _area in _pkgutil.iter_modules(_shop.__path__):
    _sys.modules[f"{__name__}.shop.{_area.name}"] = _importlib.import_module(f"{_shop.__name__}.{_area.name}")
onec = _onec
onec_exchange = _onec_exchange
shop = _shop
