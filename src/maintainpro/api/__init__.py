"""api area."""
