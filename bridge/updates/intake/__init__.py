"""What 1C sends the bridge (``POST /1c/stock``, ``/1c/prices``, ``/1c/order-status``), and how it is checked.

One pydantic model per body is the single definition: it validates requests (fast enough for tens of
thousands of items) and generates the JSON Schema files in ``schemas/`` that 1C developers and
``/openapi.json`` read.
"""
