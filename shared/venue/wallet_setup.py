"""Which wallet trades, whether it exists, and whether the API key belongs to its signer.

The four wallet kinds (docs/venue.md W1-W4; config ``polymarket.wallet``):

* ``deposit`` (default): the signer's deposit wallet, signature type 3. Created through the
  relayer when missing (the SDK does it when the client is opened; :func:`inspect` lets the
  caller say so first).
* ``eoa``: the signing key's own address, type 0; needs no deployment.
* ``proxy`` / ``safe``: the signer's Polymarket proxy or Gnosis Safe, types 1 and 2. The SDK
  cannot create them: a missing one is a setup error.

Addresses are derived with the SDK's own CREATE2 formulas from the environment's
``wallet_derivation`` (private SDK functions, pinned with polymarket-client 0.14.0), so an address
in ``polymarket.wallet_address`` that is not the signer's wallet of that kind is caught here:
the SDK would otherwise sign for it as a *session key* without a word.

Deployment is the relayer's ``GET /deployed`` (what the SDK itself asks; no chain read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from eth_account import Account
from loguru import logger

from shared.config import Secrets, Settings, WalletKind
from shared.venue.environment import VenueEnvironment
from shared.venue.errors import VenueSetupError, VenueUnavailable

if TYPE_CHECKING:
    from shared.venue.account import VenueAccount

SIGNATURE_TYPE: dict[WalletKind, int] = {"eoa": 0, "proxy": 1, "safe": 2, "deposit": 3}
RELAYER_TYPE: dict[WalletKind, str] = {"deposit": "WALLET", "proxy": "PROXY", "safe": "SAFE"}
KIND_NAME: dict[WalletKind, str] = {"deposit": "deposit wallet", "eoa": "EOA", "proxy": "Polymarket proxy wallet",
                                    "safe": "Gnosis Safe"}
SETUP_COMMAND = "polyfleet setup-wallet"


@dataclass(frozen=True, slots=True)
class WalletInfo:
    kind: WalletKind
    signer: str  # the EOA of the private key: signs everything, owns the API key
    address: str  # the wallet that holds the funds (the order maker)
    deployed: bool

    @property
    def signature_type(self) -> int:
        return SIGNATURE_TYPE[self.kind]

    def describe(self) -> str:
        if self.kind == "eoa":
            return f"EOA {self.address} (signature type 0): the signing key holds the funds"
        return (f"{KIND_NAME[self.kind]} {self.address} (signature type {self.signature_type}) "
                f"of signer {self.signer}")


def derived_addresses(kind: WalletKind, signer: str, env: VenueEnvironment) -> list[str]:
    """The addresses the SDK recognises as the signer's wallet of ``kind`` (checksummed). A
    deposit wallet has two: the current (beacon) one first, then the legacy (UUPS) one."""
    from polymarket._internal.wallet import derive_beacon_deposit_wallet_address, derive_uups_deposit_wallet_address
    from polymarket.environments import _WalletDerivation

    from shared.venue.sdk_private import derived_wallet

    if kind == "eoa":
        return [signer]
    if kind in ("proxy", "safe"):
        return [derived_wallet(kind, signer, env.wallet_derivation)]  # type: ignore[arg-type]
    config = _WalletDerivation(**env.wallet_derivation)
    return [derive_beacon_deposit_wallet_address(signer, config), derive_uups_deposit_wallet_address(signer, config)]


def address_error(kind: WalletKind, signer: str, configured: str, env: VenueEnvironment) -> VenueSetupError | None:
    """A configured ``wallet_address`` that is not the signer's wallet of ``kind``."""
    if not configured:
        return None
    mine = derived_addresses(kind, signer, env)
    if configured.lower() in (a.lower() for a in mine):
        return None
    return VenueSetupError(
        f"polymarket.wallet_address {configured} is not the {KIND_NAME[kind]} of signer {signer} "
        f"(that is {mine[0]}); the SDK would sign for it as a session key",
        "leave polymarket.wallet_address empty (polyfleet derives the wallet), or set PF_PRIVATE_KEY to "
        "the key that owns that wallet, or set polymarket.wallet to the wallet's kind")


