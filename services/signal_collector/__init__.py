"""Signal collector: follows target wallets and turns their trades into signals (A1-A6)."""
