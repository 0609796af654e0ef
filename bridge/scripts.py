"""Lua shared by several Redis scripts, and the argument packing it reads.

Like rq's ``scripts.py``: a fragment used by more than one script lives here once, so no module imports another
module's queue or log internals to build its own script.
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


def pack_blob(values: Iterable[bytes]) -> bytes:
    """A list of byte strings as one script argument ("<length>:<bytes>" each), read back by ``LUA_SPLIT``.

    A few packed arguments instead of dozens keep redis-py's command packing cheap; the form is binary-safe.
    """
    return b"".join([b"%d:%s" % (len(value), value) for value in values])
