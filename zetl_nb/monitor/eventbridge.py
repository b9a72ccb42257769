"""Events in EventBridge's shape, and rules that deliver them to subscribers.

zetl_nb emits the six detail-types of the Glue zero-ETL guide from source ``aws.glue-zero-etl``,
and CloudWatch's ``CloudWatch Alarm State Change`` from ``aws.cloudwatch`` when an alarm changes
state. The guide's table names the detail-types ``AWS Glue Zero ETL ...`` while its catch-all
rule matches the prefix ``Glue Zero ETL``, which those names do not start with; zetl_nb uses the
table's names (see ``docs/aws-parity.md``), so the catch-all rule here is :data:`ZERO_ETL_RULE`.

>>> rules = Rules()
>>> seen = []
>>> _ = rules.subscribe({"detail-type": [{"prefix": "AWS Glue Zero ETL"}]}, seen.append)
>>> rules.deliver(make_event(INGESTION_COMPLETED, {"tableName": "t"}, ["arn:x"], "1", "r"))
1
>>> seen[0]["source"]
'aws.glue-zero-etl'
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .patterns import matches, parse_pattern

log = logging.getLogger(__name__)

SOURCE = "aws.glue-zero-etl"
DETAIL_TYPE_PREFIX = "AWS Glue Zero ETL"
INGESTION_COMPLETED = "Ingestion Completed"
INGESTION_FAILED = "Ingestion Failed"
INTEGRATION_RESYNCED = "Integration Resynced"
INTEGRATION_FAILED = "Integration Failed"
INTEGRATION_NEEDS_ATTENTION = "Integration Needs Attention"
INGESTION_IN_PROGRESS = "Ingestion In Progress"
#: The guide's six detail-types, without the common prefix.
DETAIL_TYPES = (
    INGESTION_COMPLETED,
    INGESTION_FAILED,
    INTEGRATION_RESYNCED,
    INTEGRATION_FAILED,
    INTEGRATION_NEEDS_ATTENTION,
    INGESTION_IN_PROGRESS,
)
#: Matches every zero-ETL event zetl_nb emits.
ZERO_ETL_RULE = {
    "source": [{"prefix": SOURCE}],
    "detail-type": [{"prefix": DETAIL_TYPE_PREFIX}],
}
ALARM_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"

Handler = Callable[[dict[str, Any]], None]


def make_event(
    kind: str,
    detail: Mapping[str, Any],
    resources: list[str],
    account: str,
    region: str,
    *,
    source: str = SOURCE,
    prefix: str = DETAIL_TYPE_PREFIX,
    at: float | None = None,
) -> dict[str, Any]:
    """An EventBridge event: ``kind`` is a detail-type without the prefix (or a full one)."""
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    detail_type = f"{prefix} {kind}" if kind in DETAIL_TYPES and prefix else kind
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


class Rules:
    """Subscribers registered with an event pattern, as EventBridge rules with one target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[tuple[dict[str, Any], Handler]] = []

    def subscribe(self, pattern: Mapping[str, Any] | str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for every event matching ``pattern``; returns an unsubscriber.

        An invalid pattern raises ``InvalidEventPatternException`` here, not at delivery.
        """
        entry = (parse_pattern(pattern), handler)
        with self._lock:
            self._rules.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._rules:
                    self._rules.remove(entry)

        return unsubscribe

    def deliver(self, event: Mapping[str, Any]) -> int:
        """Hand ``event`` to every matching subscriber; returns how many got it.

        A failing subscriber is logged and never stops delivery to the others.
        """
        with self._lock:
            rules = list(self._rules)
        delivered = 0
        for pattern, handler in rules:
            if matches(pattern, event):
                delivered += 1
                try:
                    handler(dict(event))
                except Exception:
                    log.exception("event subscriber failed on %s", event.get("detail-type"))
        return delivered
