"""The official SDK's errors as the venue room's (shared/venue/errors.py), by what the caller must do.

The SDK raises by *how* a call failed (transport, HTTP status, parse); the caller needs to know
whether anything happened (sdk-wire.md §12, docs/venue.md O1-O3, R2):

===========================================================  =====================  ==============
SDK error                                                    mutating call (sent)   read
===========================================================  =====================  ==============
``RateLimitError`` (429)                                     unavailable            unavailable
``RequestRejectedError`` with a restriction (425 restarting,
503 post-only / cancel-only window)                          unavailable            unavailable
``RequestRejectedError`` 401 / 403                           setup (credentials)    setup
``RequestRejectedError`` other 4xx                           rejected               rejected
``RequestRejectedError`` 5xx                                 **ambiguous**          unavailable
``TransportError`` before a connection (connect, pool)       unavailable            unavailable
``TransportError`` after (read/write timeout, reset)         **ambiguous**          unavailable
``UnexpectedResponseError`` (2xx, unreadable)                **ambiguous**          unavailable
``TimeoutError`` (a wait ran out)                            **ambiguous**          unavailable
``UserInputError``, ``SigningError``,
``InsufficientLiquidityError`` (nothing sent)                rejected               rejected
===========================================================  =====================  ==============

An ambiguous order carries its own id (the EIP-712 hash, order_hash.py) so the caller can ask the
venue about that very order.
"""

from __future__ import annotations

import httpx
from polymarket.errors import (
    InsufficientLiquidityError,
    PolymarketError,
    RateLimitError,
    RequestRejectedError,
    SigningError,
    TimeoutError,
    TransactionFailedError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)

from shared.venue.errors import VenueAmbiguous, VenueError, VenueRejected, VenueSetupError, VenueUnavailable

# httpx failures that happen before the request could reach the venue
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
CREDENTIALS_FIX = ("check PF_CLOB_API_KEY / _SECRET / _PASSPHRASE belong to PF_PRIVATE_KEY (or unset them to derive "
                   "the key's own), and that this machine's clock is right (polyfleet doctor)")


VENUE_FAILURES = (PolymarketError, OSError)  # what an SDK call raises when the venue failed it


def venue_error(exc: BaseException, *, sent: bool, order_id: str = "", what: str = "") -> VenueError:
    """``exc`` (from an SDK call) as a :class:`VenueError`. ``sent``: the call changes state at the
    venue (an order, a cancel), so an unanswered one may have taken effect. ``order_id``: the id of
    the order sent, carried by an ambiguous answer. ``what`` prefixes the text (``"POST /order"``)."""
    text = f"{what}: {exc}" if what else str(exc)
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, RateLimitError):
        return VenueUnavailable(text, status=429, retry_after=exc.retry_after)
    if isinstance(exc, RequestRejectedError):
        return _rejected(exc, text, sent, order_id)
    if isinstance(exc, TransportError):
        if isinstance(exc.__cause__, _NOT_SENT) or not sent:
            return VenueUnavailable(text)
        return VenueAmbiguous(text, order_id)
    if isinstance(exc, UnexpectedResponseError | TimeoutError):
        return VenueAmbiguous(text, order_id) if sent else VenueUnavailable(text)
    if isinstance(exc, UserInputError | SigningError | InsufficientLiquidityError | TransactionFailedError):
        return VenueRejected(text)
    # any other SDK error, or the network failing under it (OSError): we cannot tell what happened
    return VenueAmbiguous(text, order_id) if sent else VenueUnavailable(text)


def _rejected(exc: RequestRejectedError, text: str, sent: bool, order_id: str) -> VenueError:
    if exc.restriction is not None or exc.status == 425:
        return VenueUnavailable(text, status=exc.status, retry_after=exc.retry_after,
                                restriction=exc.restriction or "restarting")
    if exc.status in (401, 403):
        return VenueSetupError(f"the venue refused the API credentials ({text})", CREDENTIALS_FIX)
    if exc.status >= 500:
        return VenueAmbiguous(text, order_id) if sent else VenueUnavailable(text, status=exc.status,
                                                                            retry_after=exc.retry_after)
    return VenueRejected(str(exc), status=exc.status)
