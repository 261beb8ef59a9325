"""The sim's scripted wallets (services/sim_exchange/wallets.py), pure: each style's trades, the
same again with the same seed."""

from __future__ import annotations

from typing import Any

from services.sim_exchange.state import SimState
from services.sim_exchange.wallets import ScriptedWallet
from shared.config import SimExchangeSection, SimWallet

ADDRESS = "0x" + "ab" * 20


def trades(style: str, n: int, seed: int = 7, min_hold_sec: float = 900.0, step: float = 10.0) -> list[dict[str, Any]]:
    state = SimState(SimExchangeSection(markets=3, volatility=0.0), 137)
    wallet = ScriptedWallet(state, SimWallet(account=ADDRESS, style=style, min_hold_sec=min_hold_sec), seed)
    out = []
    for _ in range(n):
        wallet.clock += step  # what run() adds after each drawn delay
        row = wallet.trade_once()
        assert row is not None  # the sim's crowd books always quote
        out.append({k: row[k] for k in ("side", "asset", "size", "price", "conditionId")})
    return out


def test_the_same_seed_trades_the_same_and_another_seed_does_not() -> None:
    for style in ("trader", "market_maker", "high_frequency"):
        assert trades(style, 12) == trades(style, 12)
        assert trades(style, 12) != trades(style, 12, seed=8)


def test_a_market_maker_trades_both_sides_of_one_market_then_moves_on() -> None:
    rows = trades("market_maker", 8)
    for visit in (rows[:4], rows[4:]):
        assert [r["side"] for r in visit] == ["BUY", "BUY", "SELL", "SELL"]
        assert len({r["conditionId"] for r in visit}) == 1
        yes, no = visit[0]["asset"], visit[1]["asset"]
        assert yes != no
        assert [r["asset"] for r in visit[2:]] == [yes, no]
        assert {r["size"] for r in visit} == {visit[0]["size"]}  # what it bought, it sells


def test_a_trader_and_a_high_frequency_wallet_trade_one_way_and_sell_only_after_holding() -> None:
    for style in ("trader", "high_frequency"):
        rows = trades(style, 40)
        assert {r["side"] for r in rows} == {"BUY"}  # 400 s of its clock: nothing held 900 s yet
        held: dict[str, str] = {}
        for r in rows:  # never the other outcome of a market it holds
            assert held.setdefault(r["conditionId"], r["asset"]) == r["asset"]
        sold = trades(style, 40, min_hold_sec=50)
        assert "SELL" in {r["side"] for r in sold}
    clips = trades("high_frequency", 40)
    assert max(r["size"] for r in clips) <= 10  # small clips ...
    assert sum(a["asset"] == b["asset"] for a, b in zip(clips, clips[1:], strict=False)) >= 20  # ... in runs
