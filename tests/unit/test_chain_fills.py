"""OrderFilled logs -> the Data API's trades (shared/venue/chain_fills.py; docs/venue.md K1-K3). No I/O.

The logs are written by hand, word by word, as the exchanges emit them (topics: topic0, orderHash,
maker, taker; data: the non-indexed fields in 32-byte words), independent of any ABI library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.signal_collector.signals import signal_id
from shared.venue.chain_fills import (
    CURRENT_TOPIC,
    LEGACY_TOPIC,
    BadLog,
    address_topic,
    decode_log,
    wallet_trades,
)
from shared.venue.data_api import parse_trade

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "polymarket"
WALLET = "0x6af75d4e4aaf700450efbac3708cce1665810ff1"
OTHER = "0x00000000000000000000000000000000000b0b00"
EXCHANGE = "0xe111180000d2663c0091e4f400237545b87b996b"  # CTF Exchange V2 (venue.md K2)
YES = 71321045679252212594626385532706912750332728571942532289631379312455583992563
NO = 52114319501245915516055106046884209969926127482827954674443846427813813222426
TX = "0x9f0e6c2d4b1a38577e6f5d4c3b2a19087f6e5d4c3b2a19087f6e5d4c3b2a1908"
HASH_A = "0x" + "a1" * 32
HASH_B = "0x" + "b2" * 32
ZERO = "0" * 64


def word(n: int) -> str:
    return f"{n:064x}"


def current(maker: str, taker: str, side: int, token: int, maker_amount: int, taker_amount: int, fee: int = 0,
            index: int = 0, order: str = HASH_A, **kw: Any) -> dict[str, Any]:
    """A current-shape OrderFilled log: 7 data words (side, tokenId, amounts, fee, builder, metadata)."""
    return {"address": EXCHANGE, "topics": [CURRENT_TOPIC, order, address_topic(maker), address_topic(taker)],
            "data": "0x" + word(side) + word(token) + word(maker_amount) + word(taker_amount) + word(fee) + ZERO + ZERO,
            "blockNumber": "0x4f3a2b1", "transactionHash": TX, "transactionIndex": "0x3", "logIndex": hex(index),
            "blockHash": "0x" + "cd" * 32, "removed": False, **kw}


def test_the_topics_are_the_keccak_of_the_signatures_read() -> None:
    # values of keccak256 over the signatures in the exchanges' sources (venue.md K1)
    assert CURRENT_TOPIC == "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
    assert LEGACY_TOPIC == "0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6"


def test_a_current_log_decodes_every_field() -> None:
    log = current(OTHER, WALLET, 1, YES, 120_500_000, 56_635_000, fee=12, index=7)
    f = decode_log(log)
    assert (f.exchange, f.tx_hash, f.block, f.log_index, f.order_hash) == (EXCHANGE, TX, 0x4F3A2B1, 7, HASH_A)
    assert (f.maker, f.taker, f.side, f.token_id) == (OTHER, WALLET, "SELL", str(YES))
    assert (f.shares, f.collateral, f.fee, f.price) == (120_500_000, 56_635_000, 12, 0.47)
    buy = decode_log(current(WALLET, EXCHANGE, 0, YES, 56_635_000, 120_500_000))
    assert (buy.side, buy.shares, buy.collateral, buy.is_taker_order) == ("BUY", 120_500_000, 56_635_000, True)


def test_a_legacy_log_reads_the_side_from_the_collateral_asset_id() -> None:
    def legacy(maker_asset: int, taker_asset: int, making: int, taking: int) -> dict[str, Any]:
        return {**current(WALLET, OTHER, 0, 0, 1, 1), "topics": [LEGACY_TOPIC, HASH_B, address_topic(WALLET),
                                                                   address_topic(OTHER)],
                "data": "0x" + word(maker_asset) + word(taker_asset) + word(making) + word(taking) + word(0)}
    buy = decode_log(legacy(0, YES, 50_000_000, 100_000_000))  # gives collateral: a BUY of YES at 0.5
    assert (buy.side, buy.token_id, buy.shares, buy.collateral, buy.price) == ("BUY", str(YES), 100_000_000,
                                                                                50_000_000, 0.5)
    sell = decode_log(legacy(YES, 0, 100_000_000, 60_000_000))
    assert (sell.side, sell.token_id, sell.shares, sell.collateral, sell.price) == ("SELL", str(YES), 100_000_000,
                                                                                    60_000_000, 0.6)
    with pytest.raises(BadLog, match="exactly one asset"):
        decode_log(legacy(YES, NO, 1, 1))


@pytest.mark.parametrize(("change", "error"), [
    ({"topics": [CURRENT_TOPIC, HASH_A, address_topic(WALLET)]}, "4 topics"),
    ({"topics": ["0x" + "ee" * 32, HASH_A, address_topic(WALLET), address_topic(OTHER)]}, "not an OrderFilled"),
    ({"topics": [CURRENT_TOPIC, HASH_A, "0x" + "ff" * 32, address_topic(OTHER)]}, "not an address"),
    ({"data": "0x" + word(0) * 5}, "7 words"),
    ({"data": "0x" + word(2) + word(YES) + word(1) + word(1) + word(0) + ZERO + ZERO}, "side 2"),
    ({"data": "0x" + word(0) + word(YES) + word(0) + word(1) + word(0) + ZERO + ZERO}, "moves shares"),
    ({"transactionHash": "0x12"}, "transaction hash"),
    ({"blockNumber": 5}, "blockNumber"),
])
def test_a_log_that_is_not_a_readable_fill_is_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises(BadLog, match=error):
        decode_log({**current(WALLET, OTHER, 0, YES, 1, 2), **change})


def test_a_taker_fill_is_the_documented_data_api_row_with_the_same_signal_id() -> None:
    """The fixture's row 1 (a BUY of 120.5 YES at 0.47) as the chain shows it: the crowd's SELL
    order met by the wallet, then the wallet's own taker-order log."""
    row = json.loads((FIXTURES / "data_api_trades.json").read_text())[1]
    logs = [current(OTHER, WALLET, 1, YES, 120_500_000, 56_635_000, index=0),
            current(WALLET, EXCHANGE, 0, YES, 56_635_000, 120_500_000, index=1, order=HASH_B)]
    [got] = wallet_trades(WALLET, [decode_log(x) for x in logs], {0x4F3A2B1: row["timestamp"]})
    api = parse_trade(row)
    assert (got.side, got.token_id, got.size, got.price, got.tx_hash) == ("BUY", str(YES), 120.5, 0.47, TX)
    assert got.key == api.key
    assert signal_id(WALLET, got) == signal_id(WALLET, api)


