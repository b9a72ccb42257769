"""DynamoDB's export mode: the initial copy from a full export, changes from incremental exports.

This is the path Glue zero-ETL takes on AWS (the guide: the initial load is an
``ExportTableToPointInTime`` full export, then every RefreshInterval an incremental export). An
:class:`~zetl_nb.sources.dynamodb_exporter.Exporter` makes the exports (real AWS:
``S3Exporter``; tests: fixtures in AWS's format written from the local table);
:mod:`.dynamodb_export` reads them.

- :class:`ExportLoad` is the engine's SnapshotReader over a full export: rows unnested with the
  table's UnnestSpec, partition columns converted, key columns first. Its ``seq`` is the
  export time minus 1 µs and its position starts the first incremental export at the export
  time (``ExportFromTime`` is inclusive: writes at that instant come again, applied
  idempotently and not counted twice).
- :class:`ExportStream` refreshes on the same clock as the stream path (RefreshInterval on the
  Lab clock, ``lab.refresh_now``, ``lab.wait``): a refresh exports ``[export_from_time, now)``
  in consecutive windows of at most ``max_export_seconds`` (AWS: 24 hours, so a RefreshInterval
  of days becomes sequential daily batches) and at least ``min_export_seconds`` (AWS: 15
  minutes; a shorter remainder waits for the next refresh). One window per poll; its batches
  are in ``WriteTimestampMicros`` order (the ``seq``). Window bounds are whole milliseconds, as
  export manifests write them.

Position: ``{"export_from_time": "<ISO, Z>", "seq": <last WriteTimestampMicros>, "replay":
<export time of the full export, µs>}``. ``export_from_time`` is where the next incremental
export starts: the window's start until its last batch, then its end. A restart exports from
the last stored one again and the target skips rows at or below its checkpoint, so nothing is
lost or applied twice. A position without ``export_from_time`` (from the stream path) cannot
resume: the table is copied again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..core.changes import ChangeBatch, TableId, TableSchema
from ..transform.dynamotypes import UnnestError
from .base import SourceError
from .dynamodb_export import (
    ExportSnapshot,
    format_time,
    micros,
    parse_time,
    read_incremental_export,
)
from .dynamodb_source import RefreshClock, key_only

if TYPE_CHECKING:
    from .dynamodb_exporter import Exporter
    from .dynamodb_source import DynamoDBSource

__all__ = ["ExportLoad", "ExportStream", "export_windows"]

_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def export_windows(
    start: datetime, until: datetime, min_seconds: float, max_seconds: float
) -> list[tuple[datetime, datetime]]:
    """Consecutive incremental-export windows ``[from, to)`` from ``start`` towards ``until``:
    each at most ``max_seconds`` long, the last one cut at ``until``, and none shorter than
    ``min_seconds`` (a shorter remainder is left for a later refresh). Bounds are whole
    milliseconds; ``start`` is expected to be one.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [(a.hour, b.hour) for a, b in export_windows(t, t + timedelta(hours=50), 900, 86400)]
    [(0, 0), (0, 0), (0, 2)]
    """
    longest = max(_floor_ms(timedelta(seconds=max_seconds)), _MS)
    shortest = min(-_floor_ms(-timedelta(seconds=min_seconds)), longest)
    end = start + _floor_ms(until - start) if until > start else start
    windows = []
    while end - start >= shortest:
        stop = min(start + longest, end)
        windows.append((start, stop))
        start = stop
    return windows


def _floor_ms(span: timedelta) -> timedelta:
    return (span // _MS) * _MS


def _schema_error(exc: UnnestError) -> SourceError:
    return SourceError("SourceSchemaNotSupported", str(exc), fatal=True)


class ExportLoad:
    """The initial copy from a full export of the source's table (a SnapshotReader)."""

    def __init__(self, source: DynamoDBSource, exporter: Exporter) -> None:
        self.source, self.exporter = source, exporter
        source.discover(None)  # the key columns, first in the schema
        keys = source._keys or []
        self.folder = exporter.full(source.table_arn)
        try:
            self.snapshot = ExportSnapshot(
                self.folder, keys, source.mode, schema=key_only(source), table=source.id
            )
        except BaseException as exc:
            exporter.discard(self.folder)
            if isinstance(exc, UnnestError):
                raise _schema_error(exc) from exc
            raise
        self.seq = self.snapshot.seq
        self.position: Mapping[str, Any] = {
            **self.snapshot.position,
            "replay": self.seq + 1,  # writes at the export time come again
        }
        # Partition conversions change column types, not with the data: an empty table shows how.
        self.arrow_schema = source._converted(self.snapshot.arrow_schema.empty_table()).schema

    def schema(self, table: TableId) -> TableSchema:
        """The export's columns (merged over its items, converted), keys first."""
        return self.source.schema_of(self.arrow_schema)

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        """The export's rows, partition columns converted (once: read releases them)."""
        try:
            for batch in self.snapshot.read(table, batch_rows):
                rows = self.source._converted(pa.Table.from_batches([batch]))
                yield from rows.to_batches(max_chunksize=batch_rows)
        except UnnestError as exc:
            raise _schema_error(exc) from exc

    def close(self) -> None:
        """Release the rows and the local copy of the export."""
        self.snapshot.close()
        self.exporter.discard(self.folder)


