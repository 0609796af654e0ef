"""The HTTP side of the bridge: Starlette routes that only check, persist and answer."""
