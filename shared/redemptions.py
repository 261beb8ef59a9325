"""Where each redemption stands (``pf:redeem:status``), for the redeemer across restarts and for the
operator (``polyfleet redemptions``, ``GET /api/redemptions``, the dashboard).

The redeemer writes one entry per resolved market (condition id) the fleet holds, at every change:

* ``waiting``: flagged, but a session or pending trades hold it back (``reason`` says which);
* ``due``: nothing holds it back: redeemed at the next check;
* ``sent``: a redeem is on its way. Still ``sent`` after ``next_at``, the process that sent it died
  before the outcome: the next try handles it as ``unknown``;
* ``unknown``: sent, and no outcome within ``redeemer.receipt_timeout_sec`` (dropped, or landed and
  not reported): before sending again the redeemer reads the wallet's on-chain balance, and none
  left of what it held means the redeem landed: reported, not sent twice;
* ``failed``: refused, reverted, or never sent (the venue unreachable): nothing changed;
* ``setup_error``: the setup is wrong (``reason`` names the fix); retried like a failure;
* ``redeemed``: done and reported on ``pf:redemptions``; the orchestrator deletes the entry once it
  has booked every token of the market.

``next_at`` (ms, wall clock) is the retry schedule itself, so a restart keeps the backoff; an
operator's ``pf:redeem:retry`` entry newer than ``tried_at`` makes a retryable one due at once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared.keys import Keys

STATES = ("waiting", "due", "sent", "unknown", "failed", "setup_error", "redeemed")
RETRYABLE = frozenset({"sent", "unknown", "failed", "setup_error"})
# what an operator looks at first: the ones in trouble, then the ones in flight
SHOWN_ORDER = {s: i for i, s in enumerate(("unknown", "setup_error", "failed", "sent", "due", "waiting", "redeemed"))}


@dataclass
class TokenShares:
    token_id: str
    won: bool
    shares: float | None = None  # the wallet's on-chain balance read before the last send (None: not read)


@dataclass
class RedeemStatus:
    condition_id: str
    state: str
    market_version: str = "v1"
    tokens: list[TokenShares] = field(default_factory=list)
    attempts: int = 0  # tries in a row that did not finish
    reason: str = ""
    next_at: int = 0  # ms: the earliest next try of a retryable state
    tried_at: int = 0  # ms of the last try (sent or not; 0: never tried)
    wallet: str = ""
    tx_hash: str = ""
    updated_at: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, condition_id: str, raw: str) -> RedeemStatus | None:
        """The entry, or None when it cannot be read (the redeemer starts it afresh)."""
        try:
            d = json.loads(raw)
            tokens = [TokenShares(str(t["token_id"]), bool(t["won"]),
                                  None if t.get("shares") is None else float(t["shares"])) for t in d["tokens"]]
            st = cls(condition_id, str(d["state"]), str(d.get("market_version") or "v1"), tokens,
                     int(d.get("attempts") or 0), str(d.get("reason") or ""), int(d.get("next_at") or 0),
                     int(d.get("tried_at") or 0), str(d.get("wallet") or ""), str(d.get("tx_hash") or ""),
                     int(d.get("updated_at") or 0))
        except (ValueError, KeyError, TypeError):
            return None
        return st if st.state in STATES else None

    def view(self, retry_asked_at: int = 0) -> dict[str, Any]:
        """What the CLI and the API show: the entry, and when an operator last asked to retry it."""
        return {**asdict(self), "retry_asked_at": retry_asked_at}


async def read_redemptions(r: aioredis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every redemption not booked yet, the ones in trouble first (entries that cannot be read are
    shown as such, not left out)."""
    async with r.pipeline(transaction=False) as p:
        p.hgetall(keys.redeem_status())
        p.hgetall(keys.redeem_retry())
        raw, asked = await p.execute()
    rows = []
    for cid, text in raw.items():
        st = RedeemStatus.parse(cid, text)
        rows.append(st.view(int(asked.get(cid) or 0)) if st else
                    {"condition_id": cid, "state": "unreadable", "reason": str(text)[:200], "tokens": []})
    return sorted(rows, key=lambda v: (SHOWN_ORDER.get(v["state"], -1), v["condition_id"]))
