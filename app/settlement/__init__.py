"""Settlement: runs that issue statements, payouts (bank batch or Stripe Connect), reads."""
