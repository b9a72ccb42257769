"""From the engine's events to monitoring records: status rows, log messages, metrics, events.

Runs in the thread that published the event (a replication runner or the engine), so it only
builds small dicts; the monitor thread writes them. Engine events (``zetl_nb.core.events``):

===================  ===========================================================================
``state``            integration state change → status row; EventBridge ``Integration Needs
                     Attention`` / ``Integration Failed``; ``IntegrationUnhealthy`` gauge
``table_state``      table state change → status row; a ``Failed`` table also logs
                     ``IngestionFailed``, counts ``IngestionFailed`` and emits ``Ingestion Failed``
``load``             full load of a table: ``Started`` logs ``IngestionStarted``; ``Completed``
                     writes a ``FULL_LOAD`` row, stats/completed logs, metrics, ``Ingestion
                     Completed``
``batch``            one CDC commit of a table: ``CDC`` row, stats/completed logs, metrics, event
``ingestion_failed`` a load or commit that raised: ``FAILED`` row, log, metric, event
``progress``         rows copied so far: ``Ingestion In Progress`` (at most once a second a table)
``resync``           ``Started``: a ``ResyncRequired`` state row; ``Completed``: ``RESYNC`` row
                     and ``Integration Resynced``
===================  ===========================================================================
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.events import Event
from ..engine.resources import parse_source, parse_target, registered_database
from ..engine.store import ControlStore
from . import eventbridge as eb
from . import logs
from . import metrics as m
from . import status as st

PROGRESS_EVERY = 1.0
UNHEALTHY_STATES = ("NEEDS_ATTENTION", "FAILED")


@dataclass
class Records:
    """What one engine event produced, for the monitor thread to write and deliver."""

    status: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (stream, record)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.status or self.logs or self.metrics or self.events)


@dataclass(frozen=True)
class IntegrationInfo:
    """What the records say about an integration (kept after it is deleted)."""

    arn: str
    integration_id: str
    name: str
    source: str | None
    source_database: str | None
    target_database: str | None
    target_arn: str


@dataclass
class Applied:
    """The last checkpoint a table applied."""

    seq: int | None
    position: str | None
    at: float


class Recorder:
    """Turns engine events into :class:`Records`. Thread-safe."""

    def __init__(
        self,
        store: ControlStore,
        account: str,
        region: str,
        detail_type_prefix: str = eb.DETAIL_TYPE_PREFIX,
    ) -> None:
        self.store = store
        self.account = account
        self.region = region
        self.prefix = detail_type_prefix
        self._lock = threading.Lock()
        self._info: dict[str, IntegrationInfo] = {}
        self._table_states: dict[tuple[str, str], tuple[str, str]] = {}
        self._progress_at: dict[tuple[str, str], float] = {}
        #: (integration ARN, table) → the last checkpoint applied, for lag.
        self.applied: dict[tuple[str, str], Applied] = {}

    # -- integrations -------------------------------------------------------------------------
    def info(self, arn: str, refresh: bool = False) -> IntegrationInfo:
        """What is known about integration ``arn`` (looked up once, refreshed on state events)."""
        with self._lock:
            known = self._info.get(arn)
        if known is not None and not refresh:
            return known
        integ = self.store.get_integration(arn)
        if integ is None:
            return known or IntegrationInfo(arn, arn.rsplit(":", 1)[-1], "", None, None, None, "")
        source, source_db = self._source(integ.source_arn)
        try:
            target_db: str | None = parse_target(
                integ.target_arn, self.account, self.region
            ).namespace
        except Exception:  # a target kind without a local namespace (e.g. Redshift)
            target_db = None
        info = IntegrationInfo(
            arn, integ.integration_id, integ.name, source, source_db, target_db, integ.target_arn
        )
        with self._lock:
            self._info[arn] = info
        return info

    def _source(self, source_arn: str) -> tuple[str | None, str | None]:
        """Redshift's ``source`` label and the source database name."""
        try:
            ref = parse_source(source_arn, self.account, self.region)
        except Exception:
            return None, None
        if ref.kind == "dynamodb":
            return "DynamoDB", ref.name
        if ref.kind == "saas":
            conn = self.store.get_doc("connections", ref.name) or {}
            return str(conn.get("ConnectionType") or "SaaS"), ref.name
        doc = registered_database(self.store, ref.name) or {}
        if doc.get("Engine") == "postgres":
            url = str(doc.get("Url", ""))
            db = url.rsplit("/", 1)[-1].split("?", 1)[0] if "://" in url else "postgres"
            return "PostgreSQL", db or "postgres"
        return "MySQL", None

    # -- translation --------------------------------------------------------------------------
    def translate(self, event: Event) -> Records:
        """The records for one engine event (empty for events monitoring ignores)."""
        d = event.detail
        arn = d.get("IntegrationArn")
        if not arn:
            return Records()
        handler = {
            "state": self._state,
            "table_state": self._table_state,
            "load": self._load,
            "batch": self._batch,
            "ingestion_failed": self._failed,
            "progress": self._progress,
            "resync": self._resync,
        }.get(event.kind)
        if handler is None:
            return Records()
        return handler(self.info(arn, refresh=event.kind == "state"), d, event.time)

    def _common(self, info: IntegrationInfo) -> dict[str, Any]:
        return {
            "integration_arn": info.arn,
            "integration_id": info.integration_id,
            "integration_name": info.name,
            "source": info.source,
            "target_database": info.target_database,
        }

    def _event(
        self, kind: str, info: IntegrationInfo, detail: dict[str, Any], at: float
    ) -> dict[str, Any]:
        body = {"integrationArn": info.arn, "integrationName": info.name, **detail}
        return eb.make_event(
            kind, body, [info.arn], self.account, self.region, prefix=self.prefix, at=at
        )

    def _state(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        to, errors = str(d.get("To")), list(d.get("Errors") or [])
        if d.get("From") is None:  # creation: announced after the record, maybe after ACTIVE
            integ = self.store.get_integration(info.arn)
            at = integ.create_time if integ is not None else at
        text = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in errors)
        out = Records()
        out.status.append(
            st.status_row(
                st.INTEGRATION_STATE,
                to,
                previous_status=d.get("From"),
                error=text or None,
                start_time=at,
                end_time=at,
                **self._common(info),
            )
        )
        out.metrics.append(
            m.datapoint(
                m.UNHEALTHY, to in UNHEALTHY_STATES, at, info.arn, namespace=m.STATUS_NAMESPACE
            )
        )
        kind = {"NEEDS_ATTENTION": eb.INTEGRATION_NEEDS_ATTENTION, "FAILED": eb.INTEGRATION_FAILED}
        if to in kind:
            detail = {"status": to, "previousStatus": d.get("From"), "errors": errors}
            out.events.append(self._event(kind[to], info, detail, at))
        return out

    def _table_state(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        table, state, reason = str(d.get("TableName")), str(d.get("State")), d.get("Reason") or ""
        key = (info.arn, table)
        with self._lock:
            if self._table_states.get(key) == (state, reason):
                return Records()  # saved again, not changed
            self._table_states[key] = (state, reason)
        applied = self.applied.get(key)
        out = Records()
        out.status.append(
            st.status_row(
                st.TABLE_STATE,
                state,
                table_name=table,
                error=reason or None,
                start_time=at,
                end_time=at,
                source_seq=applied.seq if applied else None,
                source_position=applied.position if applied else None,
                **self._common(info),
            )
        )
        if state == "Failed":
            out.logs.append(
                (
                    info.integration_id,
                    logs.ingestion_failed(info.arn, table, reason, "client_error", at),
                )
            )
            out.metrics.append(m.datapoint(m.FAILED, 1, at, info.arn, "FULL", table))
            detail = {"tableName": table, "errorMessage": reason, "errorCode": "client_error"}
            out.events.append(self._event(eb.INGESTION_FAILED, info, detail, at))
        return out

    def _load(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        table = str(d.get("TableName"))
        out = Records()
        if d.get("Phase") == "Started":
            out.logs.append((info.integration_id, logs.ingestion_started(info.arn, table, at)))
            return out
        return self._ingested(info, d, at, st.FULL_LOAD, "FULL")

    def _batch(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        return self._ingested(info, d, at, st.CDC, str(d.get("LoadType") or "CDC"))

    def _ingested(
        self, info: IntegrationInfo, d: Mapping[str, Any], at: float, operation: str, load: str
    ) -> Records:
        """A completed full load or CDC commit of one table."""
        table = str(d.get("TableName"))
        ins, upd, dele = (int(d.get(k) or 0) for k in ("Inserted", "Updated", "Deleted"))
        end = float(d.get("EndTime") or at)
        position = _position(d.get("Position"))
        seq = d.get("Seq")
        self.applied[(info.arn, table)] = Applied(seq, position, end)
        out = Records()
        out.status.append(
            st.status_row(
                operation,
                st.SUCCEEDED,
                load_type=load,
                table_name=table,
                inserted_rows=ins,
                updated_rows=upd,
                deleted_rows=dele,
                dead_lettered_rows=int(d.get("DeadLettered") or 0),
                bytes_ingested=int(d.get("Bytes") or 0),
                start_time=float(d.get("StartTime") or end),
                end_time=end,
                source_seq=seq,
                source_position=position,
                **self._common(info),
            )
        )
        stream = info.integration_id
        out.logs.append((stream, logs.processing_stats(info.arn, table, ins, upd, dele, end)))
        out.logs.append((stream, logs.ingestion_completed(info.arn, table, end, end)))
        for name, value in (
            (m.INSERT_COUNT, ins),
            (m.UPDATE_COUNT, upd),
            (m.DELETE_COUNT, dele),
            (m.SUCCEEDED, 1),
            (m.LAST_SYNC, end * 1000),
        ):
            out.metrics.append(m.datapoint(name, value, end, info.arn, load, table))
        detail = {
            "tableName": table,
            "loadType": load,
            "insertCount": ins,
            "updateCount": upd,
            "deleteCount": dele,
            "lastSyncedTimestamp": str(int(end * 1000)),
        }
        out.events.append(self._event(eb.INGESTION_COMPLETED, info, detail, end))
        return out

    def _failed(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        table, load = d.get("TableName"), str(d.get("LoadType") or "CDC")
        error = str(d.get("Error") or "unknown error")
        end = float(d.get("EndTime") or at)
        out = Records()
        out.status.append(
            st.status_row(
                st.FULL_LOAD if load == "FULL" else st.CDC,
                st.FAILED,
                load_type=load,
                table_name=table,
                start_time=float(d.get("StartTime") or end),
                end_time=end,
                error=error,
                **self._common(info),
            )
        )
        out.logs.append(
            (
                info.integration_id,
                logs.ingestion_failed(info.arn, table, error, "system_error", end),
            )
        )
        out.metrics.append(m.datapoint(m.FAILED, 1, end, info.arn, load, table))
        detail = {
            "tableName": table,
            "loadType": load,
            "errorMessage": error,
            "errorCode": "system_error",
        }
        out.events.append(self._event(eb.INGESTION_FAILED, info, detail, end))
        return out

    def _progress(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        table = str(d.get("TableName"))
        done, estimate = d.get("RowsDone"), d.get("EstimatedRows")
        key = (info.arn, table)
        with self._lock:
            if at - self._progress_at.get(key, 0.0) < PROGRESS_EVERY and done != estimate:
                return Records()
            self._progress_at[key] = at
        detail = {
            "tableName": table,
            "loadType": "FULL",
            "rowsDone": done,
            "estimatedRows": estimate,
        }
        return Records(events=[self._event(eb.INGESTION_IN_PROGRESS, info, detail, at)])

    def _resync(self, info: IntegrationInfo, d: Mapping[str, Any], at: float) -> Records:
        table, reason = str(d.get("TableName")), str(d.get("Reason") or "")
        if d.get("Phase") == "Started":
            return self._table_state(
                info, {"TableName": table, "State": "ResyncRequired", "Reason": reason}, at
            )
        out = Records()
        out.status.append(
            st.status_row(
                st.RESYNC,
                st.SUCCEEDED,
                table_name=table,
                start_time=float(d.get("StartTime") or at),
                end_time=float(d.get("EndTime") or at),
                error=reason or None,
                **self._common(info),
            )
        )
        detail = {"tableName": table, "reason": reason}
        out.events.append(self._event(eb.INTEGRATION_RESYNCED, info, detail, at))
        return out

    def heartbeat(self, arn: str, status: str, at: float | None = None) -> dict[str, Any]:
        """The ``IntegrationUnhealthy`` gauge for an integration now (the monitor's tick)."""
        at = time.time() if at is None else at
        return m.datapoint(
            m.UNHEALTHY, status in UNHEALTHY_STATES, at, arn, namespace=m.STATUS_NAMESPACE
        )


def _position(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
