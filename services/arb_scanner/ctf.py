"""Merge, split, neg-risk convert and redeem: the conditional-token side of an arbitrage (E4).

Every call goes through the venue room's :class:`~shared.venue.positions.Positions` (the official
SDK): directly by JSON-RPC for an EOA, gasless through the relayer for a deposit, proxy or Safe
wallet -- in live mode against Polygon, in sim mode against the sim's relayer and RPC, the same
path either way. :class:`VenueCtf` turns the venue's answers into what the executor must do.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.config import ConfigError, Settings
from shared.venue.errors import (
    VenueAmbiguous,
    VenueError,
    VenueRejected,
    VenueSetupError,
    VenueShortOfBalance,
    VenueUnavailable,
)
from shared.venue.positions import Positions


class CtfError(RuntimeError):
    """A position call (split, merge, convert, redeem, approval) that did not finish as asked.

    Never raised itself; the subclass says what the caller must do::

        CtfError
        ├── CtfRejected  refused or reverted, nothing changed: record it and move on
        │   └── CtfShort ... for shares the wallet does not hold yet: a merge may retry once they settle
        └── CtfHalt      sent with no answer, the outcome is unknown: stop trading until a person looks

    Siblings, so ``except CtfRejected`` can never swallow a halt by accident.
    """


class CtfRejected(CtfError):
    """Refused or reverted: nothing changed. Record it and move on (hold what was bought, merge a
    split back, retry a redeem at the next check)."""


class CtfShort(CtfRejected):
    """A merge refused because the wallet does not hold both outcomes (yet): legs bought moments ago
    are there once their trades settle, so the executor retries it while they may still come."""


class CtfHalt(CtfError):
    """Sent with no answer (a transaction without a receipt, an order that may have filled): the
    position is unknown. Stop trading until a person looks."""

    report: dict[str, Any] | None = None  # the execution so far, when the executor knows it


class Ctf(Protocol):
    """``version``: the market's Gamma version (``ArbSet.market_version``); the venue routes by it."""

    async def split(self, condition_id: str, amount: float, version: str) -> str: ...
    async def merge(self, condition_id: str, amount: float, version: str) -> str: ...
    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str: ...
    async def redeem(self, condition_id: str, version: str) -> str:
        """Redeem every position the wallet holds in a resolved market (paid in pUSD)."""
        ...


class VenueCtf:
    """The arbitrage's position calls on the trading wallet.

    ``VenueRejected``/``VenueUnavailable`` (refused, reverted, throttled: nothing changed) become
    :class:`CtfRejected`; ``VenueAmbiguous`` (sent, no outcome in time) and a setup error found
    mid-way (nothing sent, but nothing will work until a person fixes it) become :class:`CtfHalt`."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions

    async def split(self, condition_id: str, amount: float, version: str) -> str:
        return await self._call(self.positions.split(condition_id, amount, version))

    async def merge(self, condition_id: str, amount: float, version: str) -> str:
        return await self._call(self.positions.merge(condition_id, amount, version))

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        return await self._call(self.positions.convert(neg_risk_market_id, outcome_indexes, amount))

    async def redeem(self, condition_id: str, version: str) -> str:
        return await self._call(self.positions.redeem(condition_id, version))

    @staticmethod
    async def _call(op: Any) -> str:
        try:
            return str(await op)
        except VenueShortOfBalance as exc:
            raise CtfShort(str(exc)) from exc
        except (VenueRejected, VenueUnavailable) as exc:
            raise CtfRejected(str(exc)) from exc
        except VenueSetupError as exc:
            raise CtfHalt(f"{exc.problem}; nothing sent; fix: {exc.fix}") from exc
        except (VenueAmbiguous, VenueError) as exc:
            raise CtfHalt(str(exc)) from exc


def check_execution_mode(settings: Settings) -> None:
    """Paper mode never sends an order or a transaction, and arbitrage execution has no paper fill
    model: refuse it there (before any client is built) rather than trade for real in paper mode."""
    if settings.mode == "paper" and settings.arbitrage.execute:
        raise ConfigError("arbitrage.execute is true in paper mode, which never sends orders or transactions and "
                          "has no paper model of arbitrage legs: run it in sim mode, or set arbitrage.execute: false")
