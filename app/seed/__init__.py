"""Demo data for `shanhai seed-demo`: Batang merchants and products, Chun'an buyers."""
