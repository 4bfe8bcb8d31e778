"""``python -m bench``: the throughput, request and memory figures of issue 5.

Runs the tap and the target as real child processes against the local Stripe simulator
(``stripe_sim``) and prints one table of measured figures against their targets,
also written to ``bench-results/latest.md``. Kept out of pytest on purpose: speed is
measured here, never asserted in tests.
"""
