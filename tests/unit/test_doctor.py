"""cli/doctor verdicts (pure): wallet/signature type/funder, clock drift, balance and allowances."""

from __future__ import annotations

from cli.doctor import REQUIRED_SPENDERS, balance_checks, drift_check, wallet_check

SIGNER = "0x" + "1" * 40
PROXY = "0x" + "2" * 40


def test_wallet_signature_type_and_funder() -> None:
    assert wallet_check(SIGNER, 0, "").status == "ok"
    assert wallet_check(SIGNER, 0, SIGNER.upper().replace("0X", "0x")).status == "ok"
    eoa_with_proxy = wallet_check(SIGNER, 0, PROXY)
    assert eoa_with_proxy.status == "fail"
    assert "polymarket.wallet" in eoa_with_proxy.detail
    assert wallet_check(SIGNER, 2, PROXY).status == "ok"
    assert "needs polymarket.wallet_address" in wallet_check(SIGNER, 1, "").detail
    assert wallet_check(SIGNER, 2, SIGNER).status == "fail"
    assert wallet_check(SIGNER, 7, "").status == "fail"


def test_clock_drift_thresholds() -> None:
    assert drift_check(1000.0, 1000.5).status == "ok"
    assert drift_check(1000.0, 1003.0).status == "warn"
    assert drift_check(1000.0, 940.0).status == "fail"


def test_balance_and_every_required_allowance() -> None:
    full = {"balance": "25000000", "allowances": {a: str(2**256 - 1) for a in REQUIRED_SPENDERS}}
    checks = balance_checks(full, "live")
    assert [c.status for c in checks] == ["ok"] * 4
    assert "25.00 pUSD" in checks[0].detail
    missing_adapter = {"balance": "25000000",
                       "allowances": {a: "0" if "Adapter" in label else "99000000" for a, label in REQUIRED_SPENDERS.items()}}
    by_name = {c.name: c for c in balance_checks(missing_adapter, "live")}
    assert by_name["allowance Neg Risk Adapter"].status == "fail"
    assert by_name["allowance CTF Exchange V2"].status == "ok"
    low = {"balance": "25000000", "allowances": {a: "1000000" for a in REQUIRED_SPENDERS}}
    assert {c.status for c in balance_checks(low, "live")[1:]} == {"warn"}
    empty = balance_checks({"balance": "0", "allowances": {}}, "live")
    assert empty[0].status == "fail"
    assert all(c.status == "fail" for c in empty[1:])
    assert balance_checks({"balance": "x"}, "live")[0].status == "fail"
