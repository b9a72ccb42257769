"""zetl_nb — zero-ETL in a notebook.

AWS zero-ETL integrations (DynamoDB, Aurora/RDS MySQL and PostgreSQL, SaaS) reproduced in-process
and offline, behind the API boto3 speaks, replicating into local Apache Iceberg tables.

>>> import zetl_nb
>>> lab = zetl_nb.Lab()                      # doctest: +SKIP
>>> glue = lab.client("glue")                # doctest: +SKIP

Heavy libraries (pyiceberg, boto3, moto, DuckDB) load on first use, so this import is fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.errors import (
    AwsError,
    ConfigError,
    HomeLockedError,
    MissingDependencyError,
    ReadOnlyLabError,
    ServiceError,
    ZetlError,
)
from .core.states import IntegrationState

if TYPE_CHECKING:
    from .config import LabConfig
    from .lab import Lab

__version__ = "0.1.0"

__all__ = [
    "AwsError",
    "ConfigError",
    "HomeLockedError",
    "IntegrationState",
    "Lab",
    "LabConfig",
    "MissingDependencyError",
    "ReadOnlyLabError",
    "ServiceError",
    "ZetlError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Lab and LabConfig are imported on first access to keep `import zetl_nb` light.
    if name == "Lab":
        from .lab import Lab

        return Lab
    if name == "LabConfig":
        from .config import LabConfig

        return LabConfig
    raise AttributeError(f"module 'zetl_nb' has no attribute '{name}'")
