"""The whole-system soak: chaos run (:mod:`harness.soak.run`), invariants, secret leaks, a webhook receiver."""
