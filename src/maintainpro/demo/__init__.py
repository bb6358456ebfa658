"""The demo plant: seed data and, later, device simulators."""
