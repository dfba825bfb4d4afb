"""OpenAI's `reasoning_effort` and the canonical thinking level, both ways.

Outbound (an upstream speaks OpenAI) and inbound (a caller speaks OpenAI) read the same table,
so a level that leaves as an effort comes back as the same level.
"""

from __future__ import annotations

from cometgate.canonical.thinking_levels import REASONING_EFFORT_OF_LEVEL

# thinkingLevel → reasoning_effort, from the one table of levels. XHIGH is sent as "high": not
# every OpenAI-compatible server knows "xhigh", while "high" is understood everywhere.
EFFORT_BY_LEVEL = REASONING_EFFORT_OF_LEVEL

# reasoning_effort → thinkingLevel. OpenAI's newest models add "xhigh" and "max" above
# "high"; both are the highest canonical level. "none" (reasoning off) is no level at all:
# it is a thinking budget of 0, which the inbound decoder handles itself.
LEVEL_BY_EFFORT = {
    **{effort: level for level, effort in EFFORT_BY_LEVEL.items() if level != "XHIGH"},
    "xhigh": "XHIGH",
    "max": "XHIGH",
}
