"""Stream messages: flat string fields on the wire, exact round trips, bad entries rejected."""

from __future__ import annotations

import hashlib
import json

import pytest

from shared.messages import (
    AuditEvent,
    BadMessage,
    Command,
    ControlRequest,
    Fill,
    Message,
    MessageError,
    OrderEvent,
    SessionReport,
    Signal,
    TradeStatus,
    UnknownMessage,
    decode,
    stable_id,
)

ENVELOPE = {"id": "m-1", "ts_event": 1_700_000_000_000, "ts_init": 1_700_000_000_123, "producer": "test:1"}

SAMPLES: list[Message] = [
    Signal(**ENVELOPE, side="BUY", token_id="7132", account="0xabc", size=12.5, price=0.42, source="poll",
           condition_id="0xc0nd", slug="will-it-rain", outcome="Yes", title="Will it rain?", tx_hash="0xt"),
    Signal(**ENVELOPE, side="SELL", token_id="7132", account="0xabc", size=1.0, price=0.999, source="rtds"),
    Command(**ENVELOPE, action="START", token_id="7132", epoch=3,
            params={"maker_strategy": {"drop_pct": 0.05, "countdown": {"timezone": "UTC"}},
                    "flags": [1, "two", None, True]}, reason="signal"),
    Command(**ENVELOPE, action="STOP", token_id="7132", epoch=4),
    ControlRequest(**ENVELOPE, action="stop_token", target="7132", reason="manual", force=True),
    ControlRequest(**ENVELOPE, action="blacklist_add", target="will-it-rain", expires_at=1_700_000_360_000),
    ControlRequest(**ENVELOPE, action="halt", force=False),
    OrderEvent(**ENVELOPE, token_id="7132", epoch=3, worker="w1", intent_id="i1", order_id="0xo", side="BUY",
               price=0.41, size=10.0, status="placed"),
    OrderEvent(**ENVELOPE, token_id="7132", epoch=3, worker="w1", intent_id="i2", side="SELL", price=0.5,
               size=3.0, status="rejected", reason="not enough balance"),
    Fill(**ENVELOPE, token_id="7132", epoch=3, worker="w1", order_id="0xo", side="BUY", price=0.41, size=2.5,
         fee=0.0123),
    SessionReport(**ENVELOPE, token_id="7132", epoch=3, worker="w1", status="closed", position=-1.5,
                  avg_cost=0.4, realized_pnl=-0.25, reason="exit"),
    AuditEvent(**ENVELOPE, kind="token.rejected", level="warning", token_id="7132", reason="blacklisted",
               detail={"rule": "blacklist", "key": "will-it-rain", "nested": {"a": [1, 2]}}),
    AuditEvent(**ENVELOPE, kind="worker.dead"),
    Fill(**ENVELOPE, token_id="7132", epoch=3, worker="w1", order_id="0xo", side="SELL", price=0.5, size=4.0,
         trade_id="0xtrade", status="MATCHED"),
    TradeStatus(**ENVELOPE, token_id="7132", epoch=3, worker="w1", trade_id="0xtrade", status="FAILED",
                tx_hash="0xhash", reason="reverted"),
]


def test_every_message_type_has_a_sample() -> None:
    assert {type(m) for m in SAMPLES} == {Signal, Command, ControlRequest, OrderEvent, Fill, SessionReport,
                                          AuditEvent, TradeStatus}


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: f"{m.TYPE}")
def test_round_trip_is_exact(msg: Message) -> None:
    assert decode(msg.encode()) == msg


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: f"{m.TYPE}")
def test_round_trip_from_bytes(msg: Message) -> None:
    raw = {k.encode(): v.encode() for k, v in msg.encode().items()}
    assert decode(raw) == msg


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: f"{m.TYPE}")
def test_encode_gives_flat_strings_with_the_envelope(msg: Message) -> None:
    fields = msg.encode()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    assert fields["type"] == msg.TYPE
    assert fields["v"] == str(msg.VERSION)
    for name in ("id", "ts_event", "ts_init", "producer"):
        assert name in fields


def test_json_fields_are_readable_json_text() -> None:
    cmd = SAMPLES[2]
    assert isinstance(cmd, Command)
    fields = cmd.encode()
    assert json.loads(fields["params"]) == cmd.params
    assert fields["epoch"] == "3"


def test_bools_are_true_false_words() -> None:
    fields = ControlRequest(**ENVELOPE, action="stop_token", target="t", force=True).encode()
    assert fields["force"] == "true"
    fields = ControlRequest(**ENVELOPE, action="stop_token", target="t", force=False).encode()
    assert fields["force"] == "false"
    assert decode(fields).force is False  # type: ignore[attr-defined]


