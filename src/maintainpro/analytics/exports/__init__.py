"""Files from the warehouse: Tableau .hyper, Qlik .qvd, Parquet, CSV, XLSX, the data lake
(Hive-partitioned Parquet, Delta Lake) and the BI tools' connection files."""
