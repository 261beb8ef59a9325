"""The orchestrator's named sets of token states, and the smallest position it counts.

Every state is listed in shared/keys.py (``TOKEN_STATES``); these are the groups the
orchestrator's rules ask about, named once so a rule and the index it reads cannot disagree.
"""

from __future__ import annotations

# A session runs or is being started: a SELL (or a stop) asks it to exit.
EXITABLE_STATES = ("starting", "running")
# A worker holds the token: the members of pf:worker:{id}:tokens and its load.
ACTIVE_STATES = (*EXITABLE_STATES, "exiting")
# Admitted and not finished: a BUY for the token is ignored.
LIVE_STATES = ("queued", *ACTIVE_STATES)

DUST = 0.01  # shares below this are not a position (two-decimal sizes)
