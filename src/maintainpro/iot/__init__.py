"""iot area."""
