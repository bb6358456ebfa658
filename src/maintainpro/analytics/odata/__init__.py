"""The warehouse as an OData v4 feed at /odata/: query options compiled to parameterised DuckDB
SQL, CSDL $metadata, server-driven paging, row-level security by site and an access record."""
