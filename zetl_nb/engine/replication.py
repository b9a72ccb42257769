"""The replication runner: one background thread per relational integration.

prerequisites → discover included tables → initial load (consistent snapshot) → continuous CDC
in adaptive micro-batches → retries with backoff. The runner is the only writer of its tables.

Exactly once: each table's Iceberg snapshot carries the highest ``seq`` it applied; the
integration's resume position (stored after every batch's commits) is never ahead of any table's
checkpoint, so a restart replays at most what some table already has, and the writer skips it.

Problems the runner finds (source settings, source down, lost position) are not transitions it
makes itself: it publishes them in :attr:`RelationalRunner.problems` and asks the engine to
re-check, so every state change still goes through one place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.changes import ChangeBatch, TableId, TableSchema, TableState
from ..core.events import Event
from ..core.prerequisites import Problem
from ..core.states import IntegrationState
from ..sources.base import Source, SourceError
from ..target.deadletters import DeadLetters
from ..target.naming import assign_names
from ..target.writer import Counts, SchemaIncompatible, TableWriter
from ..transform.datafilter import DataFilter

if TYPE_CHECKING:
    from .control import ControlPlane
    from .store import Integration

log = logging.getLogger(__name__)

MIN_BATCH, MAX_BATCH = 1_000, 100_000
REDISCOVER_SECONDS = 5.0
#: Compaction and snapshot expiry run every this many commits of a table.
MAINTAIN_EVERY = 10


@dataclass
class TableRuntime:
    """One replicated table: its writer, or why it is not replicated."""

    source: TableId
    target: str
    schema: TableSchema
    writer: TableWriter | None = None
    state: str = "ResyncInitiated"
    reason: str = ""
    estimated_rows: int | None = None
    commits: int = 0
    counts: Counts = field(default_factory=Counts)
    #: Arrow bytes read by the current initial load (for monitoring).
    load_bytes: int = 0


class RelationalRunner:
    """Replicates one Aurora/RDS-style integration from a relational source into Iceberg."""

    def __init__(
        self,
        cp: ControlPlane,
        integ: Integration,
        make_source: Callable[[Integration], Source],
        on_problems: Callable[[str], None],
    ) -> None:
        self.cp = cp
        self.arn = integ.arn
        self.integ = integ
        self.make_source = make_source
        self.on_problems = on_problems
        self.problems: list[Problem] = []
        self.syncing = False
        self.tables: dict[TableId, TableRuntime] = {}
        self.caught_up_seq = -1
        #: The source's position (seq) at the last poll, and when the runner was last caught up
        #: with it: monitoring's lag.
        self.source_seq = -1
        self.caught_up_at: float | None = None
        self.loaded = threading.Event()
        self.finished = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zetl-{integ.name}", daemon=True)
        self._source: Source | None = None
        self._filter_text: str | None = None
        self._published: list[TableId] | None = None  # what source.publish last got
        self._stream_obj: Any = None

    # -- control ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 20) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def refresh_now(self) -> None:
        self._wake.set()
        stream = self._stream_obj
        if stream is not None and hasattr(stream, "refresh"):  # DynamoDB: RefreshInterval
            stream.refresh()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def current_seq(self) -> int:
        """The source's position now, as a seq (for ``lab.wait``)."""
        source = self._source
        if source is None:
            raise SourceError("SourceUnavailable", "the integration's source is not connected yet")
        return source.seq_of(source.current_position())

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._session()
                backoff = 1.0
            except SourceError as err:
                log.warning("%s: %s: %s", self.integ.name, err.code, err.message)
                if err.resync:
                    self._forget_position()
                self._report([Problem(err.code, err.message, fatal=err.fatal)])
            except Exception as exc:  # never let one failure end replication for good
                if _driver_error(exc):
                    log.warning("%s: source connection failed: %s", self.integ.name, exc)
                    detail = f"{type(exc).__name__}: {str(exc).strip()}"
                    self._report(
                        [
                            Problem(
                                "SourceUnavailable",
                                f"Lost the connection to the source ({detail}). Retrying with "
                                "backoff; "
                                "check that the database is running and reachable.",
                            )
                        ]
                    )
                else:
                    log.exception("replication of %s failed", self.integ.name)
                    self._report([Problem("InternalError", f"{type(exc).__name__}: {exc}")])
            finally:
                self._close_source()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 60.0)

    def _report(self, problems: list[Problem]) -> None:
        if problems != self.problems:
            self.problems = problems
            self.on_problems(self.arn)

    def _close_source(self) -> None:
        if self._source is not None:
            try:
                self._source.close()
            except Exception:
                log.debug("closing source failed", exc_info=True)
            self._source = None

    def _session(self) -> None:
        source = self.make_source(self.integ)
        self._source = source
        problems = source.check_prerequisites()
        self._report(problems)
        if problems:
            return
        self._refresh_integration()
        position = self._initial_load(source)
        if self.integ.continuous_sync is False:
            # ContinuousSync=false: one snapshot, then stop (the engine does not restart it).
            self.caught_up_seq = source.seq_of(source.current_position())
            self.finished = True
            self._stop.set()
            return
        self._stream(source, position)

    def _refresh_integration(self) -> None:
        current = self.cp.store.get_integration(self.arn)
        if current is not None:
            self.integ = current

    def _data_filter(self, source: Source) -> DataFilter:
        if source.engine == "dynamodb":  # one table per integration; DataFilter is rejected
            return DataFilter.parse("include: *.*", 2)
        levels = 3 if source.engine == "postgres" else 2
        text = self.integ.data_filter or ("include: *.*.*" if levels == 3 else "include: *.*")
        return DataFilter.parse(text, levels)

    # -- tables -------------------------------------------------------------------------------
    def _namespace(self) -> str:
        from .resources import parse_target

        return parse_target(self.integ.target_arn, self.cp.account, self.cp.region).namespace

    def _overrides(self, tables: list[TableId]) -> dict[TableId, str]:
        out = {}
        for t in tables:
            for key in (str(t), t.table):
                doc = self.cp.store.get_table_properties(self.integ.target_arn, key)
                name = (doc or {}).get("TargetTableConfig", {}).get("TargetTableName")
                if name:
                    out[t] = name
                    break
        return out

    def _register(self, states: list[TableState]) -> list[TableRuntime]:
        """Create target tables and runtimes for newly discovered tables; returns the new ones."""
        ns = self._namespace()
        if not self.cp.catalog.exists(ns):  # never re-create a deleted target by writing to it
            raise SourceError(
                "TargetNotFound",
                f"Target Glue database '{ns}' no longer exists. Re-create it, or delete this "
                "integration.",
            )
        catalog = self.cp.catalog.catalog
        known = [*self.tables, *(s.schema.table for s in states)]
        names = assign_names(sorted(set(known)), self._overrides(sorted(set(known))))
        dead = DeadLetters(catalog, ns)
        added = []
        for st in states:
            tid = st.schema.table
            if tid in self.tables:
                continue
            rt = TableRuntime(tid, names[tid], st.schema, estimated_rows=st.estimated_rows)
            with self.cp.lock:  # claiming a target table is atomic across runners
                owner = self._owner(ns, rt.target)
                if owner is None:
                    self._save_state(rt)
            if owner is not None:
                rt.state = "Failed"
                rt.reason = (
                    f"Target table {ns}.{rt.target} is already replicated by integration "
                    f"{owner}; one writer per table. Exclude {tid} with the DataFilter or set "
                    "another TargetTableName."
                )
            elif not st.schema.primary_key:
                rt.state = "Failed"
                rt.reason = (
                    f"Table {tid} has no primary key; zero-ETL replicates only tables "
                    "with a primary key. Add one (ALTER TABLE ... ADD PRIMARY KEY)."
                )
            else:
                table = catalog.create_table_if_not_exists(
                    (ns, rt.target), st.schema.arrow_schema()
                )
                additive = bool(getattr(self._source, "additive_schema", False))
                rt.writer = TableWriter(table, st.schema, dead, self.arn, additive=additive)
            self.tables[tid] = rt
            self._save_state(rt)
            added.append(rt)
        return added

    def _owner(self, ns: str, target: str) -> str | None:
        """Another live integration that already writes ``ns.target``, if any."""
        for key, doc in self.cp.store.docs("table_states"):
            arn = key.split("|", 1)[0]
            if (
                arn != self.arn
                and doc.get("Namespace") == ns
                and doc.get("TableName") == target
                and doc.get("State") not in ("Failed", "Deleted")
                and self.cp.store.get_integration(arn) is not None
            ):
                return arn
        return None

    def _save_state(self, rt: TableRuntime) -> None:
        self.cp.store.put_doc(
            "table_states",
            f"{self.arn}|{rt.target}",
            {
                "IntegrationArn": self.arn,
                "Namespace": self._namespace(),
                "TableName": rt.target,
                "SourceTable": str(rt.source),
                "State": rt.state,
                "Reason": rt.reason,
                "LastUpdated": time.time(),
                "Seq": rt.writer.seq if rt.writer else None,
            },
        )
        self.cp.bus.publish(
            Event(
                "table_state",
                {
                    "IntegrationArn": self.arn,
                    "TableName": rt.target,
                    "State": rt.state,
                    "Reason": rt.reason,
                },
            )
        )

    # -- initial load -------------------------------------------------------------------------
    def _initial_load(self, source: Source) -> Mapping[str, Any]:
        states = source.discover(self._data_filter(source))
        self._filter_text = self.integ.data_filter
        self._register(states)
        stored = self.cp.store.get_doc("replication", self.arn)
        # Without a resume position (first start, or the position was lost) every table is
        # copied again: their checkpoints belong to a stream that can no longer be resumed.
        pending = [
            rt
            for rt in self.tables.values()
            if rt.writer is not None and (stored is None or rt.writer.seq is None)
        ]
        self._publish(source, force=True)  # also on a restart: the set may have changed since
        if pending or stored is None:
            self._load(source, pending)  # stores the resume position if there is none yet
        stored = self.cp.store.get_doc("replication", self.arn)
        assert stored is not None
        self.loaded.set()
        return dict(stored["position"])

    def _publish(self, source: Source, force: bool = False) -> None:
        """Tell the source the tables we replicate (those with a writer) if that set changed.

        Called before new tables are snapshotted: their changes stream from here on and the
        snapshot holds the ones before (PostgreSQL: only published tables reach the stream).
        """
        tables = sorted(tid for tid, rt in self.tables.items() if rt.writer is not None)
        if force or tables != self._published:
            source.publish(tables)
            self._published = tables

    def _load(self, source: Source, tables: list[TableRuntime]) -> Mapping[str, Any]:
        reader = source.snapshot([rt.source for rt in tables])
        try:
            for rt in tables:
                assert rt.writer is not None
                rt.state = "ResyncInitiated"
                if hasattr(reader, "schema"):  # items define the schema (DynamoDB)
                    rt.writer.evolve(reader.schema(rt.source))
                    if hasattr(source, "prepare_table"):  # partition on the columns it has now
                        source.prepare_table(rt.writer.table)
                rt.load_bytes = 0
                started = self._announce("load", rt.target, LoadType="FULL", Phase="Started")
                try:
                    rows = rt.writer.load(
                        self._progress(rt, reader.read(rt.source)), reader.seq, reader.position
                    )
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    self._announce(
                        "ingestion_failed",
                        rt.target,
                        LoadType="FULL",
                        StartTime=started,
                        Error=error,
                    )
                    raise
                self._announce(
                    "load",
                    rt.target,
                    LoadType="FULL",
                    Phase="Completed",
                    StartTime=started,
                    Inserted=rows,
                    Bytes=rt.load_bytes,
                    Seq=reader.seq,
                    Position=dict(reader.position),
                )
                rt.state = "Synced"
                self._save_state(rt)
            position = dict(reader.position)
        finally:
            reader.close()
        if self.cp.store.get_doc("replication", self.arn) is None:
            self._save_position(position, source)
        return position

    def _announce(self, kind: str, table: str, **detail: Any) -> float:
        """Publish a monitoring event about one table (``load``, ``resync``,
        ``ingestion_failed``); returns its time (the ``EndTime``)."""
        now = time.time()
        detail = {"IntegrationArn": self.arn, "TableName": table, "StartTime": now, **detail}
        self.cp.bus.publish(Event(kind, {**detail, "EndTime": now}))
        return now

    def _progress(self, rt: TableRuntime, batches: Any) -> Any:
        done = 0
        for batch in batches:
            done += batch.num_rows
            rt.load_bytes += batch.nbytes
            self.cp.bus.publish(
                Event(
                    "progress",
                    {
                        "IntegrationArn": self.arn,
                        "TableName": rt.target,
                        "RowsDone": done,
                        "EstimatedRows": rt.estimated_rows,
                    },
                )
            )
            yield batch

    def _save_position(self, position: Mapping[str, Any], source: Source) -> None:
        self.cp.store.put_doc(
            "replication",
            self.arn,
            {"position": dict(position), "seq": source.seq_of(position), "at": time.time()},
        )

    def _forget_position(self) -> None:
        self.cp.store.delete_doc("replication", self.arn)
        for rt in self.tables.values():
            if rt.writer is not None:
                rt.writer.seq = None
        self.tables.clear()

    # -- change data capture ------------------------------------------------------------------
    def _stream(self, source: Source, position: Mapping[str, Any]) -> None:
        stream = source.stream(position)
        self._stream_obj = stream
        try:
            max_rows = MIN_BATCH
            last_discovery = time.monotonic()
            while not self._stop.is_set():
                target_seq = source.seq_of(source.current_position())
                self.source_seq = target_seq
                sent = _sent(stream)
                batches = stream.poll(max_rows, max_wait=0.2)
                whole = bool(getattr(stream, "sent_after_poll", False))
                if whole:  # it drains inside poll and returns all it read (DynamoDB)
                    sent = _sent(stream)
                rows = sum(len(b) for b in batches)
                if batches:
                    self._apply(source, batches)
                    new_position = stream.position
                    self._save_position(new_position, source)
                    stream.ack(new_position)
                delivered = sent is None or sent >= target_seq
                if (batches and max(_max_seq(b) for b in batches) >= target_seq) or (
                    delivered and (not batches or whole)
                ):
                    self.caught_up_seq = max(self.caught_up_seq, target_seq)
                    self.caught_up_at = time.time()
                max_rows = (
                    min(MAX_BATCH, max_rows * 2)
                    if rows >= max_rows
                    else max(MIN_BATCH, max_rows // 2)
                )
                if time.monotonic() - last_discovery > REDISCOVER_SECONDS or self._wake.is_set():
                    self._wake.clear()
                    self._rediscover(source)
                    last_discovery = time.monotonic()
        finally:
            self._stream_obj = None
            stream.close()

    def _apply(self, source: Source, batches: list[ChangeBatch]) -> None:
        for batch in batches:
            rt = self.tables.get(batch.table)
            if rt is None:
                rt = self._adopt(source, batch.table)
                if rt is None:
                    continue
            if rt.writer is None:
                continue
            started = time.time()
            try:
                counts = rt.writer.apply(batch)
            except SchemaIncompatible as exc:
                self._resync(source, rt, str(exc))
                continue
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._announce(
                    "ingestion_failed", rt.target, LoadType="CDC", StartTime=started, Error=error
                )
                raise
            rt.counts += counts
            rt.commits += 1
            if rt.commits % MAINTAIN_EVERY == 0:
                rt.writer.maintain()
            if rt.state != "Synced":
                rt.state = "Synced"
                self._save_state(rt)
            self.cp.bus.publish(
                Event(
                    "batch",
                    {
                        "IntegrationArn": self.arn,
                        "TableName": rt.target,
                        "Inserted": counts.inserted,
                        "Updated": counts.updated,
                        "Deleted": counts.deleted,
                        "DeadLettered": counts.dead_lettered,
                        "Seq": rt.writer.seq,
                        "LoadType": "CDC",
                        "StartTime": started,
                        "EndTime": time.time(),
                        "Bytes": batch.rows.nbytes,
                        "Position": dict(batch.position),
                    },
                )
            )

    def _adopt(self, source: Source, table: TableId) -> TableRuntime | None:
        """A table the stream mentions that we do not replicate yet: include it if it matches."""
        if not self._data_filter(source).matches(table.parts):
            return None
        states = [s for s in source.discover(self._data_filter(source)) if s.schema.table == table]
        added = self._register(states)
        loadable = [rt for rt in added if rt.writer is not None]
        if loadable:
            self._publish(source)
            self._load(source, loadable)
        return self.tables.get(table)

    def _resync(self, source: Source, rt: TableRuntime, reason: str) -> None:
        """Drop and reload one table (an incompatible schema change): integration SYNCING."""
        self.syncing = True
        self._set_state(IntegrationState.SYNCING)
        started = self._announce("resync", rt.target, Phase="Started", Reason=reason)
        try:
            ns = self._namespace()
            catalog = self.cp.catalog.catalog
            catalog.drop_table((ns, rt.target))
            del self.tables[rt.source]
            states = [
                s for s in source.discover(self._data_filter(source)) if s.schema.table == rt.source
            ]
            added = [r for r in self._register(states) if r.writer is not None]
            for r in added:
                r.reason = f"Resynced after an incompatible schema change: {reason}"
            self._publish(source)  # a change if the table lost its primary key
            self._load(source, added)
            self._announce("resync", rt.target, Phase="Completed", Reason=reason, StartTime=started)
        finally:
            self.syncing = False
            self._set_state(IntegrationState.ACTIVE)

    def _set_state(self, state: IntegrationState) -> None:
        """SYNCING while a table resyncs, back to ACTIVE after (if nothing else is wrong)."""
        current = self.cp.store.get_integration(self.arn)
        if current is not None and current.state in (
            IntegrationState.ACTIVE,
            IntegrationState.SYNCING,
        ):
            self.cp.transition(current, state)
        self.on_problems(self.arn)

    def _rediscover(self, source: Source) -> None:
        """DDL is not in the change stream: new tables, dropped tables and filter changes."""
        self._refresh_integration()
        reconfigure = getattr(source, "reconfigure", None)
        if reconfigure is not None:  # DynamoDB: UnnestSpec/PartitionSpec changed
            for rt in [rt for rt in self.tables.values() if rt.writer is not None]:
                assert rt.writer is not None
                why = reconfigure(rt.writer.table)
                if why:
                    self._resync(source, rt, f"the integration's table properties changed: {why}")
        states = source.discover(self._data_filter(source))
        present = {s.schema.table for s in states}
        new = [s for s in states if s.schema.table not in self.tables]
        if new:
            loadable = [rt for rt in self._register(new) if rt.writer is not None]
            if loadable:
                self._publish(source)
                self._load(source, loadable)
        for tid, rt in list(self.tables.items()):
            if tid not in present and rt.state != "Deleted":
                self._drop_target(rt)
        self._publish(source)  # after _drop_target: the tables it dropped leave the publication

    def _drop_target(self, rt: TableRuntime) -> None:
        """A table dropped at the source, or no longer included by the filter."""
        excluded = self._filter_text != self.integ.data_filter
        rt.state = "Deleted"
        rt.reason = "excluded by the DataFilter" if excluded else "dropped at the source"
        if rt.writer is not None:
            self.cp.catalog.catalog.drop_table((self._namespace(), rt.target))
            rt.writer = None
        self._save_state(rt)
        del self.tables[rt.source]


def _sent(stream: Any) -> int | None:
    """The stream's delivered position, if the source can tell (see ``ChangeStream``)."""
    probe = getattr(stream, "sent_seq", None)
    return probe() if probe is not None else None


def _driver_error(exc: BaseException) -> bool:
    """A database driver's connection-level error (the source went away mid-stream)."""
    return type(exc).__module__.split(".")[0] in {"psycopg2", "pymysql", "pymysqlreplication"} or (
        isinstance(exc, (ConnectionError, TimeoutError))
    )


def _max_seq(batch: ChangeBatch) -> int:
    import pyarrow.compute as pc

    return int(pc.max(batch.seq).as_py()) if len(batch) else -1
