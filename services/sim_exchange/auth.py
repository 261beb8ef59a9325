"""CLOB authentication: L1 (EIP-712 ClobAuth signature) and L2 (HMAC over the request).

API keys are derived deterministically from (address, nonce), so a client that derived its key
before a sim restart still authenticates afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data

_NAMESPACE = uuid.UUID("5f1d7c1e-4d0b-4b9e-9b7a-706f6c79666c")
_SERVER_SECRET = b"polyfleet-sim-exchange"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"


class AuthError(Exception):
    """Rejected credentials; ``str(exc)`` is the 401 error text."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    address: str  # lowercase

    def as_json(self) -> dict[str, str]:
        return {"apiKey": self.key, "secret": self.secret, "passphrase": self.passphrase}


def derive_key(address: str, nonce: int) -> ApiKey:
    addr = address.lower()
    seed = hmac.new(_SERVER_SECRET, f"{addr}:{nonce}".encode(), hashlib.sha256).digest()
    return ApiKey(
        key=str(uuid.uuid5(_NAMESPACE, f"{addr}:{nonce}")),
        secret=base64.urlsafe_b64encode(seed).decode(),
        passphrase=hashlib.sha256(seed + b"pass").hexdigest(),
        address=addr,
    )


def recover_clob_auth(address: str, timestamp: str, nonce: int, signature: str, chain_id: int = 137) -> str:
    """The address that signed the ClobAuth struct (lowercase)."""
    typed = {
        "primaryType": "ClobAuth",
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}],
            "ClobAuth": [{"name": "address", "type": "address"}, {"name": "timestamp", "type": "string"},
                         {"name": "nonce", "type": "uint256"}, {"name": "message", "type": "string"}],
        },
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }
    encoded = encode_typed_data(full_message=typed)
    return str(Account.recover_message(encoded, signature=signature)).lower()


def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """Exactly py_clob_client_v2.signing.hmac.build_hmac_signature."""
    message = f"{timestamp}{method}{path}"
    if body:
        message += body.replace("'", '"')
    digest = hmac.new(base64.urlsafe_b64decode(secret), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("utf-8")


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or headers.get(name.replace("_", "-").lower()) or ""


class Authenticator:
    def __init__(self, chain_id: int = 137) -> None:
        self.chain_id = chain_id
        self.keys: dict[str, ApiKey] = {}

    def l1(self, headers: Mapping[str, str]) -> ApiKey:
        """Check L1 headers and return (registering) the address's key for that nonce."""
        address, sig = _header(headers, "POLY_ADDRESS"), _header(headers, "POLY_SIGNATURE")
        ts, nonce_raw = _header(headers, "POLY_TIMESTAMP"), _header(headers, "POLY_NONCE") or "0"
        if not (address and sig and ts):
            raise AuthError("Invalid L1 Request headers")
        try:
            nonce = int(nonce_raw)
            signer = recover_clob_auth(address, ts, nonce, sig, self.chain_id)
        except Exception as exc:  # any malformed header / signature
            raise AuthError("Invalid L1 Request headers") from exc
        if signer != address.lower():
            raise AuthError("Invalid L1 Request headers")
        key = derive_key(address, nonce)
        self.keys[key.key] = key
        return key

    def l2(self, headers: Mapping[str, str], method: str, path: str, body: str) -> ApiKey:
        """Check L2 headers against an issued key; ``path`` excludes the query string."""
        api_key = _header(headers, "POLY_API_KEY")
        key = self.keys.get(api_key)
        if key is None:
            address = _header(headers, "POLY_ADDRESS")
            guess = derive_key(address, 0) if address else None
            if guess is None or guess.key != api_key:
                raise AuthError("Unauthorized/Invalid api key")
            key = self.keys[guess.key] = guess
        if _header(headers, "POLY_PASSPHRASE") != key.passphrase:
            raise AuthError("Unauthorized/Invalid api key")
        ts, sig = _header(headers, "POLY_TIMESTAMP"), _header(headers, "POLY_SIGNATURE")
        expected = hmac_signature(key.secret, ts, method, path, body)
        if not ts or not hmac.compare_digest(expected, sig):
            raise AuthError("Unauthorized/Invalid api key")
        return key
