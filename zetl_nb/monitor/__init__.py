"""Monitoring: status tables, Glue-style logs, CloudWatch-style metrics and alarms,
EventBridge-style events, lag, and the data behind Redshift's zero-ETL monitoring views.

The Lab builds one :class:`Monitor` (``lab.monitor``); see :mod:`.monitor` for how it works and
``docs/aws-parity.md`` ("Monitoring") for every name, shape and choice.
"""

from __future__ import annotations

from .eventbridge import DETAIL_TYPES, SOURCE, ZERO_ETL_RULE
from .monitor import MONITOR_DIR, Monitor
from .notice import AlarmWarning
from .status import STATUS_TABLE, SYSTEM_NAMESPACE

__all__ = [
    "DETAIL_TYPES",
    "MONITOR_DIR",
    "SOURCE",
    "STATUS_TABLE",
    "SYSTEM_NAMESPACE",
    "ZERO_ETL_RULE",
    "AlarmWarning",
    "Monitor",
]
