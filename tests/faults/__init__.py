"""Fault-injection tests: real redis-server, real ``bridge`` processes, emulated peers broken on purpose."""
