"""DynamoDB as a zero-ETL source: parallel Scan for the initial copy, Streams for the changes
(or, with an :class:`~zetl_nb.sources.dynamodb_exporter.Exporter`, AWS's own export path).

It speaks the same :class:`~zetl_nb.sources.base.Source` contract as the relational sources, so
the engine's runner drives it (prerequisites, table states, exactly-once commits, ``lab.wait``).
Differences, all from the Glue guide:

- one table per integration, named after the DynamoDB table; its schema comes from the items
  (UnnestSpec) and only grows: a batch never drops columns (``additive_schema``);
- changes are applied every ``RefreshInterval`` on the Lab clock (``refresh_now`` for labs), not
  continuously: the stream holds records back until the next refresh;
- hand-off: the stream is read from the start of its retention after the scan; records older
  than the scan (minus a margin for ``ApproximateCreationDateTime``'s rounding) are in it, and
  the target skips them by ``seq``; later ones are applied idempotently (whole new images), and
  those written while the scan ran are not counted again when they change nothing
  (``ChangeBatch.replay_until``).

``seq`` is microseconds of ``ApproximateCreationDateTime``, made strictly increasing per stream
(``max(last + 1, time)``), with the last one kept in the position, so it survives restarts.

Export mode (``exporter=``): the initial copy is a full export and each refresh applies
incremental exports, as Glue zero-ETL does on AWS; no stream is needed. See
:mod:`.dynamodb_export_stream`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..core.changes import ChangeBatch, Column, TableId, TableSchema, TableState
from ..core.prerequisites import Problem
from .base import SourceError
from .dynamodb import check_prerequisites, table_exists
from .dynamodb_stream import ShardReader, ShardTree, start_here

if TYPE_CHECKING:
    from .base import ChangeStream, SnapshotReader
    from .dynamodb_exporter import Exporter

#: Scan-start margin: ApproximateCreationDateTime may be rounded down (to the second on AWS).
HANDOFF_MARGIN_S = 1.0
#: Shard iterators expire after 15 minutes; one older than this is not used.
ITERATOR_FRESH_S = 600.0
SCAN_SEGMENTS = 4
#: AWS's bounds of an incremental export's window (ExportFromTime to ExportToTime).
MIN_EXPORT_SECONDS = 15 * 60.0
MAX_EXPORT_SECONDS = 24 * 3600.0


class DynamoDBSource:
    """One DynamoDB table with its stream (NEW_AND_OLD_IMAGES), or with an exporter.

    ``exporter`` switches to the export path: ``snapshot`` loads a full export and ``stream``
    applies incremental exports at each refresh, in windows of ``min_export_seconds`` to
    ``max_export_seconds`` (AWS: 15 minutes to 24 hours; a Lab divides both by its
    ``time_scale``). Without one, a parallel Scan and the table's stream.
    """

    engine = "dynamodb"
    additive_schema = True

    def __init__(
        self,
        client: Any,
        streams: Any,
        table_arn: str,
        account: str,
        region: str,
        to_arrow: Callable[[list[dict[str, Any]], list[str], str], pa.Table],
        merge: Callable[[pa.Schema, pa.Schema], pa.Schema],
        conform: Callable[[pa.Table, pa.Schema], pa.Table],
        refresh_seconds: float | None = None,
        config: Callable[[], tuple[str, list[dict[str, Any]] | None]] | None = None,
        day_seconds: float | None = None,
        exporter: Exporter | None = None,
        min_export_seconds: float = MIN_EXPORT_SECONDS,
        max_export_seconds: float = MAX_EXPORT_SECONDS,
    ) -> None:
        self.client = client
        self.streams = streams
        self.table_arn = table_arn
        self.table_name = table_arn.split("table/", 1)[1]
        self.account, self.region = account, region
        self._unnest, self._merge, self._conform = to_arrow, merge, conform
        self._config = config or (lambda: ("FULL", None))
        #: UnnestSpec and PartitionSpec from the table properties; ``version`` counts changes.
        self.mode, self.partition_spec = self._config()
        self.version = 0
        #: (hand-off seq, LATEST iterators per open shard, monotonic time) from the last copy.
        self.handoff_iterators: tuple[int, dict[str, str], float] | None = None
        self.refresh_seconds = refresh_seconds
        #: RefreshInterval of 1440 minutes or more: a refresh applies its changes as sequential
        #: batches of one day each (on the Lab clock), as AWS does (an incremental export spans
        #: at most 24 hours). None: one batch per read.
        self.day_seconds = day_seconds
        #: The export path (real AWS: S3Exporter); None reads the stream.
        self.exporter = exporter
        self.min_export_seconds, self.max_export_seconds = min_export_seconds, max_export_seconds
        self.id = TableId("", None, self.table_name)
        self._keys: list[str] | None = None
        #: When the latest refresh was due or asked for: what ``lab.wait`` waits for.
        self.requested_us = _now_us()

    # -- Source -------------------------------------------------------------------------------
    def check_prerequisites(self) -> list[Problem]:
        """The stream change capture reads; none in export mode, which reads no stream (PITR
        and the resource policy are the control plane's checks, which keep running while the
        integration is ACTIVE)."""
        if not table_exists(self.client, self.table_name):
            return check_prerequisites(self.client, self.table_arn, self.account, self.region)
        if self.exporter is not None:
            return []
        return self._stream_problems()

    def _stream_problems(self) -> list[Problem]:
        from functools import partial

        from ..core.prerequisites import Fix

        spec = self._describe().get("StreamSpecification") or {}
        if spec.get("StreamEnabled") and spec.get("StreamViewType") == "NEW_AND_OLD_IMAGES":
            return []
        params = {
            "TableName": self.table_name,
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        }
        return [
            Problem(
                "SourceStreamDisabled",
                f"DynamoDB table '{self.table_name}' has no stream with NEW_AND_OLD_IMAGES; "
                "change capture reads it. Call dynamodb.update_table(TableName="
                f"'{self.table_name}', StreamSpecification={{'StreamEnabled': True, "
                "'StreamViewType': 'NEW_AND_OLD_IMAGES'}), or use fix-it-for-me.",
                Fix(
                    f"Enable a NEW_AND_OLD_IMAGES stream on DynamoDB table '{self.table_name}'",
                    "dynamodb",
                    "UpdateTable",
                    params,
                    partial(self.client.update_table, **params),
                ),
            )
        ]

    def discover(self, data_filter: Any) -> list[TableState]:
        """The table (DataFilter does not apply to DynamoDB); [] once it is deleted."""
        try:
            desc = self._describe()
        except self.client.exceptions.ResourceNotFoundException:
            return []
        keys = self.key_schema(desc)
        schema = TableSchema(self.id, tuple(keys), tuple(c.name for c in keys))
        return [TableState(schema, estimated_rows=int(desc.get("ItemCount") or 0))]

    def publish(self, tables: Sequence[TableId]) -> None:
        """Streams carry every item of the table: nothing to name."""

    def snapshot(self, tables: list[TableId]) -> SnapshotReader:
        """The initial copy: a full export in export mode, else a parallel Scan."""
        if self.exporter is not None:
            from .dynamodb_export_stream import ExportLoad

            return ExportLoad(self, self.exporter)
        return _ScanSnapshot(self, self._stream_arn())

    def stream(self, position: Mapping[str, Any]) -> ChangeStream:
        """Changes from ``position``: incremental exports in export mode, else the stream."""
        if self.exporter is not None:
            from .dynamodb_export_stream import ExportStream

            return ExportStream(self, self.exporter, position)
        return _Stream(self, position)

    def current_position(self) -> Mapping[str, Any]:
        """The latest refresh due or asked for: changes apply at refreshes, not before."""
        return {"seq": self.requested_us}

    def seq_of(self, position: Mapping[str, Any]) -> int:
        return int(position.get("seq", 0))

    def drop(self) -> None:
        """Nothing was created on the source."""

    def close(self) -> None:
        """boto3 clients hold no connections worth closing."""

    def prepare_table(self, table: Any) -> None:
        """Partition the target once its columns exist (PartitionSpec, else bucket on the key)."""
        from ..transform.partition import PartitionError, iceberg_partition_spec

        if not table.spec().is_unpartitioned() or table.current_snapshot() is not None:
            return
        try:
            wanted = iceberg_partition_spec(table.schema(), self.partition_spec, self._keys or [])
        except PartitionError as exc:
            raise SourceError("SourcePartitionSpecInvalid", str(exc)) from exc
        if wanted.is_unpartitioned():
            return
        schema = table.schema()
        with table.update_spec() as update:
            for f in wanted.fields:
                update.add_field(schema.find_column_name(f.source_id), f.transform, f.name)

    def _to_arrow(self, items: list[dict[str, Any]], keys: list[str]) -> pa.Table:
        """Items → Arrow (UnnestSpec); a table past the guide's limits FAILS the integration."""
        from ..transform.dynamotypes import UnnestError

        try:
            return self._unnest(items, keys, self.mode)
        except UnnestError as exc:
            raise SourceError("SourceSchemaNotSupported", str(exc), fatal=True) from exc

    def _merged(self, old: pa.Schema, new: pa.Schema) -> pa.Schema:
        from ..transform.dynamotypes import UnnestError

        try:
            return self._merge(old, new)
        except UnnestError as exc:
            raise SourceError("SourceSchemaNotSupported", str(exc), fatal=True) from exc

    def reconfigure(self, table: Any | None = None) -> str | None:
        """Pick up changed table properties: why ``table`` must be resynced, or None.

        A new UnnestSpec reshapes every row; a new PartitionSpec resyncs only when it conflicts
        with how ``table`` is partitioned (``spec_conflicts``), else it applies from now on.
        """
        from ..transform.partition import PartitionError, spec_conflicts

        mode, spec = self._config()
        if (mode, spec) == (self.mode, self.partition_spec):
            return None
        old_mode = self.mode
        self.mode, self.partition_spec = mode, spec
        if mode != old_mode or table is None:
            reason = f"its UnnestSpec changed from {old_mode} to {mode}"
        else:
            try:
                why = spec_conflicts(table.spec(), table.schema(), spec, self._keys or [])
            except PartitionError as exc:
                raise SourceError("SourcePartitionSpecInvalid", str(exc)) from exc
            if why is None:
                return None
            reason = f"its PartitionSpec conflicts with the table: {why}"
        self.version += 1  # the stream starts a new schema for the reloaded table
        return reason

    def _converted(self, rows: pa.Table) -> pa.Table:
        """Time partition columns converted to UTC timestamps (after schemas are merged)."""
        if not self.partition_spec:
            return rows
        from ..transform.partition import convert_partition_columns

        rows, failures = convert_partition_columns(rows, self.partition_spec)
        if failures:
            _, reason = failures[0]
            raise SourceError(
                "SourcePartitionConversionFailed",
                f"DynamoDB table '{self.table_name}': {reason} (and {len(failures) - 1} more "
                "items). Fix the items, or the ConversionSpec of the integration's PartitionSpec "
                "(modify_integration_table_properties).",
            )
        return rows

    # -- helpers -------------------------------------------------------------------------------
    def _describe(self) -> dict[str, Any]:
        return dict(self.client.describe_table(TableName=self.table_name)["Table"])

    def key_schema(self, desc: Mapping[str, Any]) -> list[Column]:
        types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
        arrow = {"S": pa.string(), "N": pa.float64(), "B": pa.binary()}
        order = sorted(desc["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        cols = [
            Column(k["AttributeName"], arrow[types[k["AttributeName"]]], types[k["AttributeName"]])
            for k in order
        ]
        self._keys = [c.name for c in cols]
        return cols

    def _stream_arn(self) -> str:
        arn = self._describe().get("LatestStreamArn")
        if not arn:
            raise SourceError(
                "SourceStreamDisabled",
                f"DynamoDB table '{self.table_name}' has no stream: enable NEW_AND_OLD_IMAGES.",
            )
        return str(arn)

    def schema_of(self, arrow: pa.Schema) -> TableSchema:
        """The engine's schema of Arrow columns from items (keys first, as DynamoDB names them)."""
        keys = self._keys or []
        cols = [Column(f.name, f.type, str(f.type)) for f in arrow]
        cols.sort(key=lambda c: (c.name not in keys, keys.index(c.name) if c.name in keys else 0))
        return TableSchema(self.id, tuple(cols), tuple(keys))

    def scan_pages(self, segments: int = SCAN_SEGMENTS) -> Iterator[list[dict[str, Any]]]:
        """Pages of items from a parallel Scan (one thread per segment)."""
        pages: list[list[dict[str, Any]]] = []
        lock = threading.Lock()

        def segment(i: int) -> None:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Segment": i,
                "TotalSegments": segments,
            }
            while True:
                page = self.client.scan(**kwargs)
                with lock:
                    pages.append(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        with ThreadPoolExecutor(segments, thread_name_prefix="zetl-scan") as pool:
            list(pool.map(segment, range(segments)))
        yield from pages


class _ScanSnapshot:
    """The whole table, scanned once, as Arrow conformed to the merged schema of its items."""

    def __init__(self, source: DynamoDBSource, stream_arn: str) -> None:
        self.source = source
        started = time.time()
        self.seq = int((started - HANDOFF_MARGIN_S) * 1e6)
        tree, iterators = start_here(source.streams, stream_arn)
        self.position: Mapping[str, Any] = {
            **tree.to_position(),
            "seq": self.seq,
            "handoff": self.seq,  # records at or before this are in the scan
        }
        # For the stream that follows this copy in this process: skip the backlog it holds.
        source.handoff_iterators = (self.seq, iterators, time.monotonic())
        source.discover(None)  # key columns first in the schema
        keys = source._keys or []
        tables = [source._to_arrow(items, keys) for items in source.scan_pages() if items]
        schema = key_only(source)
        for t in tables:
            schema = source._merged(schema, t.schema)
        table = (
            pa.concat_tables([source._conform(t, schema) for t in tables])
            if tables
            else schema.empty_table()
        )
        self.table = source._converted(table)
        self.arrow_schema = self.table.schema
        # Records up to here may be in the copy already: replayed, but not counted if they
        # change nothing (the margin again covers ApproximateCreationDateTime's rounding).
        self.position = {**self.position, "replay": int((time.time() + HANDOFF_MARGIN_S) * 1e6)}

    def schema(self, table: TableId) -> TableSchema:
        return self.source.schema_of(self.arrow_schema)

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        yield from self.table.to_batches(max_chunksize=batch_rows)

    def close(self) -> None:
        self.table = self.arrow_schema.empty_table()


def key_only(source: DynamoDBSource) -> pa.Schema:
    """The table's key columns alone: where a schema merged from items starts."""
    desc = source._describe()
    return pa.schema([pa.field(c.name, c.type) for c in source.key_schema(desc)])


class RefreshClock:
    """When a DynamoDB stream releases changes: every RefreshInterval on the Lab clock (every
    poll without one), and at once when asked (``lab.refresh_now``).

    Refreshes asked for and handled are counted: a read serves every request made before it
    started, never one made during it (that one may want later writes). ``more`` says the last
    read stopped early (``max_rows``, or more export windows to go): keep reading.
    """

    def __init__(self, source: DynamoDBSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._asked, self._handled = 1, 0  # the first refresh runs at once
        self.more = False
        self._wake = threading.Event()
        self._next = 0.0

    def ask(self) -> None:
        """A refresh now: the latest request is what ``lab.wait`` waits for."""
        with self._lock:
            self.source.requested_us = _now_us()
            self._asked += 1
        self._wake.set()

    def pending(self) -> bool:
        """A refresh is due, asked for, or unfinished."""
        due = self.source.refresh_seconds is None or time.monotonic() >= self._next
        return due or self.more or self._asked > self._handled

    def wait(self, max_wait: float) -> bool:
        """Whether to read now, after waiting up to ``max_wait`` seconds for a refresh."""
        if self.pending():
            return True
        self._wake.wait(max_wait)
        self._wake.clear()
        return self.pending()

    def begin(self) -> tuple[int, int]:
        """A read starts: the requests it serves (for :meth:`end`), and the time now (µs)."""
        with self._lock:
            handling = self._asked
            self.source.requested_us = max(self.source.requested_us, _now_us())
            return handling, _now_us()

    def end(self, handling: int, more: bool) -> None:
        """A read ended; ``more`` if it stopped early. The next refresh is due an interval on."""
        self._handled = handling
        self.more = more
        if not more and self.source.refresh_seconds is not None:
            self._next = time.monotonic() + self.source.refresh_seconds


class _Stream:
    """Stream records as change batches, released every RefreshInterval (or on refresh)."""

    #: ``sent_seq`` is set inside ``poll`` and covers what that poll returned.
    sent_after_poll = True

    def __init__(self, source: DynamoDBSource, position: Mapping[str, Any]) -> None:
        self.source = source
        arn = source._stream_arn()
        self._seq = int(position.get("seq", 0))
        self._handoff = int(position.get("handoff", 0))
        self.reader = ShardReader(
            source.streams, ShardTree.from_position(position, arn), self._handoff_iterators()
        )
        self._replay = int(position.get("replay", 0))
        self._window_from = max(self._seq, self._handoff)  # where the first day window starts
        self._position = self._at()
        self._schema = key_only(source)
        self._version = source.version
        self._clock = RefreshClock(source)
        self._sent: int | None = 0  # nothing delivered yet (None would mean "unknown")

    def _handoff_iterators(self) -> dict[str, str] | None:
        """The LATEST iterators the copy this stream follows took, while they are fresh."""
        hint, self.source.handoff_iterators = self.source.handoff_iterators, None
        if hint is None:
            return None
        handoff, iterators, taken = hint
        fresh = time.monotonic() - taken < ITERATOR_FRESH_S
        return iterators if handoff == self._handoff and fresh else None

    @property
    def position(self) -> Mapping[str, Any]:
        return self._position

    def refresh(self) -> None:
        """``lab.refresh_now``: release what the stream holds at the next poll."""
        self._clock.ask()

    def poll(self, max_rows: int, max_wait: float) -> list[ChangeBatch]:
        if not self._clock.wait(max_wait):
            return []
        handling, read_from = self._clock.begin()
        records = self.reader.read(max_rows)
        more = not self.reader.drained or len(records) >= max_rows
        self._clock.end(handling, more)
        if not more:
            self._sent = read_from
        if not records:
            if self.source.refresh_seconds is None:
                time.sleep(min(max_wait, 0.2))
            self._position = self._at()
            return []
        days = self._days(records)
        if not more:
            self._window_from = read_from
        batches = [b for b in (self._batch(group) for group in days) if b is not None]
        self._position = self._at()
        return batches

    def _days(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Records in sequential one-day windows from the last refresh (RefreshInterval of a
        day or more); otherwise all in one."""
        day = self.source.day_seconds
        if not day:
            return [records]
        width = int(day * 1e6)
        groups: dict[int, list[dict[str, Any]]] = {}
        for rec in records:
            index = max(0, (_created_us(rec) - self._window_from) // width)
            groups.setdefault(index, []).append(rec)
        return [groups[i] for i in sorted(groups)]

    def _at(self) -> dict[str, Any]:
        return {
            **self.reader.tree.to_position(),
            "seq": self._seq,
            "handoff": self._handoff,
            "replay": self._replay,
        }

    def _batch(self, records: list[dict[str, Any]]) -> ChangeBatch | None:
        """Records as one batch; ``None`` if all of them were already in the initial scan."""
        ops, images, seqs = [], [], []
        op_of = {"INSERT": "c", "MODIFY": "u", "REMOVE": "d"}
        for rec in records:
            d = rec["dynamodb"]
            t = _created_us(rec)
            if t <= self._handoff:  # older than the scan (whatever the shard): in the copy
                continue
            self._seq = max(self._seq + 1, t)
            seqs.append(self._seq)
            ops.append(op_of[rec["eventName"]])
            images.append(d.get("NewImage") or d["Keys"])
        if not images:
            return None
        if self._version != self.source.version:  # new UnnestSpec: the table was reloaded
            self._schema, self._version = key_only(self.source), self.source.version
        rows = self.source._to_arrow(images, self.source._keys or [])
        self._schema = self.source._merged(self._schema, rows.schema)
        rows = self.source._converted(self.source._conform(rows, self._schema))
        return ChangeBatch(
            schema=self.source.schema_of(rows.schema),
            ops=pa.array(ops, pa.string()),
            rows=rows,
            seq=pa.array(seqs, pa.int64()),
            position=self._at(),
            replay_until=self._replay if seqs[0] <= self._replay else None,
        )

    def ack(self, position: Mapping[str, Any]) -> None:
        """Streams are not released by readers: nothing to do."""

    def sent_seq(self) -> int | None:
        return self._sent

    def close(self) -> None:
        """Iterators expire by themselves."""


def _created_us(record: Mapping[str, Any]) -> int:
    """A stream record's ``ApproximateCreationDateTime`` in microseconds."""
    at = record["dynamodb"].get("ApproximateCreationDateTime")
    return int(at.timestamp() * 1e6) if hasattr(at, "timestamp") else int(float(at or 0) * 1e6)


def _now_us() -> int:
    return int(time.time() * 1e6)
