"""Analytics: the star-schema warehouse (DuckDB), its incremental ETL jobs, lineage and KPIs.

Readers build on ``warehouse.open_read_only(settings)`` and the table descriptions in
``schema`` (``TABLES``, ``DIMENSIONS``, ``FACTS``); ``runs.build`` loads it; ``kpis`` holds
the maintenance KPIs. See docs/warehouse.md.
"""
