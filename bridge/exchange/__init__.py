"""1C's standard "exchange with website" (CommerceML 2 over HTTP), answered by the bridge.

A stock UT 11, KA, ERP or BP exchange node uploads its catalogue (``import*.xml``: groups, properties, goods)
and its offers (``offers*.xml``, ``prices*.xml``, ``rests*.xml``: prices and stock) and collects the shop's
orders, with no code of a 1C developer. The bridge turns each upload into the few shop writes that changed,
through the same coalesced, rate-limited update pipeline as the JSON pushes to ``/1c/*``.

One idea a module: ``model`` the parsed records every other module speaks; ``parse`` the streaming reader of
the XML; the protocol's sessions, uploads and the import job live beside them.
"""
