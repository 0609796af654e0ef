"""Lua shared by several Redis scripts, and the argument packing it reads.

Like rq's ``scripts.py``: a fragment used by more than one script lives here once, so no module imports another
module's queue or log internals to build its own script. ``LUA_SPLIT`` reads packed arguments (the enqueue
script, the sync log's ``append_many``, the intake's event accounting); ``LUA_APPEND_ENTRY`` writes one sync-log
entry (``append_many``, and the event accounting inside the enqueue script).
"""

from __future__ import annotations

from collections.abc import Iterable

# Lua: the inverse of ``pack_blob``, shared by every script that takes packed arguments.
LUA_SPLIT = """
local function split(s)
  local out, pos = {}, 1
  while pos <= #s do
    local colon = string.find(s, ':', pos, true)
    local len = tonumber(string.sub(s, pos, colon - 1))
    out[#out + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end
"""

# Lua: ``append_entry(log, l, stream, fields)`` runs the commands ``bridge.ops.synclog.append`` queues for one
# entry. ``log`` from index ``l``: the global log's key, its cap, the entity streams' cap and TTL
# (``synclog.script_log``); ``stream``: the entity's stream key, '' for none; ``fields``: field, value, ...
LUA_APPEND_ENTRY = """
local function append_entry(log, l, stream, fields)
  redis.call('XADD', log[l], 'MAXLEN', '~', log[l + 1], '*', unpack(fields))
  if stream ~= '' then
    redis.call('XADD', stream, 'MAXLEN', log[l + 2], '*', unpack(fields))
    redis.call('EXPIRE', stream, log[l + 3])
  end
end
"""


def pack_blob(values: Iterable[bytes]) -> bytes:
    """A list of byte strings as one script argument ("<length>:<bytes>" each), read back by ``LUA_SPLIT``.

    A few packed arguments instead of dozens keep redis-py's command packing cheap; the form is binary-safe.
    """
    return b"".join([b"%d:%s" % (len(value), value) for value in values])
