"""cli/doctor verdicts (pure): wallet kind and deployment, the API key's signer, every approval the
contracts in use need, the pUSD balance, clock drift. Each wrong setup is one line naming the fix."""

from __future__ import annotations

from cli.doctor import (
    approval_checks,
    balance_check,
    deployed_check,
    drift_check,
    key_check,
    venue_checks,
    wallet_check,
)
from shared.venue import approvals
from shared.venue.approvals import ApprovalState
from shared.venue.environment import production
from shared.venue.errors import VenueSetupError
from shared.venue.preflight import Observed
from shared.venue.wallet_setup import WalletInfo

SIGNER = "0x" + "1" * 40
WALLET = "0x" + "2" * 40
DEPOSIT = WalletInfo("deposit", SIGNER, WALLET, True)


def test_wallet_kind_and_deployment() -> None:
    assert "deposit wallet 0x2222" in wallet_check(DEPOSIT).detail
    assert "signature type 3" in wallet_check(DEPOSIT).detail
    assert "signature type 0" in wallet_check(WalletInfo("eoa", SIGNER, SIGNER, True)).detail
    assert deployed_check(DEPOSIT).status == "ok"
    fresh = deployed_check(WalletInfo("deposit", SIGNER, WALLET, False))
    assert fresh.status == "warn"  # every service creates it through the relayer at start
    assert "polyfleet setup-wallet" in fresh.detail
    missing_safe = deployed_check(WalletInfo("safe", SIGNER, WALLET, False))
    assert missing_safe.status == "fail"
    assert "fix: log in to polymarket.com" in missing_safe.detail
    assert deployed_check(WalletInfo("eoa", SIGNER, SIGNER, True)).status == "ok"


def test_api_key_bound_to_the_signer() -> None:
    derived = key_check(DEPOSIT, "", "k-derived")
    assert derived.status == "ok"
    assert f"bound to signer {SIGNER}" in derived.detail
    assert f"signed by {SIGNER} for the deposit wallet {WALLET}" in derived.detail
    assert key_check(DEPOSIT, "k-given", "k-given").status == "ok"
    other = key_check(DEPOSIT, "k-given-elsewhere", "k-derived")  # the venue refused it for this signer
    assert other.status == "fail"
    assert "not bound to signer" in other.detail
    assert "fix: unset PF_CLOB_API_KEY" in other.detail


def test_every_required_approval_is_one_line_and_a_missing_one_names_contract_and_command() -> None:
    req = approvals.required(production())
    states = [ApprovalState(a, approvals.UNLIMITED if a.standard == "ERC20" else 1) for a in req]
    states[2] = ApprovalState(req[2], 5_000_000)  # pUSD to ExchangeV3: 5 only
    checks = approval_checks(states, WALLET)
    assert len(checks) == len(req)
    bad = [c for c in checks if c.status == "fail"]
    assert [c.name for c in bad] == ["approval pUSD -> ExchangeV3"]
    assert req[2].spender in bad[0].detail
    assert "allowance 5.00" in bad[0].detail
    assert "fix: `polyfleet setup-wallet`" in bad[0].detail
    assert {c.status for c in checks} - {"fail"} == {"ok"}


def test_balance() -> None:
    assert balance_check(25.0, "live").detail == "25.00 pUSD available"
    assert balance_check(0.0, "live").status == "fail"
    assert balance_check(0.0, "sim").status == "warn"
    assert balance_check(None, "live").status == "warn"  # no wallet yet


def test_what_could_not_be_seen_is_a_failure_and_a_bad_address_stops_the_wallet_lines() -> None:
    seen = Observed(info=DEPOSIT, used_key="k", balance=3.0, problems=[("approvals", "the RPC did not answer")])
    names = [(c.name, c.status) for c in venue_checks(seen, "live")]
    assert names == [("wallet", "ok"), ("wallet deployed", "ok"), ("api key", "ok"), ("collateral", "ok"),
                     ("approvals", "fail")]
    bad = Observed(setup_errors=[("wallet", VenueSetupError("0xabc is not the deposit wallet", "leave it empty"))])
    [line] = venue_checks(bad, "live")
    assert (line.name, line.status) == ("wallet", "fail")
    assert line.detail == "0xabc is not the deposit wallet; fix: leave it empty"


def test_clock_drift_thresholds() -> None:
    assert drift_check(1000.0, 1000.5).status == "ok"
    assert drift_check(1000.0, 1003.0).status == "warn"
    assert drift_check(1000.0, 940.0).status == "fail"
