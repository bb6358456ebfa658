"""The semantic layer: cubes of measures, dimensions and hierarchies over the warehouse.

``model`` reads and checks the YAML model (``default_model.yaml`` ships with the package);
``compile`` turns a Cube-style query into parameterised DuckDB SQL over the base facts or a
pre-aggregation; ``materialise`` builds and incrementally refreshes the pre-aggregations
(``GROUP BY`` with ``ROLLUP``/``CUBE``/``GROUPING SETS``); ``load`` answers a query; ``routes``
serves ``/api/v1/semantic/load`` and ``/meta``. See docs/semantic-model.md.
"""