def test_messages_are_immutable() -> None:
    with pytest.raises(ValueError):
        SAMPLES[0].token_id = "other"  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", [
    {"type": "no_such_type"},
    {"v": "99"},
    {"v": "one"},
    {"type": ""},
])
def test_unknown_type_or_version_is_unknown_message(change: dict[str, str]) -> None:
    fields = {**SAMPLES[0].encode(), **change}
    with pytest.raises(UnknownMessage):
        decode(fields)


def test_missing_type_and_version_is_unknown_message() -> None:
    fields = SAMPLES[0].encode()
    del fields["type"], fields["v"]
    with pytest.raises(UnknownMessage):
        decode(fields)


@pytest.mark.parametrize(("msg", "change"), [
    (SAMPLES[0], {"side": "HOLD"}),
    (SAMPLES[0], {"size": "lots"}),
    (SAMPLES[0], {"ts_event": "yesterday"}),
    (SAMPLES[0], {"price": "nan"}),  # not a number passes every comparison silently
    (SAMPLES[0], {"size": "inf"}),
    (SAMPLES[2], {"epoch": "3.5x"}),
    (SAMPLES[2], {"params": "{not json"}),
    (SAMPLES[2], {"action": "PAUSE"}),
    (SAMPLES[4], {"force": "maybe"}),
    (SAMPLES[7], {"status": "lost"}),
    (SAMPLES[13], {"status": "SETTLED"}),
    (SAMPLES[14], {"status": "matched"}),
])
def test_bad_field_is_bad_message(msg: Message, change: dict[str, str]) -> None:
    with pytest.raises(BadMessage):
        decode({**msg.encode(), **change})


def test_missing_required_field_is_bad_message() -> None:
    fields = SAMPLES[0].encode()
    del fields["token_id"]
    with pytest.raises(BadMessage, match="token_id"):
        decode(fields)


def test_both_errors_are_message_errors() -> None:
    assert issubclass(UnknownMessage, MessageError)
    assert issubclass(BadMessage, MessageError)
    assert issubclass(MessageError, ValueError)


def test_stable_id_is_deterministic_and_distinguishing() -> None:
    a = stable_id("0xabc", "7132", 1_700_000_000, "BUY")
    assert a == stable_id("0xabc", "7132", 1_700_000_000, "BUY")
    assert a != stable_id("0xabc", "7132", 1_700_000_000, "SELL")
    assert a != stable_id("0xabc", "7132", 1_700_000_001, "BUY")
    assert len(a) == 24
    assert all(c in "0123456789abcdef" for c in a)
    # A fixed value: ids are stored in Redis and compared across processes and releases.
    assert stable_id("a", 1) == hashlib.sha256(b"a|1").hexdigest()[:24]


def test_a_field_added_by_a_newer_producer_is_ignored_not_fatal() -> None:
    from shared.messages import Signal, decode

    sig = Signal(id="s1", ts_event=1, ts_init=2, producer="p", side="BUY", token_id="t", account="a",
                 size=1.0, price=0.5, source="poll")
    fields = {**sig.encode(), "added_in_a_later_build": "x"}
    assert decode(fields) == sig


def test_a_fill_carries_its_trade_and_status_as_version_2() -> None:
    fields = SAMPLES[13].encode()
    assert (fields["v"], fields["trade_id"], fields["status"]) == ("2", "0xtrade", "MATCHED")
    assert TradeStatus.VERSION == 1
    assert SAMPLES[14].encode()["type"] == "trade"


def test_a_version_1_fill_still_decodes_as_a_confirmed_fill() -> None:
    # What producers wrote before fills carried a settlement status (an entry still on pf:fills).
    v1 = {"type": "fill", "v": "1", "id": "f1", "ts_event": "1", "ts_init": "2", "producer": "w1", "token_id": "7132",
          "epoch": "3", "worker": "w1", "order_id": "0xo", "side": "BUY", "price": "0.41", "size": "2.5", "fee": "0"}
    fill = decode(v1)
    assert isinstance(fill, Fill)
    assert (fill.trade_id, fill.status, fill.size) == ("", "CONFIRMED", 2.5)


def test_a_fill_without_a_status_counts_as_confirmed() -> None:
    # The paper executor and the venue path that settles at once write no status.
    fill = Fill(**ENVELOPE, token_id="7132", epoch=3, worker="w1", order_id="p1", side="BUY", price=0.4, size=1.0)
    assert fill.status == "CONFIRMED"
