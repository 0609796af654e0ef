"""Emulators of the bridge's two peers (the shop's REST API and the 1C HTTP service), served over real HTTP.

The bridge's tests talk to these over loopback sockets rather than mocked transports, so that timeouts,
status codes, content types and body encodings are exercised exactly as in production.
"""
