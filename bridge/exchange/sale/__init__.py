"""The order side of 1C's standard exchange (``type=sale``): the shop's orders offered to 1C, 1C's documents back.

1C's exchange node asks for orders (``mode=query``), confirms what it loaded (``mode=success``), uploads its own
order, payment and shipment documents (``mode=file`` + ``mode=import``) and reads the shop's reference lists
(``mode=info``). One idea a module:

- ``offers``: which orders are waiting for 1C's query (order id → the change stamp the bridge last saw), and
  which of them a session's last query offered, so that ``success`` confirms exactly those;
- ``documents``: a shop order (``sale.order.get``) written as CommerceML 2, as 1C-Bitrix's own export
  shapes it for the schema version 1C asked for;
- ``query``: one ``query`` reply, fetched from the shop in batches and streamed page by page;
- ``incoming``: 1C's documents read back into plain changes; ``changes``: those changes staged as shop
  updates through the coalesced, rate-limited update pipeline;
- ``info``: the statuses, payment systems and delivery services 1C's exchange settings screen asks for.
"""
