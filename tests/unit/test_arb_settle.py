"""Fills that settle late, pure and with fakes: which trades are final, what FAILED voids, a merge
short of shares retried until the legs settle (or given up, the sets held), a refusal for lack of
shares told apart from other refusals (tests/integration/test_arb_settlement.py runs them against
the sim)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.ctf import CtfRejected, CtfShort, VenueCtf
from services.arb_scanner.detect import Evaluation, Kind, Verdict
from services.arb_scanner.execute import Executor
from services.arb_scanner.settle import SettleRules, Settling, unsettled, voided
from shared.venue.errors import VenueRejected, VenueShortOfBalance
from shared.venue.fees import FeeSchedule
from shared.venue.positions import short_of_balance
from shared.venue.taker import TakeResult
from shared.venue.views import TradeView

FEE = FeeSchedule(0.0, 1.0)
SET = ArbSet("c", (Kind.BUY_BOTH,), "t", ("yes", "no"), (FEE, FEE), 5.0, 0.01, None, False, ("c", "c"), "")
EV = Evaluation(Kind.BUY_BOTH, Verdict.OPPORTUNITY, SET.tokens, (0.45, 0.50), 0.95, 0.0, 0.05, size=48.0,
                limits=(0.45, 0.50))


def trade(trade_id: str, status: str, size: float = 48.0, price: float = 0.5) -> TradeView:
    return TradeView(trade_id, "a", "BUY", price, size, status, "TAKER", ("o",), None)


def test_final_unsettled_and_voided() -> None:
    views = {"t1": trade("t1", "CONFIRMED"), "t2": trade("t2", "FAILED", 10, 0.4), "t3": trade("t3", "MINED"),
             "t4": None}
    assert unsettled(["t1", "t2", "t3", "t4", "t5"], views) == ["t3", "t4", "t5"]  # unread counts as unsettled
    gone = voided(["t1", "t2", "t3"], views)
    assert (gone.shares, gone.cash, gone.trades) == (10, 4.0, ("t2",))


class Orders:
    """Both legs fill 48 at once; the venue's trades move as ``script`` says, one reading at a time."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.reads = 0

    async def take(self, token: str, side: str, price: float, *args: Any) -> TakeResult:
        return TakeResult(True, 48.0, price, "o-" + token, trade_ids=(f"T-{token}",))

    async def trades(self, trade_ids: Iterable[str]) -> dict[str, TradeView | None]:
        self.reads += 1
        out: dict[str, TradeView | None] = {}
        for t in trade_ids:
            steps = self.script[t]
            out[t] = trade(t, steps[min(self.reads, len(steps)) - 1])
        return out


class Ctf:
    """Merges refused for lack of shares until ``short`` tries have been made."""

    def __init__(self, short: int, other: bool = False) -> None:
        self.short = short
        self.other = other
        self.merges: list[float] = []

    async def merge(self, condition_id: str, amount: float, version: str) -> str:
        self.merges.append(amount)
        if self.other:
            raise CtfRejected("merge reverted")
        if len(self.merges) <= self.short:
            raise CtfShort("You have no complementary positions to merge")
        return "0x1"


async def _run(orders: Orders, ctf: Ctf, rules: SettleRules) -> Any:
    async def no_sleep(_s: float) -> None:  # the backoff's pauses, without waiting them out
        return None

    settling = Settling(orders, rules, sleep=no_sleep)
    return await Executor(orders, ctf, "FOK", 0.05, settling).run(SET, EV)  # type: ignore[arg-type]


async def test_a_merge_short_of_shares_is_retried_and_goes_through() -> None:
    orders = Orders({"T-yes": ["MATCHED", "CONFIRMED"], "T-no": ["MATCHED", "MINED", "CONFIRMED"]})
    ctf = Ctf(short=2)
    rep = await _run(orders, ctf, SettleRules(wait_s=0.0, poll_s=0.01, merge_retry_s=3600))
    assert (rep.status, rep.merged, rep.merge_tries, rep.held_sets) == ("done", 48.0, 3, 0.0)
    assert ctf.merges == [48.0, 48.0, 48.0]
    assert rep.pnl == pytest.approx(48 * 0.05)


async def test_a_merge_still_short_when_the_retry_window_closes_holds_the_sets() -> None:
    orders = Orders({"T-yes": ["MATCHED"], "T-no": ["MATCHED"]})
    rep = await _run(orders, Ctf(short=10**6), SettleRules(wait_s=0.0, poll_s=0.01, merge_retry_s=0.0))
    assert (rep.merged, rep.merge_tries, rep.held_sets) == (0.0, 1, 48.0)
    assert rep.held_sets_cost == pytest.approx(48 * 0.95)
    assert any("short of shares after 1 tries" in e for e in rep.errors)


async def test_another_refusal_is_not_retried() -> None:
    ctf = Ctf(short=0, other=True)
    rep = await _run(Orders({"T-yes": ["CONFIRMED"], "T-no": ["CONFIRMED"]}), ctf, SettleRules(merge_retry_s=3600))
    assert (ctf.merges, rep.held_sets) == ([48.0], 48.0)


async def test_a_leg_failing_while_the_merge_waits_shrinks_the_sets_and_unwinds_the_rest() -> None:
    # the merge is short at first; meanwhile the NO leg's trade FAILS: no set left, YES is sold back
    orders = Orders({"T-yes": ["MATCHED", "CONFIRMED"], "T-no": ["MATCHED", "FAILED"],
                     "T-yes-unwind": ["CONFIRMED"]})

    async def take(token: str, side: str, price: float, *args: Any) -> TakeResult:
        if side == "SELL":
            return TakeResult(True, 48.0, price, "o-u", trade_ids=("T-yes-unwind",))
        return TakeResult(True, 48.0, price, "o-" + token, trade_ids=(f"T-{token}",))

    orders.take = take  # type: ignore[method-assign]
    ctf = Ctf(short=1)
    rep = await _run(orders, ctf, SettleRules(wait_s=0.0, poll_s=0.01, merge_retry_s=3600))
    assert ctf.merges == [48.0]  # one try, then the sets were gone
    assert (rep.merged, rep.held_sets, rep.status) == (0.0, 0.0, "partial")
    assert [(x.token_id, x.filled, x.voided) for x in rep.legs] == [("yes", 48.0, 0.0), ("no", 0.0, 48.0)]
    assert [(u.token_id, u.filled) for u in rep.unwinds] == [("yes", 48.0)]
    assert rep.cash_out == pytest.approx(48 * 0.45)  # the failed buy's $ never left


def test_a_refusal_for_lack_of_shares_is_told_apart() -> None:
    assert short_of_balance("merge 48 of 0xab: You have no complementary positions to merge for condition 0x1")
    assert short_of_balance("Requested merge amount 48000000 exceeds the maximum mergeable amount 0")
    assert not short_of_balance("merge 48 of 0xab failed: reverted (nothing changed)")


async def test_venue_ctf_maps_a_short_merge_to_ctf_short() -> None:
    class Positions:
        async def merge(self, *_: Any) -> str:
            raise VenueShortOfBalance("no complementary positions")

        async def split(self, *_: Any) -> str:
            raise VenueRejected("not enough collateral")

    ctf = VenueCtf(Positions())  # type: ignore[arg-type]
    with pytest.raises(CtfShort):
        await ctf.merge("c", 1.0, "v1")
    with pytest.raises(CtfRejected) as info:
        await ctf.split("c", 1.0, "v1")
    assert not isinstance(info.value, CtfShort)
