"""Every SDK error as the venue room's error, by what the caller must do (shared/venue/sdk_errors.py),
and the per-signer rate-limit state the SDK's listener and 429s feed (shared/venue/ratelimit.py)."""

from __future__ import annotations

import httpx
import pytest
from polymarket.errors import (
    InsufficientLiquidityError,
    RateLimitError,
    RequestRejectedError,
    SigningError,
    TimeoutError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)
from polymarket.rate_limit import RateLimitUpdate

from shared.venue.errors import VenueAmbiguous, VenueRejected, VenueSetupError, VenueUnavailable
from shared.venue.ratelimit import SignerRateLimit
from shared.venue.sdk_errors import venue_error

OID = "0x" + "ab" * 32


def transport(cause: Exception) -> TransportError:
    err = TransportError(str(cause))
    err.__cause__ = cause
    return err


def test_throttling_and_trading_windows_are_unavailable_with_their_retry() -> None:
    e = venue_error(RateLimitError("slow down", retry_after=2.5), sent=True, order_id=OID)
    assert isinstance(e, VenueUnavailable)
    assert (e.status, e.retry_after) == (429, 2.5)
    restarting = venue_error(RequestRejectedError("restart", status=425, restriction="restarting"), sent=True)
    assert isinstance(restarting, VenueUnavailable)
    assert restarting.restriction == "restarting"
    post_only = venue_error(RequestRejectedError("po", status=503, code="post_only_mode", restriction="post_only",
                                                 retry_after=120.0), sent=True)
    assert isinstance(post_only, VenueUnavailable)
    assert (post_only.restriction, post_only.retry_after) == ("post_only", 120.0)
    cancel_only = venue_error(RequestRejectedError("co", status=503, restriction="cancel_only"), sent=True)
    assert isinstance(cancel_only, VenueUnavailable)
    assert cancel_only.restriction == "cancel_only"


def test_a_5xx_after_sending_is_ambiguous_with_the_order_id_and_a_read_is_unavailable() -> None:
    e = venue_error(RequestRejectedError("bad gateway", status=502), sent=True, order_id=OID)
    assert isinstance(e, VenueAmbiguous)
    assert e.order_id == OID
    assert isinstance(venue_error(RequestRejectedError("bad gateway", status=502), sent=False), VenueUnavailable)


def test_transport_errors_tell_not_sent_from_maybe_sent() -> None:
    for cause in (httpx.ConnectError("refused"), httpx.ConnectTimeout("t"), httpx.PoolTimeout("p")):
        assert isinstance(venue_error(transport(cause), sent=True, order_id=OID), VenueUnavailable)
    for cause in (httpx.ReadTimeout("t"), httpx.RemoteProtocolError("reset"), httpx.WriteTimeout("w")):
        e = venue_error(transport(cause), sent=True, order_id=OID)
        assert isinstance(e, VenueAmbiguous)
        assert e.order_id == OID
        assert isinstance(venue_error(transport(cause), sent=False), VenueUnavailable)


def test_unreadable_answers_and_waits_are_ambiguous_when_sent() -> None:
    for exc in (UnexpectedResponseError("not json"), TimeoutError("wait ran out")):
        assert isinstance(venue_error(exc, sent=True, order_id=OID), VenueAmbiguous)
        assert isinstance(venue_error(exc, sent=False), VenueUnavailable)


def test_refusals_are_rejected_and_credentials_are_setup() -> None:
    e = venue_error(RequestRejectedError("invalid amounts, the market buy orders maker amount supports a max "
                                         "accuracy of 2 decimals", status=400), sent=True, order_id=OID)
    assert isinstance(e, VenueRejected)
    assert e.status == 400
    assert "max accuracy" in e.text
    for exc in (UserInputError("bad"), SigningError("no"), InsufficientLiquidityError("thin")):
        assert isinstance(venue_error(exc, sent=True), VenueRejected)
    auth = venue_error(RequestRejectedError("Unauthorized/Invalid api key", status=401), sent=False)
    assert isinstance(auth, VenueSetupError)
    assert "PF_CLOB_API_KEY" in auth.fix


def test_the_rate_limit_state_keeps_what_the_venue_last_said() -> None:
    state = SignerRateLimit("0xabc")
    state.on_update(RateLimitUpdate(remaining=12.0, reset=1_000.0, tier="standard", warning=True))
    state.on_update(RateLimitUpdate(remaining=0.0))  # headers come independently
    assert (state.remaining, state.reset, state.tier, state.warning, state.reports) == (0.0, 1_000.0, "standard",
                                                                                       False, 2)
    assert state.wait_s(now=990.0) == pytest.approx(10.0)  # bucket empty until the reset
    state.on_throttled(30.0, now=995.0)
    assert state.wait_s(now=995.0) == pytest.approx(30.0)
    state.on_update(RateLimitUpdate(remaining=5.0))
    assert state.wait_s(now=1_030.0) == 0.0
    assert state.snapshot()["signer"] == "0xabc"
