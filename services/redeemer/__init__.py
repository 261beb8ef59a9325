"""services/redeemer: positions held in markets that resolved, redeemed on the venue.

The orchestrator flags each token still held when its market resolved in ``pf:redeemable``; the
redeemer redeems them through the venue room (``shared/venue/positions.py``: gasless through the
relayer for a deposit, proxy or Safe wallet, a transaction over JSON-RPC for an EOA) and reports
each as a ``Redemption`` on ``pf:redemptions``, which the orchestrator books. Which to redeem when
is pure (plan.py); the service owns Redis and the venue account.
"""
