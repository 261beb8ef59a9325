"""What the venue's answers mean for the caller, named by what the caller must do.

::

    VenueError                      anything the venue room raises
    ├── VenueSetupError             fatal: a person must fix the setup; the message names the fix.
    │                               Nothing was sent. (unknown market version, wallet not deployed,
    │                               API key bound to another signer, missing approval, ...)
    ├── VenueRejected               the venue answered no: nothing happened. Record it, move on.
    │   └── VenueShortOfBalance     ... because the wallet does not hold the shares (yet): a merge
    │                               of shares bought moments ago, before their trades settled.
    ├── VenueUnavailable            transient, and nothing happened: throttled (429), restarting (425),
    │                               a post-only or cancel-only window, 5xx before the venue took the
    │                               request. Retry after ``retry_after`` seconds (or a backoff).
    ├── VenueAmbiguous              the request may have taken effect (no answer, a timeout, a 5xx
    │                               after it was sent): ask the venue before doing anything else.
    └── VenueNotSent                the caller's own send gate said no right before the POST:
                                    nothing left this process (the venue was not asked).

The branches are siblings: a caller that catches one never swallows another by accident (an
ambiguous send caught as "rejected" would be sent again; a setup error caught as "transient" would
be retried forever).
"""

from __future__ import annotations


class VenueError(Exception):
    """Root of every error the venue room raises."""


class VenueSetupError(VenueError):
    """The setup is wrong and a person must fix it; nothing was sent. ``fix`` says how."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; fix: {fix}")
        self.problem = problem
        self.fix = fix


class UnknownMarketVersion(VenueSetupError):
    """A market whose Gamma ``version`` polyfleet does not know (or that contradicts its ids)."""


class VenueRejected(VenueError):
    """The venue refused the request; nothing happened. ``text`` is the venue's own message."""

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class VenueShortOfBalance(VenueRejected):
    """Refused because the wallet does not hold what the call needs: nothing happened. Shares
    bought moments ago are only there once their trades settle (docs/venue.md T2), so a caller
    waiting for them may try again later; anyone else treats it as the rejection it is."""


class VenueUnavailable(VenueError):
    """Transient, and the request did not take effect: try again after ``retry_after`` seconds
    (None: use a backoff). ``restriction`` names a trading window (``restarting``, ``post_only``,
    ``cancel_only``) when the venue said so."""

    def __init__(self, text: str, status: int | None = None, retry_after: float | None = None,
                 restriction: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.retry_after = retry_after
        self.restriction = restriction


class VenueAmbiguous(VenueError):
    """The request may have taken effect; the caller must ask the venue before acting again.
    ``order_id`` is the id the order would have (its EIP-712 hash) when the request was an order."""

    def __init__(self, text: str, order_id: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.order_id = order_id


class VenueNotSent(VenueError):
    """The caller's send gate (``may_send``), asked right before the POST, said no: the order never
    left. Not a venue answer, so it spends no attempt and concedes no price."""

    def __init__(self, text: str = "not sent: the send gate closed") -> None:
        super().__init__(text)
        self.text = text