class ExportStream:
    """Incremental exports as change batches, one window per poll, at each refresh."""

    #: ``sent_seq`` is set inside ``poll`` and covers what that poll returned.
    sent_after_poll = True

    def __init__(
        self, source: DynamoDBSource, exporter: Exporter, position: Mapping[str, Any]
    ) -> None:
        self.source, self.exporter = source, exporter
        try:
            self._from = parse_time(str(position["export_from_time"]))
        except (KeyError, ValueError):
            raise SourceError(
                "PositionLost",
                f"DynamoDB table '{source.table_name}': the stored position {dict(position)} "
                "has no export_from_time (it was taken without an exporter), so incremental "
                "exports cannot resume from it. The table is copied again (resync).",
                resync=True,
            ) from None
        self._seq = int(position.get("seq", 0))
        self._replay = int(position.get("replay", 0))
        self._position = self._at(self._from)
        self._schema = key_only(source)
        self._version = source.version
        self._clock = RefreshClock(source)
        self._until: datetime | None = None  # the refresh in progress exports up to here
        self._handling = 0
        self._sent: int | None = 0  # nothing delivered yet

    @property
    def position(self) -> Mapping[str, Any]:
        """Where the next incremental export starts (see the module docstring)."""
        return self._position

    def refresh(self) -> None:
        """``lab.refresh_now``: export what is pending at the next poll."""
        self._clock.ask()

    def poll(self, max_rows: int, max_wait: float) -> list[ChangeBatch]:
        """The next window's changes: a refresh starts (due or asked for) and fixes its end at
        now; each poll exports one window until none of at least the minimum is left."""
        if not self._clock.wait(max_wait):
            return []
        if self._until is None:
            self._handling, now_us = self._clock.begin()
            # Up to the next whole millisecond (a window bound), once it has passed: the refresh
            # then covers every write up to the request it serves.
            until_us = -(-now_us // 1000) * 1000
            time.sleep((until_us - now_us) / 1e6)
            self._until = _EPOCH + timedelta(microseconds=until_us)
        windows = self._windows()
        batches = self._export(*windows[0]) if windows else []
        more = len(windows) > 1
        self._clock.end(self._handling, more)
        if not more:
            self._until = None
            self._sent = micros(self._from)
        if not windows and self.source.refresh_seconds is None:
            time.sleep(min(max_wait, 0.2))  # nothing to export yet: do not spin
        return batches

    def _windows(self) -> list[tuple[datetime, datetime]]:
        assert self._until is not None
        source = self.source
        return export_windows(
            self._from, self._until, source.min_export_seconds, source.max_export_seconds
        )

    def _export(self, start: datetime, end: datetime) -> list[ChangeBatch]:
        """One incremental export ``[start, end)`` as batches; the position moves to ``end``."""
        source = self.source
        if self._version != source.version:  # new UnnestSpec: the table was reloaded
            self._schema, self._version = key_only(source), source.version
        folder = self.exporter.incremental(source.table_arn, start, end)
        try:
            read = read_incremental_export(
                folder, source._keys or [], source.mode, schema=self._schema, table=source.id
            )
        except UnnestError as exc:
            raise _schema_error(exc) from exc
        finally:
            self.exporter.discard(folder)
        batches = [self._batch(b, start) for b in read]
        self._from = end
        self._position = self._at(end)
        if batches:  # the last batch resumes after the window
            batches[-1] = replace(batches[-1], position=self._position)
        return batches

    def _batch(self, batch: ChangeBatch, start: datetime) -> ChangeBatch:
        """A batch as the stream path gives it: converted, keyed schema, resumable position."""
        self._schema = batch.rows.schema
        rows = self.source._converted(batch.rows)
        self._seq = max(self._seq, int(batch.position["seq"]))
        first = int(batch.seq[0].as_py()) if len(batch) else 0
        return replace(
            batch,
            schema=self.source.schema_of(rows.schema),
            rows=rows,
            position=self._at(start),
            replay_until=self._replay if len(batch) and first <= self._replay else None,
        )

    def _at(self, export_from: datetime) -> dict[str, Any]:
        return {
            "export_from_time": format_time(export_from),
            "seq": self._seq,
            "replay": self._replay,
        }

    def ack(self, position: Mapping[str, Any]) -> None:
        """Exports are not released by readers: nothing to do."""

    def sent_seq(self) -> int | None:
        """Changes written before this time (µs) are delivered: the last window's end."""
        return self._sent

    def close(self) -> None:
        """Nothing held between polls."""
