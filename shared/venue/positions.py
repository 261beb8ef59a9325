"""Split, merge, redeem and convert positions through the official SDK, for both market systems.

The SDK picks the contracts by the market's Gamma ``version`` (docs/venue.md V1, V4, C2):

* v1 (CTF): ``splitPosition``/``mergePositions``/``redeemPositions`` on the collateral adapter, or
  the neg-risk collateral adapter for a neg-risk market; both take and pay pUSD.
* v2 (Protocol V2): ``split``/``merge``/``redeem`` on the Router; positions live in PositionManager.

and how to send them by the wallet: an EOA signs and broadcasts its own transaction over the
environment's JSON-RPC; a deposit, proxy or Safe wallet's call goes gasless through the relayer
(docs/venue.md W4). ``convert`` (neg-risk, v1) is not in SDK 0.14: its NegRiskAdapter calldata
(:mod:`shared.venue.ctf_calls`) goes through the SDK's ``execute_transaction``, so it is relayed
for smart wallets the same way.

What an answer means for the caller (:mod:`shared.venue.errors`):

* returned: done; the transaction hash ("" when nothing was left to redeem);
* :class:`VenueRejected`: refused before sending, or the transaction failed / reverted: nothing
  changed;
  :class:`VenueShortOfBalance`, one of them, when a merge was refused for shares the wallet does
  not hold (yet: bought moments ago, their trades not settled; docs/venue.md T2);
* :class:`VenueUnavailable`: throttled or the venue unreachable before anything was sent;
* :class:`VenueAmbiguous`: sent, and no outcome within ``timeout_s`` (or an answer that cannot be
  read): the position is unknown until a person looks;
* :class:`VenueSetupError`: the setup is wrong (no builder key for gasless calls, a market of a
  Gamma ``version`` polyfleet does not know: :class:`~shared.venue.errors.UnknownMarketVersion`,
  raised before anything is sent).

Money: the collateral adapters and the Router pay pUSD. The NegRiskAdapter pays USDC.e (C3), so
polyfleet never redeems through it (the SDK's neg-risk redeem goes through the neg-risk collateral
adapter), and ``convert`` is limited to one NO, which pays no collateral at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from shared.venue.ctf_calls import CtfCall, encode_call, to_units
from shared.venue.errors import VenueAmbiguous, VenueError, VenueRejected, VenueSetupError, VenueShortOfBalance
from shared.venue.ids import system_of
from shared.venue.sdk_errors import venue_error

if TYPE_CHECKING:
    from polymarket import AsyncSecureClient

POLL_RETRY_S = 0.5  # a failed poll of a sent transaction is retried this often until the deadline
NOTHING_TO_REDEEM = "no balance to redeem"  # the SDK's v2 redeem refuses an empty position with this text
# How a merge of shares the wallet does not hold is refused: the SDK's own balance check before
# sending (it reads both balances over JSON-RPC), a node's revert reason, the sim's contract text.
SHORT_OF_BALANCE = ("no complementary positions", "exceeds the maximum mergeable", "insufficient balance",
                    "not enough")


def short_of_balance(text: str) -> bool:
    """A refusal that says the wallet lacks the shares (:data:`SHORT_OF_BALANCE`)."""
    low = text.lower()
    return any(phrase in low for phrase in SHORT_OF_BALANCE)


class Handle(Protocol):
    async def wait(self) -> Any: ...


def before_send(what: str, exc: Exception) -> VenueError:
    """What an exception raised *before* the SDK handed back a transaction handle means.

    The SDK raises from its reads (Gamma, balances, the relayer's nonce), its signing and the
    submit itself; only the submit can have taken effect, so it is read as a sent call
    (:func:`~shared.venue.sdk_errors.venue_error`): a JSON-RPC error (status 200: the node
    refused, a call that would revert) or a 4xx is a rejection, no answer or a 5xx is ambiguous."""
    from polymarket.errors import UserInputError

    from shared.venue.account import RELAYER_FIX

    low = str(exc).lower()
    if isinstance(exc, UserInputError) and ("builder api key" in low or "relayer api key" in low):
        return VenueSetupError(f"{what}: the relayer needs an API key", RELAYER_FIX)
    err = venue_error(exc, sent=True, what=what)
    if type(err) is VenueRejected and not err.text.startswith(what):  # say which call the venue refused
        return VenueRejected(f"{what}: {err.text}", err.status)
    return err


def after_send(what: str, exc: BaseException, timeout_s: float) -> VenueError:
    """What an exception raised while waiting for a sent transaction means: failed or reverted
    is a rejection (nothing changed); anything else leaves the outcome unknown."""
    from polymarket.errors import TransactionFailedError

    if isinstance(exc, TransactionFailedError):
        return VenueRejected(f"{what} failed: {exc} (nothing changed)")
    if isinstance(exc, asyncio.TimeoutError):
        return VenueAmbiguous(f"{what}: outcome unknown, no outcome within {timeout_s:g} s")
    return VenueAmbiguous(f"{what}: outcome unknown ({type(exc).__name__}: {exc})")


def transient_wait_error(exc: BaseException) -> bool:
    """A failed poll (no answer, a 5xx, 429) says nothing about the transaction: poll again."""
    from polymarket.errors import RateLimitError, RequestRejectedError, TransportError

    return isinstance(exc, TransportError | RateLimitError) or (
        isinstance(exc, RequestRejectedError) and exc.status >= 500)


async def send_and_wait(what: str, start: Callable[[], Awaitable[Handle]], timeout_s: float) -> str:
    """Start one SDK transaction flow and wait up to ``timeout_s`` for its outcome: the hash, or
    the venue error that says what happened (see the module doc)."""
    try:
        handle = await start()
    except Exception as exc:  # the SDK's whole error tree, and anything under it
        raise before_send(what, exc) from exc
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            outcome = await asyncio.wait_for(handle.wait(), max(left, 0.0))
            return str(getattr(outcome, "transaction_hash", "") or "")
        except Exception as exc:
            if transient_wait_error(exc) and left > POLL_RETRY_S:
                await asyncio.sleep(POLL_RETRY_S)
                continue
            raise after_send(what, exc, timeout_s) from exc


class Positions:
    """The position calls of one wallet (the SDK client it was opened for)."""

    def __init__(self, client: AsyncSecureClient, neg_risk_adapter: str, timeout_s: float = 60.0) -> None:
        self.client = client
        self.neg_risk_adapter = neg_risk_adapter
        self.timeout_s = timeout_s

    @property
    def wallet(self) -> str:
        return str(self.client.wallet)

    async def split(self, condition_id: str, amount: float, version: str | None) -> str:
        """``amount`` pUSD into ``amount`` YES + ``amount`` NO of the market."""
        units = to_units(amount)
        return await self._send(f"split {amount:g} of {condition_id[:12]}", version, condition_id,
                                lambda: self.client.split_position(condition_id=condition_id, amount=units))

    async def merge(self, condition_id: str, amount: float, version: str | None) -> str:
        """``amount`` YES + ``amount`` NO back into ``amount`` pUSD. Refused because the wallet does
        not hold both (yet: shares bought moments ago are there once their trades settle):
        :class:`VenueShortOfBalance`."""
        units = to_units(amount)
        try:
            return await self._send(f"merge {amount:g} of {condition_id[:12]}", version, condition_id,
                                    lambda: self.client.merge_positions(condition_id=condition_id, amount=units))
        except VenueRejected as exc:
            if short_of_balance(exc.text):
                raise VenueShortOfBalance(exc.text, exc.status) from exc
            raise

    async def redeem(self, condition_id: str, version: str | None) -> str:
        """Every position the wallet holds in the resolved market, paid in pUSD; "" when none is
        left (a redeem whose outcome was unknown had in fact gone through, or the venue's
        auto-redeem operator was first)."""
        try:
            return await self._send(f"redeem {condition_id[:12]}", version, condition_id,
                                    lambda: self.client.redeem_positions(condition_id=condition_id))
        except VenueRejected as exc:
            if NOTHING_TO_REDEEM in exc.text:
                return ""
            raise

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        """NegRiskAdapter ``convertPositions``: ``amount`` NO of the given outcomes into ``amount``
        YES of every other outcome, plus (m − 1) × amount collateral for m NOs. That collateral
        would be USDC.e (C3), so only one NO (no collateral) is accepted. Neg-risk events are v1
        (CTF) markets; the NegRiskAdapter is a v1 contract."""
        from polymarket.calls import TransactionCall
        from polymarket.types import EvmAddress, HexString

        if len(set(outcome_indexes)) != 1:
            raise ValueError("convert takes exactly one outcome: more NOs pay USDC.e, which polyfleet does not book")
        data = encode_call(CtfCall("nr_convert", neg_risk_market_id, amount, outcome_indexes=tuple(outcome_indexes)))
        call = TransactionCall(to=EvmAddress(self.neg_risk_adapter), data=HexString("0x" + data.hex()))
        what = f"convert {amount:g} NO of outcome {outcome_indexes[0]} of {neg_risk_market_id[:12]}"
        return await self._send(what, "v1", neg_risk_market_id,
                                lambda: self.client.execute_transaction(calls=[call], metadata=what))

    async def _send(self, what: str, version: str | None, market: str,
                    start: Callable[[], Awaitable[Handle]]) -> str:
        # The SDK routes by the market's Gamma version and reads any version but "v2" as v1: a market
        # of a version polyfleet does not know is refused here, before anything is sent.
        system_of(version, market)
        return await send_and_wait(what, start, self.timeout_s)
