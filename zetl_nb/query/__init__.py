"""The query layer: DuckDB over replicated tables (Polars and Redshift SQL come later)."""
