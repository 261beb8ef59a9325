"""Auto-demotion (docs/copytrading.md "Auto-demotion"), pure: whether a leader's scorecard breaks a
``copytrade.demotion`` rule, and the ``pf:leaders:paused`` entries (address -> JSON {reason, ts,
by}) that the orchestrator writes and intake, the CLI and the API read.
"""

from __future__ import annotations

import json
from typing import Any

from shared.config import DemotionSection
from shared.scorecard import LeaderCard

AUTO = "auto-demotion"  # the ``by`` of a pause the rules made


def demotion_reason(card: LeaderCard, rules: DemotionSection) -> str | None:
    """The first rule the card breaks, as the pause's reason; None when it breaks none. A rule
    needs its history: fewer copies than it counts over never demote (a new leader is not bad)."""
    if rules.pnl_floor_usd is not None and len(card.copy_pnl) >= rules.pnl_last_copies:
        pnl = sum(card.copy_pnl[-rules.pnl_last_copies:])
        if pnl < rules.pnl_floor_usd:
            return (f"copied PnL {pnl:+.2f} USD over the last {rules.pnl_last_copies} copies is below "
                    f"pnl_floor_usd {rules.pnl_floor_usd:+.2f}")
    slip = card.slippage_bps
    if rules.max_median_slippage_bps is not None and slip.n >= rules.slippage_min_copies and slip.p50 is not None \
            and slip.p50 > rules.max_median_slippage_bps:
        return (f"median entry slippage {slip.p50:g} bps over {slip.n} copies is above "
                f"max_median_slippage_bps {rules.max_median_slippage_bps:g}")
    for flag in rules.flags:
        if flag == "market_maker" and card.flags.market_maker:
            return f"flagged market maker ({card.flags.two_sided_trades} two-sided trades)"
        if flag == "high_frequency" and card.flags.high_frequency:
            return f"flagged high frequency ({card.flags.busiest_hour} trades in one hour)"
    return None


def pause_entry(reason: str, ts: int, by: str) -> str:
    return json.dumps({"reason": reason, "ts": ts, "by": by}, sort_keys=True)


def paused_leaders(raw: dict[str, str] | None) -> dict[str, dict[str, Any]]:
    """``pf:leaders:paused`` as address (lower case) -> {reason, ts, by}; an entry that is not JSON
    (written by hand) still pauses, its text the reason."""
    out: dict[str, dict[str, Any]] = {}
    for account, value in (raw or {}).items():
        try:
            spec = json.loads(value)
            entry = {"reason": str(spec.get("reason") or "paused"), "ts": int(spec.get("ts") or 0),
                     "by": str(spec.get("by") or "")}
        except (ValueError, AttributeError, TypeError):
            entry = {"reason": value or "paused", "ts": 0, "by": ""}
        out[account.lower()] = entry
    return out
