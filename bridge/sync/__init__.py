"""The work the bridge does: RQ jobs (plain functions, importable by path) and the pure mappings they use.

``document`` turns a shop order into the 1C document and has no I/O, so the money rules can be tested
without Redis or HTTP; the job modules next to it fetch, compare, send and retry.
"""
