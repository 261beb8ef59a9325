"""CLOB authentication: L1 (EIP-712 ClobAuth signature), L2 (HMAC over the request) and the
builder keys the relayer takes (docs/venue.md W4, W5; sdk-wire §0.1-0.3).

API keys are derived deterministically from (address, nonce), so a client that derived its key
before a sim restart still authenticates afterwards. A key is bound to the EOA that signed the L1
request (``POLY_ADDRESS``), as the venue binds it: orders from that EOA's smart wallets are still
the key's (signatures.py). ``POST /auth/api-key`` for a key already issued is a 400, and the
official clients then derive it. The HMAC is over ``{timestamp}{METHOD}{path}{body}`` with the
path the client signed: the un-prefixed one (the relayer's routes sit under ``/relayer``).
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


class KeyExists(Exception):
    """``POST /auth/api-key`` for a key already issued (answered 400)."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    address: str  # lowercase

    def as_json(self) -> dict[str, str]:
        return {"apiKey": self.key, "secret": self.secret, "passphrase": self.passphrase}

    def as_builder_json(self) -> dict[str, str]:
        return {"key": self.key, "secret": self.secret, "passphrase": self.passphrase}


def derive_key(address: str, nonce: int, kind: str = "") -> ApiKey:
    addr = address.lower()
    label = f"{kind}{addr}:{nonce}"
    seed = hmac.new(_SERVER_SECRET, label.encode(), hashlib.sha256).digest()
    return ApiKey(
        key=str(uuid.uuid5(_NAMESPACE, label)),
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
    """The L2/builder HMAC (docs/venue.md W5): urlsafe-base64 HMAC-SHA256, keyed by the decoded
    secret, over ``{timestamp}{METHOD}{path}{body}`` with the body exactly as sent."""
    message = f"{timestamp}{method}{path}{body}"
    digest = hmac.new(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)), message.encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("utf-8")


def _hmac_ok(secret: str, headers: Mapping[str, str], prefix: str, method: str, path: str, body: str) -> bool:
    ts, sig = _header(headers, f"{prefix}TIMESTAMP"), _header(headers, f"{prefix}SIGNATURE")
    return bool(ts) and hmac.compare_digest(hmac_signature(secret, ts, method, path, body), sig)


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or headers.get(name.replace("_", "-").lower()) or ""


class Authenticator:
    def __init__(self, chain_id: int = 137) -> None:
        self.chain_id = chain_id
        self.keys: dict[str, ApiKey] = {}
        self.builders: dict[str, ApiKey] = {}

    def l1(self, headers: Mapping[str, str], create: bool = False) -> ApiKey:
        """Check L1 headers and return (registering) the address's key for that nonce; ``create``
        refuses a key already issued (:class:`KeyExists`)."""
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
        if create and key.key in self.keys:
            raise KeyExists("Could not create api key")
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
        address = _header(headers, "POLY_ADDRESS")
        if address and address.lower() != key.address:  # the key is bound to its EOA
            raise AuthError("Unauthorized/Invalid api key")
        if not _hmac_ok(key.secret, headers, "POLY_", method, path, body):
            raise AuthError("Unauthorized/Invalid api key")
        return key

    def builder_key(self, address: str) -> ApiKey:
        """A new builder key for ``address`` (each call mints one, as the venue does)."""
        key = derive_key(address, len(self.builders), kind=f"builder:{uuid.uuid4()}:")
        key = ApiKey(key.key, key.secret, key.passphrase, address.lower())
        self.builders[key.key] = key
        return key

    def builder(self, headers: Mapping[str, str], method: str, path: str, body: str) -> ApiKey:
        """Check the relayer's builder headers (``POLY_BUILDER_*``, same HMAC as L2)."""
        key = self.builders.get(_header(headers, "POLY_BUILDER_API_KEY"))
        if key is None or _header(headers, "POLY_BUILDER_PASSPHRASE") != key.passphrase:
            raise AuthError("invalid builder api key")
        if not _hmac_ok(key.secret, headers, "POLY_BUILDER_", method, path, body):
            raise AuthError("invalid builder api key signature")
        return key
