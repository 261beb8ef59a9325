"""One trading account at the venue: the official SDK's ``AsyncSecureClient`` for the configured
wallet, on the configured environment (docs/venue.md W1-W5).

* the signing key: ``PF_PRIVATE_KEY`` (the sim's well-known key in sim mode when none is set);
* the wallet (``polymarket.wallet``): ``deposit`` (the SDK's default: the key's deposit wallet,
  created through the relayer when missing), ``eoa`` (the key's own address), ``proxy`` / ``safe``
  (``polymarket.wallet_address``, or the one the SDK derives for the key; the SDK never creates
  them, so they must exist);
* API credentials: ``PF_CLOB_API_KEY`` / ``_SECRET`` / ``_PASSPHRASE``, or created/derived with
  the key (L1) as the SDK does; the key stays bound to the signing EOA (``POLY_ADDRESS``);
* relayer access, needed by every wallet but the EOA: ``PF_BUILDER_API_KEY`` / ``_SECRET`` /
  ``_PASSPHRASE`` or ``PF_RELAYER_API_KEY`` (+ ``_ADDRESS``); in sim mode only, a builder key is
  minted from the sim (``create_builder_api_key`` of an EOA client) when none is given;
* the per-signer rate-limit state the SDK reports (:class:`SignerRateLimit`).

A setup the venue cannot work with ends here, before any order, as one :class:`VenueSetupError`
naming the fix.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from eth_account import Account
from polymarket import AsyncSecureClient, BuilderApiKey, RelayerApiKey
from polymarket.errors import RequestRejectedError, TransactionFailedError, UserInputError
from polymarket.models import ApiKeyCreds

from shared.config import SIM_PRIVATE_KEY, Secrets, Settings, WalletKind
from shared.venue.environment import VenueEnvironment
from shared.venue.errors import VenueSetupError
from shared.venue.ratelimit import SignerRateLimit
from shared.venue.sdk_errors import CREDENTIALS_FIX, VENUE_FAILURES, venue_error
from shared.venue.sdk_private import api_credentials, derived_wallet

SIGNATURE_TYPES: dict[WalletKind, int] = {"eoa": 0, "proxy": 1, "safe": 2, "deposit": 3}
WALLET_RACE_PAUSE_S = 1.0
RELAYER_FIX = ("set PF_BUILDER_API_KEY / PF_BUILDER_API_SECRET / PF_BUILDER_API_PASSPHRASE (or PF_RELAYER_API_KEY "
               "and PF_RELAYER_API_KEY_ADDRESS), or trade as polymarket.wallet: eoa")


@dataclass
class VenueAccount:
    """An open account: the SDK client, and what the orders and reads of :mod:`orders` need."""

    env: VenueEnvironment
    client: AsyncSecureClient
    wallet_kind: WalletKind
    rate: SignerRateLimit

    @property
    def signer(self) -> str:
        """The EOA that signs (and that the API key is bound to)."""
        return str(self.client.signer)

    @property
    def wallet(self) -> str:
        """The order maker: who holds the cash and the positions."""
        return str(self.client.wallet)

    @property
    def signature_type(self) -> int:
        return SIGNATURE_TYPES[self.wallet_kind]

    @property
    def api_credentials(self) -> tuple[str, str, str]:
        """(key, secret, passphrase): what an operator puts in PF_CLOB_API_* once derived."""
        return api_credentials(self.client)

    async def close(self) -> None:
        await self.client.close()


def signing_key(settings: Settings, secrets: Secrets) -> str:
    if secrets.private_key:
        return secrets.private_key
    if settings.mode != "sim":
        raise VenueSetupError(f"mode {settings.mode} has no signing key", "set PF_PRIVATE_KEY (or PF_PRIVATE_KEY_FILE)")
    return SIM_PRIVATE_KEY


def requested_wallet(kind: WalletKind, wallet_address: str, signer: str, env: VenueEnvironment) -> str | None:
    """The ``wallet`` argument of ``AsyncSecureClient.create`` (None: the SDK's deposit wallet)."""
    if wallet_address:
        return wallet_address
    if kind == "eoa":
        return signer
    if kind in ("proxy", "safe"):
        return derived_wallet(kind, signer, env.wallet_derivation)
    return None


def configured_relayer_key(secrets: Secrets) -> BuilderApiKey | RelayerApiKey | None:
    if secrets.builder_api_key:
        return BuilderApiKey(key=secrets.builder_api_key, secret=secrets.builder_api_secret,
                             passphrase=secrets.builder_api_passphrase)
    if secrets.relayer_api_key:
        if not secrets.relayer_api_key_address:
            raise VenueSetupError("PF_RELAYER_API_KEY is set without its address", "set PF_RELAYER_API_KEY_ADDRESS")
        return RelayerApiKey(key=secrets.relayer_api_key, address=secrets.relayer_api_key_address)
    return None


def configured_credentials(secrets: Secrets) -> ApiKeyCreds | None:
    if not secrets.clob_api_key:
        return None
    return ApiKeyCreds(key=secrets.clob_api_key, secret=secrets.clob_api_secret,
                       passphrase=secrets.clob_api_passphrase)


async def open_account(settings: Settings, secrets: Secrets, env: VenueEnvironment,
                       rate: SignerRateLimit | None = None) -> VenueAccount:
    """Open the configured account. Raises :class:`VenueSetupError` (a person must fix the setup)
    or :class:`~shared.venue.errors.VenueUnavailable` (the venue did not answer; try again)."""
    key = signing_key(settings, secrets)
    pm = settings.polymarket
    try:
        signer = str(Account.from_key(key).address)
    except (ValueError, TypeError) as exc:
        raise VenueSetupError(f"PF_PRIVATE_KEY is not a private key ({exc})", "set PF_PRIVATE_KEY to a 32-byte hex "
                              "key") from None
    wallet = requested_wallet(pm.wallet, pm.wallet_address, signer, env)
    credentials = configured_credentials(secrets)
    relayer_key = configured_relayer_key(secrets)
    if relayer_key is None and pm.wallet != "eoa" and env.name == "sim":
        relayer_key = await _sim_builder_key(key, signer, env, credentials)  # None: the sim mints none
    rate = rate or SignerRateLimit(signer)
    client = await _create(key, wallet, env, credentials, relayer_key, rate, pm.wallet)
    return VenueAccount(env, client, pm.wallet, rate)


async def _create(key: str, wallet: str | None, env: VenueEnvironment, credentials: ApiKeyCreds | None,
                  relayer_key: BuilderApiKey | RelayerApiKey | None, rate: SignerRateLimit | None,
                  kind: WalletKind) -> AsyncSecureClient:
    for attempt in (1, 2):
        try:
            return await AsyncSecureClient.create(private_key=key, wallet=wallet, environment=env.to_sdk(),
                                                  credentials=credentials, api_key=relayer_key,
                                                  on_rate_limit_update=rate.on_update if rate else None)
        except UserInputError as exc:
            raise _setup_error(str(exc), kind) from exc
        except (RequestRejectedError, TransactionFailedError) as exc:
            if isinstance(exc, RequestRejectedError) and exc.status in (401, 403):
                raise VenueSetupError(f"the venue refused the API credentials ({exc})", CREDENTIALS_FIX) from exc
            if attempt == 1 and kind != "eoa":
                # Several processes of one account start together: another may be creating the same
                # deposit wallet this very moment (its creation refused or failed here). Once more:
                # the SDK then finds it deployed.
                await asyncio.sleep(WALLET_RACE_PAUSE_S)
                continue
            if isinstance(exc, TransactionFailedError):
                raise VenueSetupError(f"the relayer could not create the {kind} wallet ({exc})", RELAYER_FIX) from exc
            raise venue_error(exc, sent=False, what="opening the account") from exc
        except VENUE_FAILURES as exc:
            raise venue_error(exc, sent=False, what="opening the account") from exc
    raise AssertionError("unreachable")


def _setup_error(text: str, kind: WalletKind) -> VenueSetupError:
    low = text.lower()
    if "builder api key or relayer api key" in low:
        return VenueSetupError(f"the {kind} wallet needs the relayer ({text})", RELAYER_FIX)
    if "does not exist" in low:
        return VenueSetupError(f"the {kind} wallet is not deployed ({text})",
                               f"deploy the {kind} wallet of this key first (polymarket.com), set "
                               "polymarket.wallet_address to the deployed one, or use polymarket.wallet: deposit")
    if "does not match the expected deposit wallet" in low:
        return VenueSetupError(f"polymarket.wallet_address is not this key's deposit wallet ({text})",
                               "remove polymarket.wallet_address (the SDK derives the key's deposit wallet)")
    return VenueSetupError(f"the venue client refused the setup ({text})",
                           "check PF_PRIVATE_KEY, polymarket.wallet and polymarket.wallet_address")


async def _sim_builder_key(key: str, signer: str, env: VenueEnvironment,
                           credentials: ApiKeyCreds | None) -> BuilderApiKey | None:
    """A builder key minted by the sim for this signer (sim mode only: a real venue issues builder
    keys to builders, not on demand). None when the sim mints none: the account then opens without
    relayer access, and the first call that needs it fails naming the fix (RELAYER_FIX)."""
    eoa = await _create(key, signer, env, credentials, None, None, "eoa")
    try:
        return await eoa.create_builder_api_key()
    except VENUE_FAILURES:
        return None
    finally:
        await eoa.close()
