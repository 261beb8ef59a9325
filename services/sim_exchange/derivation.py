"""Wallet addresses as the venue derives them from their owner (pure CREATE2 arithmetic).

The official SDK computes a signer's deposit wallet, proxy and Safe from the environment's
``wallet_derivation`` addresses and classifies the wallet it is given by comparing against them
(docs/venue.md W1-W4; sdk-wire §1.2). If the sim derived differently from what it advertises, the
SDK would silently sign as a "session key", so these formulas follow the contracts' CREATE2
init codes byte for byte:

* deposit wallet (beacon form, the current one): ``args = abi.encode(factory, bytes32(owner))``,
  salt ``keccak(args)``, init code = ERC-1967 beacon proxy prefix ‖ beacon ‖ runtime ‖ args;
* deposit wallet (UUPS form, the legacy one): the same args with an ERC-1967 implementation proxy;
* proxy wallet: salt ``keccak(abi.encodePacked(owner))``, the factory's minimal proxy to the
  implementation;
* Safe: salt ``keccak(abi.encode(owner))``, the published init-code hash.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

_BEACON_PREFIX = 0x6100523D8160233D3973
_BEACON_RUNTIME = bytes.fromhex(
    "60195155f3363d3d373d3d363d602036600436635c60da"
    "1b60e01b36527fa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6c"
    "b3582b35133d50545afa5036515af43d6000803e604d573d6000fd5b3d6000f3")
_UUPS_PREFIX = 0x61003D3D8160233D3973
_UUPS_RUNTIME = bytes.fromhex(
    "6009"
    "5155f3363d3d373d3d363d7f360894a13ba1a3210667c828492db98dca3e2076"
    "cc3735a920a3ca505d382bbc545af43d6000803e6038573d6000fd5b3d6000f3")
_PROXY_CODE = ("3d3d606380380380913d393d73{factory}5af4602a57600080fd5b602d8060366000396000f3363d3d373d3d3d363d73"
               "{impl}5af43d82803e903d91602b57fd5bf352e831dd" + "00" * 31 + "20" + "00" * 32)


def _raw(address: str) -> bytes:
    out = bytes.fromhex(address.removeprefix("0x").removeprefix("0X"))
    if len(out) != 20:
        raise ValueError(f"{address!r} is not a 20-byte address")
    return out


def create2(factory: str, salt: bytes, init_code_hash: bytes) -> str:
    return to_checksum_address(keccak(b"\xff" + _raw(factory) + salt + init_code_hash)[12:])


def _deposit_args(owner: str, factory: str) -> bytes:
    return encode(["address", "bytes32"], [to_checksum_address(factory), _raw(owner).rjust(32, b"\x00")])


def _proxy_prefix(base: int, args: bytes) -> bytes:
    return (base + (len(args) << 56)).to_bytes(10, "big")


def deposit_wallet(owner: str, wd: Mapping[str, str]) -> str:
    """The beacon deposit wallet of ``owner`` (what the SDK deploys and trades from)."""
    factory = wd["deposit_wallet_factory"]
    args = _deposit_args(owner, factory)
    code = _proxy_prefix(_BEACON_PREFIX, args) + _raw(wd["deposit_wallet_beacon"]) + _BEACON_RUNTIME + args
    return create2(factory, keccak(args), keccak(code))


def uups_deposit_wallet(owner: str, wd: Mapping[str, str]) -> str:
    """The legacy (UUPS) deposit wallet of ``owner``: still recognised, never deployed by the sim."""
    factory = wd["deposit_wallet_factory"]
    args = _deposit_args(owner, factory)
    code = _proxy_prefix(_UUPS_PREFIX, args) + _raw(wd["deposit_wallet_implementation"]) + _UUPS_RUNTIME + args
    return create2(factory, keccak(args), keccak(code))


def proxy_wallet(owner: str, wd: Mapping[str, str]) -> str:
    code = bytes.fromhex(_PROXY_CODE.format(factory=_raw(wd["proxy_factory"]).hex(),
                                            impl=_raw(wd["proxy_implementation"]).hex()))
    return create2(wd["proxy_factory"], keccak(_raw(owner)), keccak(code))


def safe_wallet(owner: str, wd: Mapping[str, str]) -> str:
    salt = keccak(encode(["address"], [to_checksum_address(owner)]))
    return create2(wd["safe_factory"], salt, bytes.fromhex(wd["safe_init_code_hash"].removeprefix("0x")))


DERIVE = {"deposit": deposit_wallet, "proxy": proxy_wallet, "safe": safe_wallet}
