"""One root for the errors of every parser of outside input (shared/input_errors.py, H5)."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_settings
from shared.input_errors import InputError
from shared.messages import MessageError, decode
from shared.venue.data_api import BadTrade, parse_trade
from shared.venue.errors import VenueRejected
from shared.venue.gamma import BadMarket, parse_market
from shared.venue.gamma_keyset import BadKeysetPage, parse_keyset_page
from shared.venue.live_data import BadFrame, parse_frame
from shared.venue.market_ws import MarketFrameError, decode_frame, decode_rest_book


@pytest.mark.parametrize(("parse", "own_error"), [
    (lambda: decode_frame("{not json"), MarketFrameError),
    (lambda: decode_rest_book({"asset_id": "1", "bids": "nope"}), MarketFrameError),
    (lambda: parse_keyset_page([], "markets"), BadKeysetPage),
    (lambda: parse_trade({"side": "BUY"}), BadTrade),
    (lambda: parse_market({"id": 1}), BadMarket),
    (lambda: parse_frame("{not json"), BadFrame),
    (lambda: decode({"type": "signal", "v": "1"}), MessageError),
])
def test_each_parser_raises_its_own_error_under_the_one_root(parse, own_error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(own_error) as caught:
        parse()
    assert isinstance(caught.value, InputError)


def test_a_bad_config_is_bad_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "polyfleet.yaml"
    path.write_text("scheduler: {max_concurrent_jobs: -1}\n")
    with pytest.raises(InputError) as caught:
        load_settings(path, {})
    assert isinstance(caught.value, ConfigError)


def test_a_bad_keyset_page_is_still_the_venue_refusing() -> None:
    """Callers of the keyset walk catch VenueRejected; the new root must not take that away."""
    with pytest.raises(VenueRejected):
        parse_keyset_page({"markets": [], "next_cursor": ""}, "markets")
