"""Singer tap for Stripe."""
