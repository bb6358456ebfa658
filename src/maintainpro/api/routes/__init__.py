"""REST route modules, one per area of the CMMS."""
