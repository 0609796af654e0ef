"""The operator console at ``/console``: server-rendered pages over what the bridge already keeps."""

from bridge.web.console.pages import routes

__all__ = ["routes"]
