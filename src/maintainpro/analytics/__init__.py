"""analytics area."""
