"""The market screen (A7; pure): which Gamma markets' tokens are BUY candidates, and why not.

A market passes when it is open for trading, its volume and liquidity reach the minimums, it ends
inside the window ``[now + end_after_hours, now + end_within_hours]`` (either bound 0 = open) and
no blacklisted keyword appears in its question, slug or event slug; each of its tokens whose
outcome price lies in ``[min_price, max_price]`` is a candidate. The reasons for rejection are
counted so the health summary can say why a screen found nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import ScreenSection
from shared.venue.gamma import GammaMarket


@dataclass(frozen=True, slots=True)
class Candidate:
    market: GammaMarket
    token_id: str
    outcome: str
    price: float


def market_verdict(m: GammaMarket, cfg: ScreenSection, now: datetime) -> str | None:
    """None when the market passes, else the reason it does not."""
    if not m.active or m.closed or not m.accepting_orders:
        return "not_open"
    if m.volume < cfg.min_volume:
        return "volume"
    if m.liquidity < cfg.min_liquidity:
        return "liquidity"
    if m.end_date is not None and m.end_date <= now:
        return "ended"
    if cfg.end_within_hours > 0 and (m.end_date is None or m.end_date > now + timedelta(hours=cfg.end_within_hours)):
        return "ends_too_late"
    if cfg.end_after_hours > 0 and (m.end_date is None or m.end_date < now + timedelta(hours=cfg.end_after_hours)):
        return "ends_too_soon"
    text = f"{m.question} {m.slug} {m.event_slug}".lower()
    if any(word.lower() in text for word in cfg.keyword_blacklist if word.strip()):
        return "keyword"
    return None


def screen(markets: Iterable[GammaMarket], cfg: ScreenSection, now: datetime) -> tuple[list[Candidate], Counter[str]]:
    out: list[Candidate] = []
    rejected: Counter[str] = Counter()
    for m in markets:
        reason = market_verdict(m, cfg, now)
        if reason is not None:
            rejected[reason] += 1
            continue
        for token, outcome, price in zip(m.token_ids, m.outcomes, m.prices, strict=True):
            if price is None or not cfg.min_price <= price <= cfg.max_price:
                rejected["price"] += 1
                continue
            out.append(Candidate(m, token, outcome, price))
    return out, rejected
