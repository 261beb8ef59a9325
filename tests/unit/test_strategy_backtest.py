"""The backtest entry points, run as real subprocesses over tick files (docs/strategy.md section 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.maker_worker.backtest import Row, TickFileError, main, read_ticks, run
from shared.config import ExecutionSection, MakerStrategySection, RunParamsSection

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "examples" / "ticks_sample.csv"


def backtest(*args: str, module: str = "services.maker_worker.backtest") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", module, *(["backtest"] if module == "cli.main" else []), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_sample_file_buys_the_drop_sells_the_profit_and_reports_pnl() -> None:
    out = backtest(str(SAMPLE), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(t["side"], t["size"], t["price"]) for t in data["trades"]] == [
        ("BUY", 10.0, 0.57), ("SELL", 10.0, 0.60), ("BUY", 10.0, 0.58)]
    s = data["summary"]
    assert s["realized_pnl"] == pytest.approx(0.30)
    assert (s["position"], s["avg_cost"]) == (10.0, 0.58)
    assert s["unrealized_pnl"] == pytest.approx(0.10)
    assert s["state"] == "LONG"


def test_text_report_and_the_polyfleet_command() -> None:
    out = backtest(str(SAMPLE), module="cli.main")
    assert out.returncode == 0, out.stderr
    assert "realised PnL    0.3000" in out.stdout
    assert "unrealised PnL  0.1000" in out.stdout
    assert out.stdout.count("BUY") == 2


def test_jsonl_with_overrides_and_missing_sides(tmp_path: Path) -> None:
    f = tmp_path / "ticks.jsonl"
    rows = [{"ts": 1_768_492_800, "bid": 0.49, "ask": 0.50}, {"ts": 1_768_492_801, "bid": None, "ask": None},
            {"ts": 1_768_492_802, "bid": 0.55, "ask": 0.56, "ask_size": 3}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = backtest(str(f), "--json", "--set", "maker_strategy.drop_pct=0", "--set", "maker_strategy.profit_pct=0.1")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(t["side"], t["price"]) for t in data["trades"]] == [("BUY", 0.50), ("SELL", 0.55)]
    assert data["summary"]["realized_pnl"] == pytest.approx(0.5)


@pytest.mark.parametrize(("content", "needle"), [
    ("ts,bid,ask\n1,0.5,0.6\n0,0.5,0.6\n", ":3: ts goes backwards"),
    ("ts,bid,ask\n1,0.5,1.6\n", ":2: price 1.6"),
    ("ts,bid\n1,0.5\n", ":2: needs ts, bid and ask"),
])
def test_bad_files_exit_2_naming_the_line(tmp_path: Path, content: str, needle: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    assert main([str(f)]) == 2
    assert needle in capsys.readouterr().err


def test_bad_parameter_exits_2_naming_the_key() -> None:
    out = backtest(str(SAMPLE), "--set", "maker_strategy.drop_pct=2")
    assert out.returncode == 2
    assert "drop_pct" in out.stderr


def test_run_rejects_feed_back_into_the_strategy(tmp_path: Path) -> None:
    """With too little paper cash the BUY is refused; the strategy rolls back and waits its cooldown."""
    rows = [Row(0, 0.49, 0.50), Row(1000, 0.49, 0.50), Row(7000, 0.49, 0.50)]
    res = run(rows, MakerStrategySection(drop_pct=0, order_size=10), RunParamsSection(), ExecutionSection(), cash=1.0)
    assert [r["error"] for r in res.rejects] == ["not enough balance / allowance"] * 2  # t=0 and t=7s, not t=1s
    assert res.final["state"] == "FLAT"


def test_read_ticks_accepts_iso_seconds_and_ms(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("ts,bid,ask\n2026-01-15T16:00:00Z,0.5,0.6\n1768492801,0.5,0.6\n1768492802000,,0.6\n")
    assert [r.ts_ms for r in read_ticks(f)] == [1768492800000, 1768492801000, 1768492802000]
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"ts": 1, "bid": 0.5, "ask": 0.6}\n{oops\n')
    with pytest.raises(TickFileError, match=":2: not JSON"):
        list(read_ticks(bad))
