"""Simulated binary markets: ids, crowd order books and the seeded random walk of their mids (pure).

Each market has a YES and a NO token. The "crowd" book of a token is synthetic liquidity laid out
around the token's mid; our own resting orders are kept by :mod:`matching` and overlaid on top.
Prices are floats kept on the tick grid (rounded to 6 decimals), sizes are floats in shares.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.venue.ids import V2_MODULE_BINARY, v2_condition_id, v2_position_id

LEVELS = 8
MID_MIN, MID_MAX = 0.03, 0.97
_TOPICS = (
    ("Will it rain in Lisbon tomorrow?", "rain-lisbon"),
    ("Will BTC close above its open today?", "btc-up-today"),
    ("Will the home team win the derby?", "home-team-derby"),
    ("Will the bill pass the senate this week?", "bill-senate"),
    ("Will ETH trade above 5k this month?", "eth-above-5k"),
    ("Will the film top the box office?", "film-box-office"),
    ("Will the launch happen on schedule?", "launch-on-schedule"),
    ("Will inflation print below 3%?", "inflation-below-3"),
)


def px(value: float) -> float:
    """A price/size key: rounded to 6 decimals so float noise never splits a level."""
    return round(value + 0.0, 6)


def on_tick(price: float, tick: float) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


def snap(price: float, tick: float) -> float:
    return px(round(price / tick) * tick)


@dataclass
class TokenBook:
    token_id: str
    condition_id: str
    outcome: str
    outcome_index: int
    mid: float
    tick: float = 0.01
    min_size: float = 5.0
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    frozen: bool = False
    last_trade_price: float = 0.5
    last_trade_side: str = ""
    neg_risk: bool = False

    def best_bid(self) -> float | None:
        live = [p for p, s in self.bids.items() if s > 0]
        return max(live) if live else None

    def best_ask(self) -> float | None:
        live = [p for p, s in self.asks.items() if s > 0]
        return min(live) if live else None


@dataclass
class SimMarket:
    gamma_id: str
    condition_id: str
    question_id: str
    question: str
    slug: str
    event_slug: str
    end_date: datetime
    yes: TokenBook
    no: TokenBook
    fee_rate: float = 0.0
    fee_exponent: float = 1.0
    volume: float = 0.0
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    group_title: str = ""  # the outcome's name inside its neg-risk event
    event_id: str = ""  # Gamma id of the parent event ("" = a one-market event, id derived)
    offset: float = 0.0  # set-sum drift: NO's mid is 1 - YES's mid + offset (see negrisk.py)
    version: str = "v1"  # Gamma's market system: "v1" CTF (token ids), "v2" Protocol V2 (position ids)

    @property
    def tokens(self) -> tuple[TokenBook, TokenBook]:
        return (self.yes, self.no)

    def sibling(self, token_id: str) -> TokenBook:
        return self.no if token_id == self.yes.token_id else self.yes


def _hex(seed: int, label: str) -> str:
    return hashlib.sha256(f"{seed}:{label}".encode()).hexdigest()


def _token_id(seed: int, label: str) -> str:
    """A decimal uint256-looking string (77-78 digits), like real token ids."""
    return str(int(_hex(seed, label), 16) | (1 << 255))


DRIFT_REVERSION = 0.9  # each step keeps 90% of the set-sum offset: drift wanders, then comes back


def drift(offset: float, rng: random.Random, step: float, cap: float) -> float:
    """One step of a set-sum offset (unchanged, with no random draw, when ``step`` is 0)."""
    if step <= 0:
        return offset
    return min(max(offset * DRIFT_REVERSION + rng.gauss(0.0, step), -cap), cap)


def is_v2(i: int, v2_share: float) -> bool:
    """Market ``i`` is Protocol V2: ``v2_share`` of the markets, spread evenly; market 0 stays v1
    unless every market is v2 (tests and demos that take "the first market" keep a CTF market)."""
    return int((i + 1) * v2_share + 1e-9) > int(i * v2_share + 1e-9)


def market_ids(seed: int, i: int, v2: bool) -> tuple[str, str, str]:
    """(condition id, YES id, NO id): v1 a hashed condition id and token ids; v2 a binary-module
    condition id (``v2_condition_id(1, 16 seeded bytes)``, 32-byte form) and its position ids."""
    if not v2:
        return "0x" + _hex(seed, f"condition:{i}"), _token_id(seed, f"token:{i}:yes"), _token_id(seed, f"token:{i}:no")
    cid = v2_condition_id(V2_MODULE_BINARY, bytes.fromhex(_hex(seed, f"v2condition:{i}")[:32]))
    return cid, v2_position_id(cid, 0), v2_position_id(cid, 1)


def make_markets(seed: int, count: int, now: datetime | None = None, v2_share: float = 0.0) -> list[SimMarket]:
    """``count`` deterministic binary markets for ``seed``, each with seeded books around its mid;
    ``v2_share`` of them Protocol V2 (:func:`is_v2`: the first market is always v1)."""
    rng = random.Random(seed)
    base = now or datetime.now(UTC)
    markets: list[SimMarket] = []
    for i in range(count):
        question, slug = _TOPICS[i % len(_TOPICS)]
        if i >= len(_TOPICS):
            question, slug = f"{question} (#{i + 1})", f"{slug}-{i + 1}"
        version = "v2" if is_v2(i, v2_share) else "v1"
        cid, yes_id, no_id = market_ids(seed, i, version == "v2")
        mid = snap(rng.uniform(0.2, 0.8), 0.01)
        yes = TokenBook(yes_id, cid, "Yes", 0, mid)
        no = TokenBook(no_id, cid, "No", 1, px(1 - mid))
        market = SimMarket(
            gamma_id=str(500_000 + i), condition_id=cid, question_id="0x" + _hex(seed, f"question:{i}"),
            question=question, slug=slug, event_slug=f"{slug}-event",
            end_date=(base + timedelta(days=7 + i)).replace(microsecond=0), yes=yes, no=no,
            volume=round(rng.uniform(1_000, 50_000), 2), version=version,
        )
        fill_ladder(yes, rng)
        fill_ladder(no, rng)
        markets.append(market)
    return markets


def fill_ladder(book: TokenBook, rng: random.Random, levels: int = LEVELS) -> None:
    """Rebuild the crowd book around ``book.mid``: best bid one tick under, best ask one tick over.

    A level that already exists keeps its size (so a walk step only changes the edges); new levels
    (and levels consumed to zero) get a fresh seeded size.
    """
    tick = book.tick
    centre = min(max(snap(book.mid, tick), 2 * tick), px(1 - 2 * tick))
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for i in range(levels):
        bp = px(centre - (i + 1) * tick)
        ap = px(centre + (i + 1) * tick)
        if bp >= tick - 1e-9:
            old = book.bids.get(bp, 0.0)
            bids[bp] = old if old > 0 else float(rng.randint(20, 400))
        if ap <= 1 - tick + 1e-9:
            old = book.asks.get(ap, 0.0)
            asks[ap] = old if old > 0 else float(rng.randint(20, 400))
    book.bids, book.asks = bids, asks


def set_levels(book: TokenBook, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
    """Replace the crowd book with explicit levels (size 0 or less drops a level); mid follows."""
    book.bids = {px(p): float(s) for p, s in bids if s > 0}
    book.asks = {px(p): float(s) for p, s in asks if s > 0}
    bb, ba = book.best_bid(), book.best_ask()
    if bb is not None and ba is not None:
        book.mid = px((bb + ba) / 2)
    elif bb is not None or ba is not None:
        book.mid = float(bb if bb is not None else ba)  # type: ignore[arg-type]


def consume(levels: dict[float, float], price: float, size: float) -> None:
    """Take ``size`` off the crowd level at ``price`` (removing it when empty)."""
    left = levels.get(price, 0.0) - size
    if left <= 1e-9:
        levels.pop(price, None)
    else:
        levels[price] = px(left)


class MarketSim:
    """All markets, indexed by token and condition id, plus the seeded walk."""

    def __init__(self, seed: int, count: int, volatility: float, fee_rate: float = 0.0, fee_exponent: float = 1.0,
                 arb_drift: float = 0.0, arb_drift_max: float = 0.05, extra: list[SimMarket] | None = None,
                 v2_share: float = 0.0) -> None:
        self.seed = seed
        self.volatility = volatility
        self.arb_drift = arb_drift
        self.arb_drift_max = arb_drift_max
        self.rng = random.Random(seed * 7919 + 1)
        self.markets = make_markets(seed, count, v2_share=v2_share)
        for m in self.markets:
            m.fee_rate, m.fee_exponent = fee_rate, fee_exponent
        self.markets += extra or []  # neg-risk event markets: walked by their event (negrisk.py)
        self.by_token: dict[str, TokenBook] = {}
        self.market_of: dict[str, SimMarket] = {}
        self.by_condition: dict[str, SimMarket] = {}
        for m in self.markets:
            self.by_condition[m.condition_id] = m
            for t in m.tokens:
                self.by_token[t.token_id] = t
                self.market_of[t.token_id] = m

    def token(self, token_id: str) -> TokenBook | None:
        return self.by_token.get(token_id)

    def condition(self, condition_id: str) -> SimMarket | None:
        """A market by condition id, in any form the venue accepts: any case, and for v2 markets the
        31-byte form as well as the 32-byte ``...00`` one the sim emits (venue plan, decision 5)."""
        cid = condition_id.lower()
        if len(cid) == 64 and not cid.startswith("0x"):
            cid = "0x" + cid
        if len(cid) == 64:  # 0x + 31 bytes
            cid += "00"
        return self.by_condition.get(cid) or next(
            (m for m in self.markets if m.condition_id.lower() == cid), None)

    def set_mid(self, token_id: str, mid: float, move_sibling: bool = True) -> list[str]:
        """Move a token's mid (and its unfrozen sibling's to 1 - mid); returns the rebuilt tokens."""
        book = self.by_token[token_id]
        book.mid = px(min(max(mid, MID_MIN), MID_MAX))
        fill_ladder(book, self.rng)
        changed = [token_id]
        sib = self.market_of[token_id].sibling(token_id)
        if move_sibling and not sib.frozen:
            sib.mid = px(1 - book.mid)
            fill_ladder(sib, self.rng)
            changed.append(sib.token_id)
        return changed

    def step(self) -> list[str]:
        """One walk step for every market with an unfrozen token; returns the tokens whose book changed."""
        changed: list[str] = []
        for m in self.markets:
            if m.neg_risk or (m.yes.frozen and m.no.frozen):
                continue
            noise = self.rng.gauss(0.0, self.volatility)
            if m.yes.frozen or m.no.frozen:
                # the sibling of a frozen token jitters around 1 - frozen mid instead of drifting away
                anchor, moving = (m.yes, m.no) if m.yes.frozen else (m.no, m.yes)
                moving.mid = px(min(max(1 - anchor.mid + noise, MID_MIN), MID_MAX))
                fill_ladder(moving, self.rng)
                changed.append(moving.token_id)
                continue
            new = min(max(m.yes.mid + noise, MID_MIN), MID_MAX)
            m.offset = drift(m.offset, self.rng, self.arb_drift, self.arb_drift_max)
            for t, mid in ((m.yes, new), (m.no, min(max(1 - new + m.offset, MID_MIN), MID_MAX))):
                t.mid = px(mid)
                fill_ladder(t, self.rng)
                changed.append(t.token_id)
        return changed
