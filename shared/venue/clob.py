"""Building an authenticated py-clob-client-v2 client for the configured mode.

sim: the client talks to sim_exchange with the well-known sim key unless PF_PRIVATE_KEY is set.
live: PF_PRIVATE_KEY is required. API credentials come from PF_CLOB_API_* when set, otherwise
they are created or derived with the key (L1), the way the SDK's README does it.
"""

from __future__ import annotations

from typing import Any

from py_clob_client_v2 import ApiCreds, ClobClient

from shared.config import SIM_PRIVATE_KEY, ConfigError, Secrets, Settings
from shared.venue.environment import VenueEnvironment

SIGNATURE_TYPES = {"eoa": 0, "proxy": 1, "safe": 2, "deposit": 3}


def make_clob_client(settings: Settings, secrets: Secrets, env: VenueEnvironment) -> Any:
    key = secrets.private_key
    if not key:
        if settings.mode != "sim":
            raise ConfigError(f"mode {settings.mode} needs PF_PRIVATE_KEY (or PF_PRIVATE_KEY_FILE) to trade")
        key = SIM_PRIVATE_KEY
    pm = settings.polymarket
    client = ClobClient(env.url("clob_url"), chain_id=env.chain_id, key=key,
                        signature_type=SIGNATURE_TYPES[pm.wallet], funder=pm.wallet_address or None)
    if secrets.clob_api_key:
        creds = ApiCreds(api_key=secrets.clob_api_key, api_secret=secrets.clob_api_secret,
                         api_passphrase=secrets.clob_api_passphrase)
    else:
        creds = client.create_or_derive_api_key()
    client.set_api_creds(creds)
    return client
