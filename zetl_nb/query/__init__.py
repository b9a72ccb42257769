"""The query layer: DuckDB and Polars over replicated tables, time travel, Redshift SQL.

- :mod:`.duck` — ``QueryEngine``: one DuckDB connection, a view per Iceberg table
  (``<database>.<table>``) at its latest snapshot, the monitoring system views; ``lab.sql``.
- :mod:`.connection` — ``lab.duckdb()``: a DuckDB connection whose views follow the catalog.
- :mod:`.scan` / :mod:`.views` — how a snapshot is read (Parquet by field id minus position
  deletes, or pyiceberg's reader) and how views follow the catalog.
- :mod:`.timetravel` — ``lab.table(name, as_of=...)``, ``lab.snapshots``, ``lab.diff``.
- :mod:`.frames` — ``lab.polars(name)``: ``pl.scan_iceberg``.
- :mod:`.redshift` — ``dialect="redshift"``: sqlglot, ``CREATE DATABASE ... FROM INTEGRATION``.
- :mod:`.redshift_ml` — Redshift ML: ``CREATE EXTERNAL MODEL`` (Bedrock), ``DROP/SHOW MODEL``.
- :mod:`.llm` — the LLM functions in SQL (``llm_sentiment``, ``llm_complete``, model
  functions) and the call layer under them: litellm, the offline model, cache, tally.
"""
