"""Lab configuration: ``<home>/zetl.toml``, overridden by ``ZETL_*`` environment variables.

Example ``zetl.toml``::

    account_id = "123456789012"
    region = "us-east-1"
    time_scale = 60                 # a "15 minute" refresh ticks every 15 s
    prerequisite_recheck_seconds = 10

    [databases.orders]              # an external database, registered as an RDS cluster
    url = "mysql://root@127.0.0.1:3306/shop"

Environment variables win over the file: ``ZETL_ACCOUNT_ID``, ``ZETL_REGION``, ``ZETL_TIME_SCALE``,
``ZETL_PREREQUISITE_RECHECK_SECONDS``, ``ZETL_RETRY_WINDOW_DAYS``, ``ZETL_DYNAMODB_ENDPOINT``
(use this DynamoDB endpoint instead of the embedded one; ``aws``: real AWS),
``ZETL_DYNAMODB_EXPORT_BUCKET`` and ``ZETL_DYNAMODB_EXPORT_PREFIX`` (real AWS only: load and
refresh DynamoDB tables through ``ExportTableToPointInTime`` exports into this S3 bucket, as Glue
zero-ETL does, instead of Scan and Streams), ``ZETL_EMBEDDED_POSTGRES`` (``0`` to not register
the embedded PostgreSQL) and ``ZETL_EMBEDDED_CLUSTER`` (its cluster name).
The SQL functions ``llm_sentiment`` and ``llm_complete`` call ``ZETL_LLM_MODEL`` (default the
offline ``local/zetl``; e.g. ``amazon.nova-lite-v1:0``, ``openai/gpt-4o-mini``,
``ollama/llama3.2``) with ``ZETL_LLM_CONCURRENCY`` calls in flight, ``llm_sentiment`` asking
``ZETL_LLM_PER_PROMPT`` texts per prompt. ``ZETL_QUERY_MEMORY_MB`` is the memory the query
layer may use for in-memory copies of the replicated tables (default a quarter of the RAM, at
most 4096; 0 reads every table from its Parquet files).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .core.errors import ConfigError

CONFIG_FILE = "zetl.toml"


@dataclass(frozen=True)
class LabConfig:
    """Settings of one Lab home. Defaults are AWS-faithful except where a lab needs speed."""

    account_id: str = "123456789012"
    region: str = "us-east-1"
    #: Compresses refresh cadences (RefreshInterval / time_scale). 1 is faithful.
    time_scale: float = 1.0
    #: How often NEEDS_ATTENTION integrations re-check their prerequisites.
    prerequisite_recheck_seconds: float = 10.0
    #: How long NEEDS_ATTENTION retries before FAILED (AWS: 7 days).
    retry_window_days: float = 7.0
    #: An external DynamoDB endpoint URL; empty means the embedded moto server; ``aws`` means
    #: real AWS (boto3's own endpoints and credential chain, for DynamoDB, its streams and S3).
    dynamodb_endpoint: str = ""
    #: Real AWS only: an S3 bucket for DynamoDB exports. Set, DynamoDB integrations load a full
    #: export and apply incremental exports (AWS's path); empty, they Scan and read the stream.
    dynamodb_export_bucket: str = ""
    #: Key prefix of those exports in the bucket (each table below ``<prefix><table name>``).
    dynamodb_export_prefix: str = "zetl-nb/"
    #: Register the embedded PostgreSQL as an RDS cluster (started on first use).
    embedded_postgres: bool = True
    embedded_cluster: str = "zetl-aurora-postgres"
    #: External databases: name → URL, each registered as an RDS cluster.
    databases: Mapping[str, str] = field(default_factory=dict)
    #: The model of the SQL functions llm_sentiment and llm_complete (a litellm name or a
    #: Bedrock/OpenAI model id; Bedrock/OpenAI without credentials run on the offline model).
    llm_model: str = "local/zetl"
    #: LLM calls in flight at once (per chunk of 2,048 rows).
    llm_concurrency: int = 8
    #: Texts per prompt of llm_sentiment (1: one call per text).
    llm_per_prompt: int = 50
    #: MB of memory for in-memory DuckDB copies of the replicated tables, which answer queries
    #: at native DuckDB speed (0: none; tables that do not fit are read from Parquet).
    query_memory_mb: int = field(default_factory=lambda: default_query_memory_mb())

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(
                f"account_id '{self.account_id}' must be 12 digits, e.g. 123456789012."
            )
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise ConfigError(f"region '{self.region}' is not an AWS region name like us-east-1.")
        if self.time_scale <= 0:
            raise ConfigError(f"time_scale must be > 0 (1 is real time); got {self.time_scale}.")
        if self.prerequisite_recheck_seconds <= 0:
            raise ConfigError("prerequisite_recheck_seconds must be > 0.")
        if self.llm_concurrency < 1 or self.llm_per_prompt < 1:
            raise ConfigError(
                f"llm_concurrency and llm_per_prompt must be >= 1; got {self.llm_concurrency} "
                f"and {self.llm_per_prompt}."
            )
        if self.query_memory_mb < 0:
            raise ConfigError(
                f"query_memory_mb must be >= 0 (0 turns in-memory copies off); got "
                f"{self.query_memory_mb}."
            )
        if not self.llm_model.strip():
            raise ConfigError("llm_model must name a model, e.g. local/zetl or gpt-4o-mini.")


_ENV_TYPES = {
    "time_scale": float,
    "prerequisite_recheck_seconds": float,
    "retry_window_days": float,
}
_INT_SETTINGS = frozenset({"llm_concurrency", "llm_per_prompt", "query_memory_mb"})


def default_query_memory_mb() -> int:
    """A quarter of the machine's RAM, at most 4096 MB (1024 when the RAM is unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1024
    return int(min(total // 4 // 1_000_000, 4096))


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(LabConfig)}
    if name not in kinds:
        raise ConfigError(
            f"unknown setting '{name}' in {CONFIG_FILE}; known: {', '.join(sorted(kinds))}."
        )
    try:
        if name in _ENV_TYPES:
            return float(value)
        if name in _INT_SETTINGS:
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError(value)
            return int(value)
        if name == "embedded_postgres":
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() not in {"0", "false", "no", "off", ""}
    except (TypeError, ValueError) as exc:  # TypeError: a TOML list or table
        raise ConfigError(f"setting '{name}' must be a number; got {value!r}.") from exc
    return str(value)


def _databases(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"[databases] in {CONFIG_FILE} must be a table of [databases.<name>].")
    out: dict[str, str] = {}
    for name, entry in raw.items():
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or "://" not in url:
            raise ConfigError(
                f'[databases.{name}] needs url = "<scheme>://user@host:port/db", '
                "e.g. postgresql://postgres@127.0.0.1:5432/shop."
            )
        out[str(name)] = url
    return out


def load_config(home: Path, env: Mapping[str, str] | None = None, **overrides: Any) -> LabConfig:
    """Read ``<home>/zetl.toml``, then ``ZETL_*`` variables, then keyword ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = home / CONFIG_FILE
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        for key, value in doc.items():
            if key == "databases":
                values["databases"] = _databases(value)
            else:
                values[key] = _coerce(key, value)
    for f in fields(LabConfig):
        var = f"ZETL_{f.name.upper()}"
        if f.name != "databases" and var in env:
            values[f.name] = _coerce(f.name, env[var])
    for key, value in overrides.items():
        values[key] = value if key == "databases" else _coerce(key, value)
    return replace(LabConfig(), **values)
