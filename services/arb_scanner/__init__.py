"""arb_scanner: YES+NO and neg-risk set arbitrage, detection (E1-E3) and execution (E4)."""
