"""supply area."""
