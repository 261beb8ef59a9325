"""Who trades from which wallet: owners (EOAs), their smart wallets, deployment and nonces (pure).

A sim account (cash, positions, approvals) belongs to the address that holds the assets: the
order's maker, or the wallet a relayer batch executes in. An EOA is its own wallet. Smart wallets
are derived from their owner exactly as the SDK derives them (:mod:`derivation`) and exist once
deployed: deposit wallets through the relayer (``WALLET-CREATE``), proxies and Safes through the
admin route ``POST /_sim/wallets`` (the SDK never creates those). The venue refuses orders from a
wallet that is not deployed, so :meth:`WalletBook.deployed` is what the order checks read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from services.sim_exchange.derivation import DERIVE

WalletKind = Literal["eoa", "deposit", "proxy", "safe"]
KINDS: tuple[WalletKind, ...] = ("eoa", "deposit", "proxy", "safe")
# CLOB signature types (the SDK's wallet types) and the relayer's transaction types
SIGNATURE_TYPE: dict[WalletKind, int] = {"eoa": 0, "proxy": 1, "safe": 2, "deposit": 3}
KIND_OF_SIGNATURE: dict[int, WalletKind] = {v: k for k, v in SIGNATURE_TYPE.items()}
RELAYER_TYPE: dict[str, WalletKind] = {"WALLET": "deposit", "PROXY": "proxy", "SAFE": "safe"}


class WalletError(ValueError):
    """Refused (unknown kind, already deployed, not derivable)."""


@dataclass(frozen=True)
class Wallet:
    address: str  # lowercase
    owner: str  # lowercase EOA
    kind: WalletKind
    deployed_at: float


@dataclass
class WalletBook:
    derivation: Mapping[str, str]
    wallets: dict[str, Wallet] = field(default_factory=dict)  # lowercase address -> deployed wallet
    nonces: dict[str, int] = field(default_factory=dict)  # lowercase wallet -> next relayer nonce

    def address_of(self, owner: str, kind: WalletKind) -> str:
        """``owner``'s wallet of ``kind`` (lowercase), deployed or not; an EOA is itself."""
        if kind == "eoa":
            return owner.lower()
        if kind not in DERIVE:
            raise WalletError(f"unknown wallet kind {kind!r}: expected one of {', '.join(KINDS)}")
        return DERIVE[kind](owner, self.derivation).lower()

    def deploy(self, owner: str, kind: WalletKind) -> Wallet:
        address = self.address_of(owner, kind)
        if kind == "eoa":
            raise WalletError("an EOA is not deployed: it is its own wallet")
        if address in self.wallets:
            raise WalletError(f"{kind} wallet {address} of {owner.lower()} is already deployed")
        wallet = Wallet(address, owner.lower(), kind, time.time())
        self.wallets[address] = wallet
        return wallet

    def deployed(self, address: str, kind: WalletKind | None = None) -> Wallet | None:
        wallet = self.wallets.get(address.lower())
        return wallet if wallet is not None and (kind is None or wallet.kind == kind) else None

    def of_owner(self, owner: str) -> list[Wallet]:
        return [w for w in self.wallets.values() if w.owner == owner.lower()]

    def nonce(self, wallet: str) -> int:
        return self.nonces.get(wallet.lower(), 0)

    def use_nonce(self, wallet: str) -> None:
        self.nonces[wallet.lower()] = self.nonce(wallet) + 1