def test_a_maker_fill_is_its_own_log_and_the_counterpartys_taker_log_is_not_a_trade_of_it() -> None:
    logs = [decode_log(current(WALLET, OTHER, 0, YES, 4_200_000, 10_000_000)),
            decode_log(current(OTHER, EXCHANGE, 1, YES, 10_000_000, 4_200_000, index=1))]
    [got] = wallet_trades(WALLET, logs, {0x4F3A2B1: 100})
    assert (got.account, got.side, got.size, got.price, got.timestamp) == (WALLET, "BUY", 10.0, 0.42, 100)
    assert [(t.side, t.size) for t in wallet_trades(OTHER, logs, {0x4F3A2B1: 100})] == [("SELL", 10.0)]


def test_a_taker_fill_without_its_own_log_is_read_as_a_complementary_match() -> None:
    [got] = wallet_trades(WALLET, [decode_log(current(OTHER, WALLET, 0, YES, 4_200_000, 10_000_000))], {0x4F3A2B1: 1})
    assert (got.side, got.token_id, got.price) == ("SELL", str(YES), 0.42)  # the maker bought: the wallet sold


def test_a_mint_match_is_the_wallets_own_outcome_at_one_minus_the_makers_price() -> None:
    """Both bought: the maker YES at 0.42, so the wallet bought NO at 0.58 (its own log says NO)."""
    logs = [decode_log(current(OTHER, WALLET, 0, YES, 4_200_000, 10_000_000)),
            decode_log(current(WALLET, EXCHANGE, 0, NO, 5_800_000, 10_000_000, index=1, order=HASH_B))]
    [got] = wallet_trades(WALLET, logs, {0x4F3A2B1: 1})
    assert (got.side, got.token_id, got.size, got.price) == ("BUY", str(NO), 10.0, 0.58)


def test_a_rounded_down_taking_amount_still_gives_the_orders_price() -> None:
    """A maker SELL at 0.59 filled for 1.694914 shares takes floor(1.694914 x 0.59) = 0.999999."""
    [got] = wallet_trades(WALLET, [decode_log(current(WALLET, OTHER, 1, YES, 1_694_914, 999_999))], {0x4F3A2B1: 1})
    assert (got.size, got.price) == (1.694914, 0.59)


def test_removed_logs_and_other_wallets_give_nothing() -> None:
    removed = decode_log(current(WALLET, OTHER, 0, YES, 1_000_000, 2_000_000, removed=True))
    assert removed.removed
    assert wallet_trades(WALLET, [removed], {0x4F3A2B1: 1}) == []
    assert wallet_trades("0x" + "99" * 20, [decode_log(current(WALLET, OTHER, 0, YES, 1, 2))], {}) == []
