"""The soak's secrets: recognisable fake credentials handed to the services the way a live operator
does (environment variables and ``<NAME>_FILE`` secret files, a password in ``PF_REDIS_URL``), and
the grep that looks for them in everything the system wrote or answered (H6).

The private key is a real secp256k1 key (the sim verifies order signatures, so it must sign); the
CLOB API credentials are derived for it from the sim, as an operator derives them from Polymarket.
Every value is long and random, so a hit is a leak and never a coincidence. Partial leaks are
caught too: each value is also searched for by its first and last 12 characters.
"""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FRAGMENT = 12  # a leak of part of a value: its first or last FRAGMENT characters


@dataclass
class SoakSecrets:
    private_key: str = field(default_factory=lambda: "0x5eed" + pysecrets.token_hex(30))
    api_token: str = field(default_factory=lambda: "pf-soak-token-" + pysecrets.token_urlsafe(24))
    redis_password: str = field(default_factory=lambda: "pf-soak-redis-" + pysecrets.token_hex(12))
    webhook_token: str = field(default_factory=lambda: "7" + str(pysecrets.randbelow(10**9)).zfill(9) + ":"
                               + pysecrets.token_urlsafe(27))
    clob_api_key: str = ""
    clob_api_secret: str = ""
    clob_api_passphrase: str = ""

    def derive_clob_creds(self, sim_url: str) -> None:
        """What an operator does once: derive the L2 API credentials for the wallet key at the venue."""
        import asyncio
        import concurrent.futures

        from shared.config import Secrets, Settings
        from shared.venue.account import open_account
        from shared.venue.environment import fetch_sim_environment

        async def derive() -> tuple[str, str, str]:
            env = await fetch_sim_environment(sim_url)
            settings = Settings.model_validate({"mode": "sim", "polymarket": {"wallet": "eoa"}})
            account = await open_account(settings, Secrets(private_key=self.private_key), env)
            try:
                return account.api_credentials
            finally:
                await account.close()

        # the harness calls this from inside its own event loop: derive on a loop of its own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            creds = pool.submit(asyncio.run, derive()).result()
        self.clob_api_key, self.clob_api_secret, self.clob_api_passphrase = creds

    def webhook_url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/hook/bot{self.webhook_token}"

    def env(self, secret_dir: Path, webhook_port: int) -> dict[str, str]:
        """The services' environment: three secrets in 0600 files (``*_FILE``), the rest as variables."""
        secret_dir.mkdir(parents=True, exist_ok=True)
        out: dict[str, str] = {}
        for name, value in (("PF_PRIVATE_KEY", self.private_key), ("PF_CLOB_API_SECRET", self.clob_api_secret),
                            ("PF_API_TOKEN", self.api_token)):
            path = secret_dir / name.lower()
            path.write_text(value + "\n")
            os.chmod(path, 0o600)
            out[f"{name}_FILE"] = str(path)
        out["PF_CLOB_API_KEY"] = self.clob_api_key
        out["PF_CLOB_API_PASSPHRASE"] = self.clob_api_passphrase
        out["PF_ALERT_WEBHOOK_URL"] = self.webhook_url(webhook_port)
        return out

    def values(self) -> dict[str, str]:
        named = {"private_key": self.private_key, "private_key_hex": self.private_key.removeprefix("0x"),
                 "api_token": self.api_token, "redis_password": self.redis_password,
                 "webhook_token": self.webhook_token, "clob_api_key": self.clob_api_key,
                 "clob_api_secret": self.clob_api_secret, "clob_api_passphrase": self.clob_api_passphrase}
        return {k: v for k, v in named.items() if v}


def needles(values: dict[str, str]) -> dict[str, str]:
    """needle -> secret name: each value whole, and its first and last FRAGMENT characters."""
    out: dict[str, str] = {}
    for name, value in values.items():
        out[value] = name
        if len(value) > 2 * FRAGMENT:
            out.setdefault(value[:FRAGMENT], name + "[:12]")
            out.setdefault(value[-FRAGMENT:], name + "[-12:]")
    return out


def find_leaks(sources: Iterable[tuple[str, str]], values: dict[str, str]) -> list[dict[str, Any]]:
    """Every (source, secret) where a needle of the secret occurs in the source's text."""
    found = needles(values)
    hits = []
    for where, text in sources:
        for needle, name in found.items():
            at = text.find(needle)
            if at >= 0:
                hits.append({"where": where, "secret": name,
                             "context": text[max(0, at - 60):at].replace(needle, "<SECRET>") + "<SECRET>"})
    return hits
