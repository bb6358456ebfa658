"""X12 EDI codec: parsing, validation, generation and transaction mapping."""
