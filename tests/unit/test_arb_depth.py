"""The scanner's view of a REST book (services.arb_scanner.depth.book_sides): the shared decoder's
refusals hold, and the levels come out best first without empty ones."""

from __future__ import annotations

import pytest

from services.arb_scanner.depth import book_sides
from shared.venue.market_ws import MarketFrameError


def test_levels_come_best_first_without_empty_ones_whatever_the_wire_order() -> None:
    raw = {"asset_id": "1", "market": "0xabc",
           "bids": [{"price": "0.40", "size": "10"}, {"price": "0.45", "size": "3"}, {"price": "0.44", "size": "0"}],
           "asks": [{"price": "0.52", "size": "2"}, {"price": "0.47", "size": "8"}, {"price": "0.50", "size": "0"}]}
    bids, asks = book_sides(raw)
    assert bids == ((0.45, 3.0), (0.40, 10.0))
    assert asks == ((0.47, 8.0), (0.52, 2.0))


@pytest.mark.parametrize("level", [
    {"price": "NaN", "size": "10"}, {"price": "0.4", "size": "inf"}, {"price": "1.5", "size": "10"},
    {"price": "0.4", "size": "-3"},
])
def test_a_book_with_a_bad_level_is_refused_not_walked(level: dict[str, str]) -> None:
    # (the scanner's own decoder used to keep NaN levels: a walk on them sizes nonsense)
    with pytest.raises(MarketFrameError):
        book_sides({"asset_id": "1", "bids": [{"price": "0.4", "size": "10"}, level], "asks": []})