async def is_deployed(env: VenueEnvironment, address: str, kind: WalletKind, timeout_s: float = 10.0) -> bool:
    """The relayer's ``GET /deployed?address=&type=``; an EOA is always there."""
    if kind == "eoa":
        return True
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            resp = await http.get(f"{env.url('relayer_url')}/deployed",
                                  params={"address": address, "type": RELAYER_TYPE[kind]})
        resp.raise_for_status()
        deployed = resp.json().get("deployed")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise VenueUnavailable(f"the relayer did not say whether {address} is deployed "
                               f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(deployed, bool):
        raise VenueUnavailable(f"the relayer's /deployed answer for {address} has no boolean 'deployed'")
    return deployed


async def inspect(kind: WalletKind, signer: str, configured: str, env: VenueEnvironment) -> WalletInfo:
    """The wallet that will trade and whether it is deployed, without changing anything.

    Deposit wallet with no address configured: the legacy (UUPS) wallet if it is deployed, else
    the current (beacon) one -- the SDK's own choice (``_resolve_requested_wallet``)."""
    if kind == "eoa":
        return WalletInfo(kind, signer, signer, True)
    error = address_error(kind, signer, configured, env)
    if error is not None:
        raise error
    if configured:
        return WalletInfo(kind, signer, configured, await is_deployed(env, configured, kind))
    candidates = derived_addresses(kind, signer, env)
    if kind == "deposit" and await is_deployed(env, candidates[1], kind):
        return WalletInfo(kind, signer, candidates[1], True)
    return WalletInfo(kind, signer, candidates[0], await is_deployed(env, candidates[0], kind))


def not_deployed_error(info: WalletInfo) -> VenueSetupError | None:
    """A wallet the SDK cannot create (proxy, Safe) that does not exist."""
    if info.deployed or info.kind in ("eoa", "deposit"):
        return None
    return VenueSetupError(
        f"the {KIND_NAME[info.kind]} {info.address} of signer {info.signer} is not deployed, and the SDK "
        "cannot create proxy or Safe wallets",
        "log in to polymarket.com once with this signer (that deploys it), set polymarket.wallet_address to "
        "the wallet that holds your funds, or use polymarket.wallet: deposit (created through the relayer)")


def key_binding_error(given_key: str, used_key: str, signer: str) -> VenueSetupError | None:
    """``PF_CLOB_API_KEY`` was given but the venue did not accept it for ``signer``: it belongs to
    another signer (or was revoked). The SDK then derives the signer's own key without a word;
    polyfleet refuses instead, so orders never go out under a key the operator did not choose."""
    if not given_key or given_key == used_key:
        return None
    return VenueSetupError(
        f"PF_CLOB_API_KEY {given_key[:8]}... is not bound to signer {signer} (the venue refused it for that "
        "address): it belongs to another signer or was revoked",
        "unset PF_CLOB_API_KEY, PF_CLOB_API_SECRET and PF_CLOB_API_PASSPHRASE (polyfleet then derives the "
        "signer's own key), or set PF_PRIVATE_KEY to the key that created it")


@dataclass(frozen=True, slots=True)
class Opened:
    account: VenueAccount
    info: WalletInfo
    created: bool  # the deposit wallet was created through the relayer just now


async def open_trading_account(settings: Settings, secrets: Secrets, env: VenueEnvironment,
                               say: Callable[[str], None] = logger.warning) -> Opened:
    """The configured account, opened for trading, or the one :class:`VenueSetupError` naming the
    fix before anything is sent: a configured address that is not the signer's wallet, a proxy or
    Safe that does not exist, an API key bound to another signer (and whatever
    :func:`~shared.venue.account.open_account` refuses). A missing deposit wallet is created
    through the relayer (by the SDK, when the client opens); ``say`` gets one line before and one
    after."""
    from shared.venue.account import open_account, signing_key

    key = signing_key(settings, secrets)
    pm = settings.polymarket
    signer = str(Account.from_key(key).address)
    info = await inspect(pm.wallet, signer, pm.wallet_address, env)
    error = not_deployed_error(info)
    if error is not None:
        raise error
    if not info.deployed:
        say(f"deposit wallet {info.address} of signer {signer} is not deployed: creating it through the relayer")
    account = await open_account(settings, secrets, env)
    try:
        error = key_binding_error(secrets.clob_api_key, account.client.credentials.key, signer)
        if error is not None:
            raise error
    except BaseException:
        await account.close()
        raise
    if not info.deployed:
        say(f"deposit wallet {account.wallet} created through the relayer (signer {signer})")
    return Opened(account, WalletInfo(info.kind, signer, account.wallet, True), not info.deployed)


async def setup(settings: Settings, secrets: Secrets, env: VenueEnvironment, say: Callable[[str], None],
                timeout_s: float = 60.0) -> WalletInfo:
    """``polyfleet setup-wallet``: open the configured account (a missing deposit wallet is created
    through the relayer) and send every approval the contracts in use lack, through the SDK. The
    wallet, ready; or the :class:`VenueSetupError` of what cannot be fixed from here."""
    from shared.venue import approvals

    opened = await open_trading_account(settings, secrets, env, say)
    try:
        say(f"wallet: {opened.info.describe()}")
        sent = await approvals.ensure(opened.account.client, env, opened.info.address, True, timeout_s)
        for a in sent:
            say(f"approved: {a.label} {a.spender} ({a.purpose})")
        say(f"every approval in place ({len(approvals.REQUIRED)} contracts; {len(sent)} sent now)")
        return opened.info
    finally:
        await opened.account.close()
