"""The sandbox: an emulated shop (1C-Bitrix REST) and an emulated 1C HTTP service, shipped in the package.

They are what ``bridge demo`` plays against and what the test suite talks to over real HTTP, one copy for
both. Nothing in the product imports this package (a source scan in the tests holds that line): the bridge
must never depend on a stand-in of its own peers.
"""
