"""The worker's tick-to-decision histogram (services/maker_worker/latency.py)."""

from __future__ import annotations

from services.maker_worker.latency import LatencyHistogram, diff_counts, quantile


def test_samples_land_in_the_bucket_whose_upper_bound_covers_them() -> None:
    h = LatencyHistogram()
    for ms in (0.2, 0.5, 0.7, 3.2, 12_000.0):
        h.add(ms)
    assert h.buckets() == {"0.5": 2, "1": 1, "3.5": 1, "inf": 1}
    assert h.total == 5
    assert h.max_ms == 12_000.0


def test_quantile_is_the_upper_bound_of_the_nearest_rank_bucket() -> None:
    hist = {"0.5": 50, "2": 49, "9": 1}
    assert quantile(hist, 0.50) == 0.5
    assert quantile(hist, 0.99) == 2.0
    assert quantile(hist, 1.0) == 9.0
    assert quantile({}, 0.99) is None
    assert quantile({"inf": 1}, 0.5) == float("inf")


def test_a_window_is_the_difference_of_two_readings() -> None:
    h = LatencyHistogram()
    h.add(100.0)  # warm-up, before the window
    before = h.buckets()
    for _ in range(99):
        h.add(1.0)
    h.add(40.0)
    window = diff_counts(h.buckets(), before)
    assert window == {"1": 99, "40": 1}
    assert quantile(window, 0.99) == 1.0
    assert quantile(window, 1.0) == 40.0


def test_summary_reports_the_max_for_a_quantile_past_the_last_bound() -> None:
    h = LatencyHistogram()
    h.add(20_000.0)
    s = h.summary("decide")
    assert s["decide_n"] == 1
    assert s["decide_p99_ms"] == 20_000.0
    assert s["decide_hist"] == {"inf": 1}
