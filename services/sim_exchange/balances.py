"""``GET /balance-allowance``: a wallet's collateral or one outcome's shares, and its allowances.

The request carries no wallet: it is the API key's EOA and ``signature_type`` (0 the EOA, 1 its
proxy, 2 its Safe, 3 its deposit wallet; sdk-wire §6.5), derived as the venue derives them (the
address whether deployed or not: funds can sit at a wallet's address before it exists).
``asset_type`` is ``COLLATERAL``, ``CONDITIONAL`` (a v1 token id) or ``CONDITIONAL-V2`` (a v2
position id); asking an outcome under the other system's type is refused (docs/venue.md V3).

Allowances are the wallet's recorded approvals (:mod:`contracts`) towards the exchanges its orders
are signed for: pUSD ``approve`` for COLLATERAL, ``setApprovalForAll`` on ConditionalTokens
(CONDITIONAL) or PositionManager (CONDITIONAL-V2) reported as max uint256 when set. The accounts
on ``sim_exchange.legacy_eoa_makers`` trade as they did before the deposit-wallet era, so their
answer is the old sim's: every spender unlimited.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from services.sim_exchange.accounts import KIND_OF_SIGNATURE, WalletBook
from services.sim_exchange.contracts import MAX_UINT256, Contracts
from services.sim_exchange.market import SimMarket
from services.sim_exchange.matching import Matcher

ASSET_TYPES = ("COLLATERAL", "CONDITIONAL", "CONDITIONAL-V2")
_SPENDERS = {  # asset type -> (token contract field, spender fields)
    "COLLATERAL": ("collateral_token", ("standard_exchange", "neg_risk_exchange", "exchange_v3", "neg_risk_adapter")),
    "CONDITIONAL": ("conditional_tokens", ("standard_exchange", "neg_risk_exchange", "neg_risk_adapter")),
    "CONDITIONAL-V2": ("position_manager", ("exchange_v3",)),
}


class BalanceQueryError(ValueError):
    """A bad balance-allowance query (answered 400)."""


class Balances:
    def __init__(self, matcher: Matcher, wallets: WalletBook, contracts: Contracts,
                 market_of: Callable[[str], SimMarket | None], legacy_eoa_makers: Collection[str]) -> None:
        self.matcher = matcher
        self.wallets = wallets
        self.contracts = contracts
        self.market_of = market_of
        self.legacy = {a.lower() for a in legacy_eoa_makers}

    def read(self, api_address: str, q: dict[str, str]) -> dict[str, object]:
        asset_type = (q.get("asset_type") or "COLLATERAL").upper()
        if asset_type not in ASSET_TYPES:
            raise BalanceQueryError(f"invalid asset_type {q.get('asset_type')!r}: COLLATERAL, CONDITIONAL or "
                                    "CONDITIONAL-V2")
        try:
            kind = KIND_OF_SIGNATURE[int(q.get("signature_type") or 0)]
        except (KeyError, ValueError) as exc:
            raise BalanceQueryError(f"invalid signature_type {q.get('signature_type')!r}: 0, 1, 2 or 3") from exc
        wallet = self.wallets.address_of(api_address, kind)
        acct = self.matcher.account(wallet)
        if asset_type == "COLLATERAL":
            amount = acct.cash
        else:
            token = q.get("token_id", "")
            market = self.market_of(token)
            if market is None:
                raise BalanceQueryError(f"unknown token id {token!r}")
            wanted = "CONDITIONAL-V2" if market.version == "v2" else "CONDITIONAL"
            if asset_type != wanted:
                raise BalanceQueryError(f"token id {token} belongs to a {market.version} market: ask asset_type "
                                        f"{wanted}")
            amount = acct.positions.get(token, 0.0)
        token_field, spenders = _SPENDERS[asset_type]
        env = self.contracts.env
        if wallet in self.legacy:
            allowances = {env.address(s): str(MAX_UINT256) for s in spenders}
        else:
            allowances = {env.address(s): str(self._allowance(asset_type, token_field, wallet, env.address(s)))
                          for s in spenders}
        return {"balance": str(max(int(round(amount * 1_000_000)), 0)), "allowances": allowances}

    def _allowance(self, asset_type: str, token_field: str, wallet: str, spender: str) -> int:
        value = self.contracts.allowance(token_field, wallet, spender)
        return value if asset_type == "COLLATERAL" else (MAX_UINT256 if value else 0)
