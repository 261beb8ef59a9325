"""shared/venue positions, approvals and wallet setup: the pure parts (what an SDK error means,
which approvals the contracts in use need, which wallet setups are wrong and the fix each names)."""

from __future__ import annotations

import httpx
import pytest
from polymarket.errors import (
    RateLimitError,
    RequestRejectedError,
    SigningError,
    TransactionFailedError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)
from polymarket.errors import TimeoutError as SdkTimeoutError

from shared.venue import approvals
from shared.venue.environment import production
from shared.venue.errors import VenueAmbiguous, VenueRejected, VenueSetupError, VenueUnavailable
from shared.venue.positions import after_send, before_send, transient_wait_error
from shared.venue.wallet_setup import (
    WalletInfo,
    address_error,
    derived_addresses,
    key_binding_error,
    not_deployed_error,
)

SIGNER = "0x" + "1" * 40


def _transport(cause: Exception) -> TransportError:
    exc = TransportError("transport failed")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(("exc", "kind"), [
    (UserInputError("Merge amount exceeds available balance"), VenueRejected),  # checked locally: nothing sent
    (SigningError("bad key"), VenueRejected),
    (RequestRejectedError("JSON-RPC eth_estimateGas failed: execution reverted", status=200), VenueRejected),
    (RequestRejectedError("batch nonce 3 does not match", status=400), VenueRejected),
    (RateLimitError("slow down", retry_after=2.0), VenueUnavailable),
    (_transport(httpx.ConnectError("refused")), VenueUnavailable),  # never connected: nothing sent
    (RequestRejectedError("bad gateway", status=502), VenueAmbiguous),  # a proxy may have forwarded the submit
    (_transport(httpx.ReadTimeout("no answer")), VenueAmbiguous),
    (UnexpectedResponseError("not JSON"), VenueAmbiguous),
])
def test_an_error_before_the_handle_is_rejected_only_when_nothing_can_have_been_sent(
        exc: Exception, kind: type) -> None:
    got = before_send("merge 5", exc)
    assert type(got) is kind
    assert "merge 5" in str(got)


def test_a_gasless_call_without_a_relayer_key_is_a_setup_error_naming_the_keys() -> None:
    got = before_send("split 5", UserInputError("Gasless transactions require a Builder API Key or Relayer API Key"))
    assert isinstance(got, VenueSetupError)
    assert "PF_BUILDER_API_KEY" in got.fix  # the relayer key the account opener reads


def test_after_sending_only_a_failed_transaction_is_a_rejection() -> None:
    assert type(after_send("split", TransactionFailedError("reverted"), 5)) is VenueRejected
    unknown = after_send("split", SdkTimeoutError("Timed out waiting for transaction"), 5)
    assert type(unknown) is VenueAmbiguous
    ours = after_send("split", TimeoutError(), 5)  # polyfleet's own deadline
    assert type(ours) is VenueAmbiguous
    assert "within 5 s" in str(ours)


def test_a_failed_poll_is_polled_again_a_verdict_is_not() -> None:
    assert transient_wait_error(_transport(httpx.ReadTimeout("x")))
    assert transient_wait_error(RequestRejectedError("down", status=503))
    assert not transient_wait_error(TransactionFailedError("reverted"))
    assert not transient_wait_error(SdkTimeoutError("gave up"))
    assert not transient_wait_error(RequestRejectedError("unknown transaction", status=404))


def test_required_approvals_are_every_contract_in_use_with_the_environments_addresses() -> None:
    env = production()
    req = approvals.required(env)
    pairs = {(a.token, a.standard, a.spender) for a in req}
    a = env.address
    pusd, ctf, pm = a("collateral_token"), a("conditional_tokens"), a("position_manager")
    for spender in ("standard_exchange", "neg_risk_exchange", "exchange_v3", "collateral_adapter",
                    "neg_risk_collateral_adapter", "protocol_v2_router"):
        assert (pusd, "ERC20", a(spender)) in pairs, spender
    for spender in ("standard_exchange", "neg_risk_exchange", "collateral_adapter", "neg_risk_collateral_adapter",
                    "neg_risk_adapter"):
        assert (ctf, "ERC1155", a(spender)) in pairs, spender
    assert (pm, "ERC1155", a("exchange_v3")) in pairs
    assert (pm, "ERC1155", a("protocol_v2_router")) in pairs
    assert len(pairs) == len(req) == 13
    # the SDK's setup also approves these; polyfleet uses none of them
    unused = {a("auto_redeem_operator"), a("perps_deposit_contract"), a("binary_module"), a("neg_risk_module")}
    assert not unused & {x.spender for x in req}


def test_an_allowance_counts_only_when_unlimited_and_the_error_names_contract_and_command() -> None:
    pusd_v3, *_ = [x for x in approvals.required(production()) if x.spender_name == "ExchangeV3"]
    assert not approvals.ApprovalState(pusd_v3, 10**6).ok
    assert approvals.ApprovalState(pusd_v3, 2**256 - 1).ok
    err = approvals.missing_error([pusd_v3], "0xW")
    assert "pUSD allowance to the ExchangeV3" in err.problem
    assert pusd_v3.spender in err.problem
    assert "polyfleet setup-wallet" in err.fix


def test_grant_calls_approve_max_and_set_approval_for_all() -> None:
    req = approvals.required(production())
    got = approvals.calls([req[0], req[-1]])
    assert got[0].to == req[0].token
    assert got[0].data.startswith("0x095ea7b3")  # approve(spender, 2**256 - 1)
    assert got[0].data.endswith("f" * 64)
    assert got[1].to == req[-1].token
    assert got[1].data.startswith("0xa22cb465")  # setApprovalForAll(operator, true)
    assert got[1].data.endswith("1")


def test_a_configured_wallet_must_be_the_signers_own() -> None:
    env = production()
    beacon, uups = derived_addresses("deposit", SIGNER, env)
    assert address_error("deposit", SIGNER, "", env) is None
    assert address_error("deposit", SIGNER, beacon.lower(), env) is None
    assert address_error("deposit", SIGNER, uups, env) is None
    err = address_error("deposit", SIGNER, "0x" + "2" * 40, env)
    assert err is not None
    assert beacon in err.problem
    assert "session key" in err.problem
    assert "leave polymarket.wallet_address empty" in err.fix
    assert address_error("safe", SIGNER, derived_addresses("safe", SIGNER, env)[0], env) is None
    assert address_error("proxy", SIGNER, beacon, env) is not None


def test_only_a_missing_proxy_or_safe_is_a_setup_error() -> None:
    assert not_deployed_error(WalletInfo("deposit", SIGNER, "0xW", False)) is None  # the relayer creates it
    assert not_deployed_error(WalletInfo("eoa", SIGNER, SIGNER, True)) is None
    assert not_deployed_error(WalletInfo("safe", SIGNER, "0xS", True)) is None
    err = not_deployed_error(WalletInfo("proxy", SIGNER, "0xP", False))
    assert err is not None
    assert "cannot create" in err.problem
    assert "polymarket.com" in err.fix


def test_an_api_key_the_venue_refused_for_the_signer_is_named() -> None:
    assert key_binding_error("", "derived", SIGNER) is None  # none given: derived for the signer
    assert key_binding_error("k1", "k1", SIGNER) is None
    err = key_binding_error("k1-abcdefgh", "derived", SIGNER)
    assert err is not None
    assert SIGNER in err.problem
    assert "unset PF_CLOB_API_KEY" in err.fix
