"""Talking to 1C:Enterprise's HTTP service.

``answers`` decides what an answer from 1C means (the status alone is not trusted: the body is read),
``client`` sends documents under a cross-process concurrency cap, and ``circuit`` remembers that 1C is down
so that every worker stops knocking until one probe finds it back.
"""
