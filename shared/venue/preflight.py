"""What ``polyfleet doctor`` needs to know about the trading wallet, read without changing anything.

* the wallet (kind, address, deployed) from :mod:`wallet_setup`;
* the API key: an SDK client opened for the signer's *own* address (an EOA-typed client: opening
  the configured wallet's client would create a missing deposit wallet) tells which key the venue
  accepted. Keys are bound to the signer, whatever the wallet (sdk-wire.md §1.3);
* the pUSD balance the CLOB sees for the wallet (an SDK client of the wallet's own type, opened
  only when the wallet exists, so nothing is deployed by looking);
* every approval the contracts in use need, read over JSON-RPC (:mod:`approvals`).

Each part that cannot be observed is reported as a problem line instead of stopping the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.config import Secrets, Settings
from shared.venue import approvals, wallet_setup
from shared.venue.approvals import ApprovalState
from shared.venue.environment import VenueEnvironment
from shared.venue.errors import VenueError, VenueSetupError
from shared.venue.wallet_setup import WalletInfo

if TYPE_CHECKING:
    from polymarket import AsyncSecureClient

UNITS = 1_000_000


@dataclass
class Observed:
    info: WalletInfo | None = None
    setup_errors: list[tuple[str, VenueSetupError]] = field(default_factory=list)  # (check name, error)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (check name, what could not be read)
    given_key: str = ""
    used_key: str | None = None  # None: the credentials could not be checked
    balance: float | None = None  # None: no wallet yet (or unreadable: then a problem says so)
    approvals: list[ApprovalState] = field(default_factory=list)


async def open_client(private_key: str, wallet: str, env: VenueEnvironment, creds: Any = None) -> AsyncSecureClient:
    """An SDK client for an *existing* wallet (``wallet`` given, so the SDK deploys nothing)."""
    from polymarket import AsyncSecureClient

    return await AsyncSecureClient.create(private_key=private_key, wallet=wallet, environment=env.to_sdk(),
                                          credentials=creds)


async def observe(settings: Settings, secrets: Secrets, env: VenueEnvironment) -> Observed:
    from eth_account import Account

    from shared.venue.account import configured_credentials, signing_key

    out = Observed(given_key=secrets.clob_api_key)
    pm = settings.polymarket
    try:
        private_key = signing_key(settings, secrets)
    except VenueSetupError as exc:
        out.setup_errors.append(("wallet", exc))
        return out
    signer = str(Account.from_key(private_key).address)
    try:
        out.info = info = await wallet_setup.inspect(pm.wallet, signer, pm.wallet_address, env)
    except VenueSetupError as exc:
        out.setup_errors.append(("wallet", exc))
        return out
    except VenueError as exc:
        out.problems.append(("wallet deployed", str(exc)))
        return out
    try:
        probe = await open_client(private_key, signer, env, configured_credentials(secrets))
    except Exception as exc:  # the SDK's errors and the network's: reported, the rest goes on
        out.problems.append(("api key", f"could not open an SDK client for signer {signer}: {type(exc).__name__}: {exc}"))
    else:
        try:
            out.used_key = probe.credentials.key
            if info.deployed:
                client = probe if info.kind == "eoa" else await open_client(private_key, info.address, env,
                                                                            probe.credentials)
                try:
                    reply = await client.get_balance_allowance(asset_type="COLLATERAL")
                    out.balance = reply.balance / UNITS
                finally:
                    if client is not probe:
                        await client.close()
        except Exception as exc:
            out.problems.append(("collateral", f"the CLOB balance of {info.address} is unreadable: {type(exc).__name__}: {exc}"))
        finally:
            await probe.close()
    try:
        out.approvals = await approvals.read(env.url("rpc_url"), info.address, approvals.required(env))
    except VenueError as exc:
        out.problems.append(("approvals", str(exc)))
    return out
