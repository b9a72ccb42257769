"""``Monitor``: the Lab's monitoring — status tables, logs, metrics, events, lag, alarms and the
data behind Redshift's zero-ETL monitoring views.

The writing Lab's monitor subscribes to the engine's event bus; each event becomes records
(:mod:`.recorder`) that one background thread writes: JSON-lines journals under
``<home>/monitor/`` at once, the Iceberg status table ``zetl_system.integration_status`` in
batches (every ``commit_interval`` seconds, on :meth:`Monitor.flush` and on
:meth:`Monitor.close`), and EventBridge-shaped events to the subscribers whose pattern they
match. Every second the thread
samples lag, and evaluates the alarms. A failure there is logged, never raised into the engine.

A read-only Lab's monitor has no thread: :meth:`Monitor.system_tables` reads what the writer
left on disk.

>>> lab.monitor.subscribe({"detail-type": ["AWS Glue Zero ETL Ingestion Failed"]}, print)
...                                                               # doctest: +SKIP
>>> lab.monitor.enable_recommended_alarms()                       # doctest: +SKIP
>>> lab.monitor.system_tables()["sys_integration_table_activity"] # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..core.errors import AwsError, ReadOnlyLabError
from ..core.events import Event
from . import alarms as al
from . import eventbridge as eb
from . import lag as lg
from . import logs, metrics, system, views
from . import status as st
from .journal import Journal, JournalDir
from .notice import notify
from .patterns import matches, parse_pattern
from .recorder import Recorder, Records

if TYPE_CHECKING:
    from ..engine.control import ControlPlane
    from ..engine.scheduler import Engine

log = logging.getLogger(__name__)

#: Where monitoring lives in the Lab home.
MONITOR_DIR = "monitor"
TICK_SECONDS = 1.0
HEARTBEAT_SECONDS = 60.0


@dataclass
class _Marker:
    kind: str  # "sync" (journals written), "flush" (also Iceberg), "stop"
    done: threading.Event = field(default_factory=threading.Event)


class Monitor:
    """Monitoring for one Lab (see the module docstring).

    Args:
        home: the Lab home; monitoring files go under ``home/monitor``.
        control: the Lab's control plane (store, catalog, event bus, account, region).
        engine: the Lab's engine (its runners tell lag; a read-only monitor reads the
            writer's last lag sample instead).
        read_only: attach to what another process writes; no thread, no writes.
        commit_interval: seconds between appends to the Iceberg status table.
        detail_type_prefix: prefix of the zero-ETL detail-types (see ``docs/aws-parity.md``).
    """

    def __init__(
        self,
        home: Path,
        control: ControlPlane,
        engine: Engine | None = None,
        read_only: bool = False,
        commit_interval: float = 2.0,
        detail_type_prefix: str = eb.DETAIL_TYPE_PREFIX,
    ) -> None:
        self.root = Path(home) / MONITOR_DIR
        self.control = control
        self.store = control.store
        self.catalog = control.catalog
        self.engine = engine
        self.read_only = read_only
        self.commit_interval = commit_interval
        self.account, self.region = control.account, control.region
        self.recorder = Recorder(self.store, self.account, self.region, detail_type_prefix)
        self.rules = eb.Rules()
        self.status_journal = Journal(self.root / "status.jsonl", st.JOURNAL_SCHEMA)
        self.metrics_journal = Journal(self.root / "metrics.jsonl", metrics.SCHEMA)
        self.events_journal = Journal(self.root / "events.jsonl", system.EVENTS_SCHEMA)
        self.logs_journal = JournalDir(self.root / "logs" / logs.LOG_GROUP.strip("/"), logs.SCHEMA)
        self.status_tables = st.StatusTables(self.catalog)
        self._stats = system.TableStats(self.catalog)
        self._alarms_lock = threading.RLock()
        self._alarms: dict[str, al.Alarm] = self._load_alarms()
        self._marks: dict[str, dict[str, Any]] = self._load_json("databases.json")
        self._closed = False
        self._queue: queue.Queue[Records | _Marker] = queue.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._last_heartbeat = self._last_evaluation = 0.0
        #: Seconds between automatic alarm evaluations; None: only :meth:`evaluate_alarms`.
        self.evaluate_every: float | None = TICK_SECONDS
        self._lag_saved = True  # a stale sample from an earlier run is replaced once
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
            self._unsubscribe = control.bus.subscribe(self._on_event)
            self._thread = threading.Thread(target=self._run, name="zetl-monitor", daemon=True)
            self._thread.start()

    # -- lifecycle ----------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> None:
        """Write everything recorded so far, including the Iceberg status table."""
        self._wait(_Marker("flush"), timeout)

    def close(self) -> None:
        """Stop listening, write what is pending and stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_Marker("stop"))
            if threading.current_thread() is not thread:  # not from a subscriber's callback
                thread.join(timeout=60)

    def _wait(self, marker: _Marker, timeout: float) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive() or threading.current_thread() is thread:
            return  # nothing to wait for (or a subscriber on the monitor thread asks)
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            log.warning("monitor did not %s within %g s", marker.kind, timeout)

    def _on_event(self, event: Event) -> None:
        if self._closed:
            return
        records = self.recorder.translate(event)
        if records:
            self._queue.put(records)

    # -- the monitor thread -------------------------------------------------------------------
    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        last_commit = last_tick = time.monotonic()
        while True:
            try:
                items = [self._queue.get(timeout=0.25)]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            markers = [i for i in items if isinstance(i, _Marker)]
            records = [i for i in items if isinstance(i, Records)]
            self._guard("writing journals", self._write, records, pending)
            force = any(mk.kind in ("flush", "stop") for mk in markers)
            if pending and (force or time.monotonic() - last_commit >= self.commit_interval):
                self._guard("appending status rows", self.status_tables.append, list(pending))
                pending.clear()
                last_commit = time.monotonic()
            if time.monotonic() - last_tick >= TICK_SECONDS:
                self._guard("monitor tick", self._tick)
                last_tick = time.monotonic()
            for mk in markers:
                mk.done.set()
            if any(mk.kind == "stop" for mk in markers):
                return

    def _guard(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # monitoring must outlive any single failure
            log.exception("monitor: %s failed", what)

    def _write(self, batch: list[Records], pending: list[dict[str, Any]]) -> None:
        if not batch:
            return
        streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
        status, points, events = [], [], []
        for rec in batch:
            status.extend(rec.status)
            points.extend(rec.metrics)
            events.extend(rec.events)
            for stream, line in rec.logs:
                streams[stream].append(line)
        self.status_journal.append(status)
        pending.extend(status)
        self.metrics_journal.append(points)
        for stream, lines in streams.items():
            self.logs_journal.journal(stream).append(lines)
        self._publish(events)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        """Journal EventBridge events, then deliver them to matching subscribers."""
        now = time.time()
        self.events_journal.append(system.event_record(e, now) for e in events)
        for event in events:
            self.rules.deliver(event)

    def _tick(self) -> None:
        now = time.time()
        if self.engine is not None:
            rows = self._lag_rows(now)
            if rows or self._lag_saved:
                lg.save(self.root / "lag.json", rows)
                self._lag_saved = bool(rows)
        if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            self.metrics_journal.append(self._heartbeat(now))
        every = self.evaluate_every
        if every is not None and now - self._last_evaluation >= every:
            self._last_evaluation = now
            self.evaluate_alarms(now)

    def _heartbeat(self, now: float) -> list[dict[str, Any]]:
        """The health gauge of every integration and, while caught up, LastSyncTimestamp."""
        points = []
        runners = dict(self.engine.runners) if self.engine is not None else {}
        docs = self._table_docs()
        for integ in self.store.integrations():
            points.append(self.recorder.heartbeat(integ.arn, integ.status, now))
            caught = getattr(runners.get(integ.arn), "caught_up_at", None)
            if integ.status == "ACTIVE" and caught and now - caught < HEARTBEAT_SECONDS:
                for doc in docs.get(integ.arn, []):
                    if doc.get("State") == "Synced":
                        table = str(doc.get("TableName"))
                        points.append(
                            metrics.datapoint(
                                metrics.LAST_SYNC, caught * 1000, now, integ.arn, "CDC", table
                            )
                        )
        return points

    # -- EventBridge --------------------------------------------------------------------------
    def subscribe(
        self, pattern: Mapping[str, Any] | str, handler: Callable[[dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Deliver every event matching the EventBridge ``pattern`` to ``handler``.

        Delivery happens on the monitor thread, after the event is journaled. Returns a
        function that unsubscribes. ``eventbridge.ZERO_ETL_RULE`` matches every zero-ETL event.
        """
        return self.rules.subscribe(pattern, handler)

    def events(
        self, pattern: Mapping[str, Any] | str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Events emitted so far (oldest first), those matching ``pattern`` if given."""
        self._sync()
        compiled = parse_pattern(pattern) if pattern is not None else None
        out = []
        for row in self.events_journal.read().to_pylist():
            event = system.event_from_record(row)
            if compiled is None or matches(compiled, event):
                out.append(event)
        return out[-limit:] if limit else out

    # -- CloudWatch ---------------------------------------------------------------------------
    def get_metric_statistics(self, **params: Any) -> dict[str, Any]:
        """CloudWatch ``GetMetricStatistics`` (see :mod:`zetl_nb.monitor.metrics`)."""
        self._sync()
        return metrics.get_metric_statistics(self.metrics_journal.read(), **params)

    def get_log_events(self, **params: Any) -> dict[str, Any]:
        """CloudWatch Logs ``GetLogEvents`` on ``/aws-glue/zeroETL-integrations/logs/``."""
        self._sync()
        return logs.get_log_events(self.logs_journal.read("log_stream"), **params)

    def put_metric_alarm(self, **params: Any) -> None:
        """CloudWatch ``PutMetricAlarm``: create or replace an alarm (state INSUFFICIENT_DATA)."""
        self._writable()
        alarm = al.parse_alarm(params)
        with self._alarms_lock:
            self._alarms[alarm.name] = alarm
            self._save_alarms()

    def delete_alarms(self, AlarmNames: list[str]) -> None:
        """CloudWatch ``DeleteAlarms``."""
        self._writable()
        with self._alarms_lock:
            for name in AlarmNames:
                self._alarms.pop(name, None)
            self._save_alarms()

    def describe_alarms(self, **params: Any) -> dict[str, Any]:
        """CloudWatch ``DescribeAlarms`` (filters ``AlarmNames``, ``AlarmNamePrefix``,
        ``StateValue``)."""
        names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
        state = params.get("StateValue")
        with self._alarms_lock:
            alarms = self._alarms if not self.read_only else self._load_alarms()
            found = [
                al.describe(a, self.region, self.account)
                for a in alarms.values()
                if (not names or a.name in names)
                and (not prefix or a.name.startswith(prefix))
                and (not state or a.state == state)
            ]
        return {"MetricAlarms": found, "CompositeAlarms": []}

    def recommended_alarms(self, integration: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        """The two recommended alarms' parameters (see :func:`.alarms.recommended_alarms`)."""
        if integration is None:
            return al.recommended_alarms(**kw)
        integ = self.control.find(integration)
        return al.recommended_alarms(integ.arn, f"zero-etl-{integ.name}", **kw)

    def enable_recommended_alarms(self, integration: str | None = None, **kw: Any) -> list[str]:
        """Create the recommended alarms (for one integration, or all); returns their names.

        ``rows_per_minute``, ``minutes`` and ``period_seconds`` tune the CDC alarm.
        """
        params = self.recommended_alarms(integration, **kw)
        for p in params:
            self.put_metric_alarm(**p)
        if self._thread is not None:  # the health gauge now, so the status alarm can decide
            now = time.time()
            gauges = [
                self.recorder.heartbeat(i.arn, i.status, now) for i in self.store.integrations()
            ]
            self._queue.put(Records(metrics=gauges))
        return [p["AlarmName"] for p in params]

    def evaluate_alarms(self, now: float | None = None) -> list[dict[str, Any]]:
        """Evaluate every alarm now; returns the ``CloudWatch Alarm State Change`` events.

        Called every second by the monitor thread; callable directly (e.g. in tests).
        """
        if self.read_only:
            return []
        self._sync()  # see the datapoints recorded so far
        now = time.time() if now is None else now
        changes = []
        with self._alarms_lock:
            if not self._alarms:
                return []
            table = self.metrics_journal.read()
            for alarm in self._alarms.values():
                result = al.evaluate(alarm, table, now)
                if result is None:
                    continue
                old = (alarm.state, alarm.reason, alarm.updated)
                alarm.state, alarm.reason, alarm.updated = result[0], result[1], now
                detail = al.state_change_detail(alarm, *old)
                arn = al.alarm_arn(alarm.name, self.region, self.account)
                changes.append(
                    eb.make_event(
                        eb.ALARM_DETAIL_TYPE,
                        detail,
                        [arn],
                        self.account,
                        self.region,
                        source=eb.ALARM_SOURCE,
                        at=now,
                    )
                )
                notify(alarm.name, alarm.state, alarm.reason)
            if changes:
                self._save_alarms()
        self._publish(changes)
        return changes

    # -- Redshift databases -------------------------------------------------------------------
    def mark_database_created(
        self, integration_id: str, database: str, source_database: str | None = None
    ) -> None:
        """Record ``CREATE DATABASE <database> FROM INTEGRATION '<integration_id>'``.

        For a Redshift-namespace target ``svv_integration.state`` is ``PendingDbConnectState``
        until this is called; it also sets the views' ``target_database``.
        """
        integ = self.control.find(integration_id)
        mark = {"database": database, "source_database": source_database, "created": time.time()}
        self._marks[integ.integration_id] = mark
        if not self.read_only:
            self._save_json("databases.json", self._marks)

    def mark_database_dropped(self, integration_id: str) -> None:
        """Forget the database created from an integration (``DROP DATABASE``)."""
        key = integration_id.rsplit(":", 1)[-1]  # an id or an ARN
        if key not in self._marks:
            try:
                key = self.control.find(integration_id).integration_id
            except AwsError:
                return
        if self._marks.pop(key, None) is not None and not self.read_only:
            self._save_json("databases.json", self._marks)

    def databases(self) -> dict[str, str]:
        """Integration id → the database created from it."""
        return {k: str(v["database"]) for k, v in self._marks.items()}

    # -- tables -------------------------------------------------------------------------------
    def system_tables(self) -> dict[str, pa.Table]:
        """Every monitoring table, keyed by its view name (see :mod:`.system`)."""
        self._sync()
        if self.read_only:
            self._marks = self._load_json("databases.json")
        marks = {k: v["database"] for k, v in self._marks.items()}
        status = self.status_journal.read()
        integrations = self.store.integrations()
        docs = self._table_docs()
        infos = {i.arn: self.recorder.info(i.arn) for i in integrations}
        lag_rows = self._lag_rows(time.time())
        checkpoints = {}
        for integ in integrations:
            doc = self.store.get_doc("replication", integ.arn)
            pos = (doc or {}).get("position")
            checkpoints[integ.arn] = None if pos is None else json.dumps(pos, sort_keys=True)
        return {
            "svv_integration": system.svv_integration(
                integrations, infos, docs, lag_rows, self._marks, checkpoints
            ),
            "svv_integration_table_state": system.svv_integration_table_state(
                integrations, docs, self.recorder.applied, self._marks, self._stats
            ),
            "sys_integration_activity": views.sys_integration_activity(status, marks),
            "sys_integration_table_activity": views.sys_integration_table_activity(status, marks),
            "sys_integration_table_state_change": views.sys_integration_table_state_change(
                status, marks
            ),
            "zetl_logs": system.logs_table(self.logs_journal.read("log_stream")),
            "zetl_metrics": system.metrics_table(self.metrics_journal.read()),
            "zetl_events": system.events_table(self.events_journal.read()),
            "zetl_lag": lg.to_table(lag_rows),
            "zetl_status": system.status_table(status),
            "zetl_alarms": system.alarms_table(self.describe_alarms()["MetricAlarms"]),
        }

    def lag(self) -> pa.Table:
        """``zetl_lag`` now: seconds and position behind the source (see :mod:`.lag`)."""
        return lg.to_table(self._lag_rows(time.time()))

    def status(self, database: str | None = None) -> pa.Table:
        """The Iceberg status table (``zetl_system.integration_status``) as committed so far;
        only the rows about one target database if given. :meth:`flush` commits pending rows."""
        return self.status_tables.read(database)

    # -- helpers ------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Wait (briefly) until every record so far is in the journals."""
        self._wait(_Marker("sync"), 5.0)

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyLabError("a read-only Lab cannot change alarms; use the writing Lab.")

    def _table_docs(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key, doc in self.store.docs("table_states"):
            out[key.split("|", 1)[0]].append(doc)
        return out

    def _lag_rows(self, now: float) -> list[dict[str, Any]]:
        if self.engine is None or self.read_only:
            return lg.load(self.root / "lag.json")
        return lg.sample(
            self.store.integrations(),
            self._table_docs(),
            dict(self.engine.runners),
            dict(self.recorder.applied),
            now,
        )

    def _load_json(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.root / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return dict(data) if isinstance(data, dict) else {}

    def _save_json(self, name: str, data: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str, indent=1))
        tmp.replace(path)

    def _load_alarms(self) -> dict[str, al.Alarm]:
        docs = self._load_json("alarms.json").get("alarms", [])
        out = {}
        for doc in docs:
            try:
                alarm = al.Alarm.from_doc(doc)
                out[alarm.name] = alarm
            except (KeyError, TypeError, AwsError):
                log.warning("ignoring an unreadable alarm in alarms.json: %r", doc)
        return out

    def _save_alarms(self) -> None:
        self._save_json("alarms.json", {"alarms": [a.to_doc() for a in self._alarms.values()]})
