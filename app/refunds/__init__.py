"""Refunds: a buyer asks, the merchant or an admin decides, the money goes back through the
original payment."""
