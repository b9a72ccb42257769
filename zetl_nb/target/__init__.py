"""The Iceberg target: the local catalog, table creation and evolution, committing batches."""
