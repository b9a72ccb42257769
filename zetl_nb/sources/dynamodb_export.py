"""DynamoDB exports to S3 (ExportTableToPointInTime), read from a local copy into Arrow.

Against real AWS, Glue zero-ETL loads a DynamoDB table from a full export and then applies
incremental exports. Locally moto's export is not faithful (no manifests, incremental windows
ignored), so this module reads exports that sit on disk in AWS's own S3 layout: downloaded by
:func:`~.dynamodb_exporter.export_and_download` (real AWS only) or written by the test fixtures.

Format, from the DynamoDB developer guide, "DynamoDB table export output format"
(``S3DataExport.Output``):

- ``<prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json``: one JSON object (``exportArn``,
  ``tableArn``, ``exportTime`` or ``exportFromTime``/``exportToTime``, ``manifestFilesS3Key``,
  ``itemCount``, ``outputFormat``, ``exportType``, ``outputView``, ...);
- ``manifest-files.json``: JSON lines, one per data file: ``itemCount``, ``md5Checksum``
  (base64 MD5 of the object), ``etag``, ``dataFileS3Key`` (a key in the bucket);
- data files, gzipped JSON lines: a full export holds ``{"Item": {...}}`` per line under
  ``<ExportId>/data/``; an incremental export holds ``{"Metadata": {"WriteTimestampMicros":
  {"N": "..."}}, "Keys": {...}, "NewImage": {...}, "OldImage": {...}}`` per line under the
  shared ``<prefix>/AWSDynamoDB/data/``, compacted to one record per item and window. A record
  without ``NewImage`` is a delete; ``OldImage`` is there only with ``NEW_AND_OLD_IMAGES``.

Data file keys are resolved below the local ``AWSDynamoDB`` folder, so the prefix a download
was made under does not matter. Only ``DYNAMODB_JSON`` is read (not ``ION``).

Speed: FULL unnesting of a chunk first tries the Arrow path
(:func:`~zetl_nb.transform.unnest_arrow.arrow_full`); any chunk it does not cover exactly (B, BS
and L values, conflicting types, invalid items) goes through
:func:`~zetl_nb.transform.unnest.unnest` on items parsed line by line, which also raises the
errors. Both give the same table.

Requesting and downloading exports from real AWS is :mod:`.dynamodb_exporter`; the source's
export mode (snapshot and incremental refreshes) is :mod:`.dynamodb_export_stream`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..core.changes import ChangeBatch, Column, TableId, TableSchema
from ..transform.dynamotypes import UnnestError
from ..transform.unnest import DEFAULT_UNNEST, check_mode, merge_schemas, unnest
from ..transform.unnest_arrow import arrow_full, loads
from .base import SourceError

__all__ = [
    "BATCH_ROWS",
    "CHUNK_BYTES",
    "DataFile",
    "ExportError",
    "ExportManifest",
    "ExportSnapshot",
    "format_time",
    "micros",
    "parse_time",
    "read_full_export",
    "read_incremental_export",
    "read_manifest",
    "table_schema",
]

SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
#: JSON unnested at a time, about 50,000 items of 300 bytes (a chunk never spans two files).
CHUNK_BYTES = 16 << 20
#: Changes per incremental batch.
BATCH_ROWS = 50_000
_ROOT = "AWSDynamoDB"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOC = "the DynamoDB developer guide, 'DynamoDB table export output format'"


class ExportError(SourceError):
    """A local export is missing, incomplete or not in AWS's format; the message names the file
    and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__("SourceExportInvalid", message)


# -- manifests ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataFile:
    """One line of ``manifest-files.json``, with the local path its S3 key resolves to."""

    key: str
    path: Path
    item_count: int
    md5: str | None


@dataclass(frozen=True)
class ExportManifest:
    """An export's ``manifest-summary.json`` and its data files."""

    directory: Path
    summary: Mapping[str, Any]
    files: tuple[DataFile, ...]

    @property
    def export_type(self) -> str:
        """``FULL_EXPORT`` or ``INCREMENTAL_EXPORT`` (older full exports omit the member)."""
        return str(self.summary.get("exportType") or "FULL_EXPORT")

    @property
    def table_name(self) -> str:
        """The exported table's name (from ``tableArn``)."""
        return str(self.summary.get("tableArn", "")).rpartition("table/")[2]

    def time_us(self, member: str) -> int:
        """A summary time (``2020-11-04T07:28:34.028Z``) in microseconds since the epoch."""
        text = self.summary.get(member)
        try:
            return micros(parse_time(str(text)))
        except ValueError:
            raise self.error(f"has no valid '{member}' ({text!r})") from None

    def error(self, what: str) -> ExportError:
        """An :class:`ExportError` saying the summary ``what`` (and how to fix it)."""
        return ExportError(
            f"{self.directory / SUMMARY} {what}. It must be the manifest-summary.json DynamoDB "
            f"wrote (see {_DOC}); download the export again."
        )


def parse_time(text: str) -> datetime:
    """An export time as manifests and positions write it (``2020-11-04T07:28:34.028Z``), in
    UTC; raises ValueError for anything else."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def format_time(stamp: datetime) -> str:
    """``stamp`` as manifests write times: UTC, milliseconds, ``Z`` (exact for whole ms)."""
    utc = stamp.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def micros(stamp: datetime) -> int:
    """``stamp`` in microseconds since the epoch (the unit of ``WriteTimestampMicros``)."""
    return (stamp - _EPOCH) // timedelta(microseconds=1)


def read_manifest(root: Path | str) -> ExportManifest:
    """The manifests of the export in ``root``: its ``AWSDynamoDB/<ExportId>`` folder (or the
    ``manifest-summary.json`` itself, or a folder holding exactly one export)."""
    directory = _export_dir(Path(root))
    summary_path = directory / SUMMARY
    try:
        summary = json.loads(summary_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"cannot read {summary_path} ({exc}); it must hold the export's summary as DynamoDB "
            f"wrote it (see {_DOC}). Download the whole AWSDynamoDB/<ExportId>/ folder again."
        ) from None
    manifest = ExportManifest(directory, summary if isinstance(summary, dict) else {}, ())
    if not isinstance(summary, dict) or "manifestFilesS3Key" not in summary:
        raise manifest.error("has no 'manifestFilesS3Key'")
    if summary.get("outputFormat", "DYNAMODB_JSON") != "DYNAMODB_JSON":
        raise ExportError(
            f"{summary_path} says outputFormat {summary.get('outputFormat')!r}; only "
            "DYNAMODB_JSON is read. Export again with ExportFormat='DYNAMODB_JSON'."
        )
    files_path = _local(directory, str(summary["manifestFilesS3Key"]))
    if not files_path.is_file():
        files_path = directory / FILES
    files = tuple(_data_files(directory, files_path))
    return ExportManifest(directory, summary, files)


def _export_dir(root: Path) -> Path:
    if root.name == SUMMARY:
        return root.parent
    if (root / SUMMARY).is_file():
        return root
    found = sorted({p.parent for p in root.glob(f"**/{_ROOT}/*/{SUMMARY}")})
    if len(found) == 1:
        return found[0]
    where = "none" if not found else ", ".join(str(p) for p in found)
    raise ExportError(
        f"no single DynamoDB export in {root}: expected {root / SUMMARY} (found: {where}). Pass "
        "the export's AWSDynamoDB/<ExportId> folder, as downloaded from S3 with its manifests."
    )


def _local(directory: Path, key: str) -> Path:
    """An S3 key of the export (``prefix/AWSDynamoDB/...``) below the local AWSDynamoDB folder."""
    _, sep, tail = key.rpartition(f"{_ROOT}/")
    return directory.parent / tail if sep else directory / key


def _data_files(directory: Path, path: Path) -> Iterator[DataFile]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ExportError(
            f"cannot read {path} ({exc}); the export's manifest-files.json lists its data files. "
            "Download the whole AWSDynamoDB/<ExportId>/ folder again."
        ) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key = str(entry["dataFileS3Key"])
            count = int(entry["itemCount"])
        except (ValueError, KeyError, TypeError):
            raise ExportError(
                f"{path} line {number} is not a data file entry (JSON with dataFileS3Key and "
                f"itemCount, see {_DOC}): {line[:200]!r}. Download the export again."
            ) from None
        local = _local(directory, key)
        if not local.is_file():
            raise ExportError(
                f"data file {key} (listed in {path} line {number}) is not at {local}. Download "
                "the export's data files keeping their S3 keys below the AWSDynamoDB folder."
            )
        yield DataFile(key, local, count, entry.get("md5Checksum"))


@dataclass(frozen=True)
class _Block:
    """Whole lines of a data file: ``data`` starts at line ``first`` (1-based)."""

    first: int
    data: bytes
    #: Lines in ``data``, blank or not.
    count: int

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(line number, line)``, blank lines skipped."""
        for number, line in enumerate(self.data.split(b"\n"), self.first):
            if line.strip():
                yield number, line


def _blocks(file: DataFile, verify: bool, size: int) -> Iterator[_Block]:
    """A data file in blocks of about ``size`` bytes of whole lines, after checking the
    manifest's MD5 (a damaged or partial download fails here, not in a parser)."""
    raw = file.path.read_bytes()
    if verify and file.md5:
        digest = base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")
        if digest != file.md5:
            raise ExportError(
                f"data file {file.path} has MD5 {digest}, not the manifest's {file.md5}: it is "
                "damaged or partly downloaded. Download it again."
            )
    first, tail = 1, b""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            while piece := stream.read(size):
                data = tail + piece
                cut = data.rfind(b"\n") + 1
                block, tail = data[:cut], data[cut:]
                if block:
                    lines = block.count(b"\n")
                    yield _Block(first, block, lines)
                    first += lines
    except (OSError, EOFError) as exc:
        raise ExportError(
            f"data file {file.path} is not complete gzip ({exc}). Download it again."
        ) from None
    if tail.strip():
        yield _Block(first, tail, 1)


def _check_count(file: DataFile, count: int) -> None:
    if count != file.item_count:
        raise ExportError(
            f"data file {file.path} holds {count} items, the manifest says {file.item_count}. "
            "Download it again."
        )


def _parse(file: DataFile, number: int, line: bytes) -> Any:
    try:
        return loads(line)
    except ValueError as exc:
        raise ExportError(
            f"data file {file.path} line {number} is not JSON ({exc}): {line[:200]!r}. DynamoDB "
            "JSON exports hold one JSON object per line; download the file again."
        ) from None


def _item(file: DataFile, number: int, line: bytes) -> Any:
    record = _parse(file, number, line)
    if not isinstance(record, dict) or not isinstance(record.get("Item"), dict):
        raise ExportError(
            f"data file {file.path} line {number} is not a full-export record "
            f'{{"Item": {{...}}}}: {line[:200]!r}. Is this an incremental export? Read it with '
            "read_incremental_export."
        )
    return record["Item"]


# -- full exports ---------------------------------------------------------------------------------
@dataclass
class _Chunk:
    file: DataFile
    index: int
    table: pa.Table


class _FullExport:
    """Every block unnested (phase 1, which fixes the merged schema), then conformed (phase 2)."""

    def __init__(
        self,
        root: Path | str,
        keys: Sequence[str],
        mode: str | None,
        schema: pa.Schema | None,
        chunk_bytes: int,
        arrow: bool,
        verify: bool,
    ) -> None:
        self.manifest = read_manifest(root)
        if self.manifest.export_type != "FULL_EXPORT":
            raise ExportError(
                f"{self.manifest.directory / SUMMARY} is an {self.manifest.export_type}, not a "
                "full export; read it with read_incremental_export."
            )
        self.keys, self.mode = list(keys), check_mode(mode)
        self.chunk_bytes = chunk_bytes
        self.chunks: list[_Chunk] = []
        merged = schema if schema is not None else pa.schema([])
        for file in self.manifest.files:
            rows = 0
            for index, block in enumerate(_blocks(file, verify, chunk_bytes)):
                table = self._unnest(file, block, arrow)
                merged = merge_schemas(merged, table.schema)
                self.chunks.append(_Chunk(file, index, table))
                rows += table.num_rows
            if verify:
                _check_count(file, rows)
        self.schema = merged

    def _unnest(
        self, file: DataFile, block: _Block, arrow: bool, schema: pa.Schema | None = None
    ) -> pa.Table:
        if arrow and schema is None and self.mode == "FULL":
            table = arrow_full(block.data, self.keys, block.count)
            if table is not None:
                return table
        items = [_item(file, number, line) for number, line in block.lines()]
        try:
            return unnest(items, self.keys, self.mode, schema=schema)
        except UnnestError as exc:
            raise UnnestError(
                f"{exc} (data file {file.path}, item 0 is line {block.first})"
            ) from exc

    def tables(self) -> Iterator[pa.Table]:
        """The chunks in the merged schema, in file order. A chunk whose columns all kept
        their type only gains null columns; one where a type widened (to string, or a struct
        gaining fields) is unnested again from its file with the merged schema, so its values
        read exactly as one :func:`unnest` of every item would give them."""
        while self.chunks:
            chunk = self.chunks.pop(0)
            have = chunk.table.schema
            if all(self.schema.field(f.name).type == f.type for f in have):
                yield _pad(chunk.table, self.schema)
                continue
            blocks = _blocks(chunk.file, False, self.chunk_bytes)
            block = next(islice(blocks, chunk.index, None))
            yield _pad(self._unnest(chunk.file, block, False, self.schema), self.schema)


def _pad(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s column order, missing columns null."""
    n = table.num_rows
    arrays = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def read_full_export(
    root: Path | str,
    keys: Sequence[str],
    mode: str | None = DEFAULT_UNNEST,
    schema: pa.Schema | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    arrow: bool = True,
    verify: bool = True,
) -> Iterator[pa.Table]:
    """A full export's items as Arrow tables (one per ``chunk_bytes`` of JSON), all in one
    merged schema: the same rows, columns and types as ``unnest(all items, keys, mode, schema)``.

    ``root`` is the export's ``AWSDynamoDB/<ExportId>`` folder (see :func:`read_manifest`);
    ``keys`` the table's key attributes (partition key, then sort key). Every chunk is unnested
    before the first is yielded (the schema is only known then), so the whole table is held as
    Arrow once. ``arrow=False`` skips the Arrow path; ``verify=False`` skips the manifest's MD5
    and item counts. Raises :class:`ExportError` for files not in AWS's format and
    :class:`~zetl_nb.transform.dynamotypes.UnnestError` for items Glue would not replicate.

    >>> tables = read_full_export("exports/AWSDynamoDB/01700000000000-abcd1234", ["id"])
    ... # doctest: +SKIP
    """
    export = _FullExport(root, keys, mode, schema, chunk_bytes, arrow, verify)
    yield from export.tables()


# -- incremental exports --------------------------------------------------------------------------
def read_incremental_export(
    root: Path | str,
    keys: Sequence[str],
    mode: str | None = DEFAULT_UNNEST,
    schema: pa.Schema | None = None,
    batch_rows: int = BATCH_ROWS,
    table: TableId | None = None,
    verify: bool = True,
) -> list[ChangeBatch]:
    """An incremental export as change batches, ordered by ``WriteTimestampMicros`` (the seq).

    A record with ``NewImage`` upserts it: ``c`` when the view has old images and there is none
    (the item is new in the window), else ``u``; with the ``NEW_IMAGE`` view inserts and updates
    look alike and are both ``u``. A record without ``NewImage`` deletes its ``Keys`` (``d``).
    Batches hold about ``batch_rows`` rows and never split one timestamp, so the target's
    ``seq > checkpoint`` test resumes exactly. Each batch's schema is the merge of ``schema``
    and every batch so far. ``position["export_from_time"]`` is where the next incremental
    export starts: this export's ``exportFromTime`` until its last batch, then its
    ``exportToTime``.
    """
    manifest = read_manifest(root)
    if manifest.export_type != "INCREMENTAL_EXPORT":
        raise ExportError(
            f"{manifest.directory / SUMMARY} is a {manifest.export_type}, not an incremental "
            "export; read it with read_full_export or ExportSnapshot."
        )
    mode, keys = check_mode(mode), list(keys)
    old_images = manifest.summary.get("outputView", "NEW_AND_OLD_IMAGES") == "NEW_AND_OLD_IMAGES"
    records = sorted(
        (rec for file in manifest.files for rec in _changes(file, verify, old_images)),
        key=lambda rec: rec[0],
    )
    tid = table or TableId("", None, manifest.table_name)
    merged = schema if schema is not None else pa.schema([])
    batches: list[ChangeBatch] = []
    start = 0
    while start < len(records):
        end = min(start + batch_rows, len(records))
        while end < len(records) and records[end][0] == records[end - 1][0]:
            end += 1
        part = records[start:end]
        rows = unnest([image for _, _, image in part], keys, mode, schema=merged)
        merged = rows.schema
        seq = part[-1][0]
        until = "exportToTime" if end == len(records) else "exportFromTime"
        batches.append(
            ChangeBatch(
                schema=table_schema(tid, merged, keys),
                ops=pa.array([op for _, op, _ in part], pa.string()),
                rows=rows,
                seq=pa.array([s for s, _, _ in part], pa.int64()),
                position={"export_from_time": manifest.summary.get(until), "seq": seq},
            )
        )
        start = end
    return batches


def _changes(file: DataFile, verify: bool, old_images: bool) -> list[tuple[int, str, Any]]:
    """``(WriteTimestampMicros, op, image)`` per record of an incremental data file."""
    out: list[tuple[int, str, Any]] = []
    for block in _blocks(file, verify, CHUNK_BYTES):
        for number, line in block.lines():
            out.append(_change(file, number, line, old_images))
    if verify:
        _check_count(file, len(out))
    return out


def _change(file: DataFile, number: int, line: bytes, old_images: bool) -> tuple[int, str, Any]:
    rec = _parse(file, number, line)
    try:
        stamp = rec["Metadata"]["WriteTimestampMicros"]
        seq = int(stamp["N"] if isinstance(stamp, dict) else stamp)
        keys = rec["Keys"]
        if not isinstance(keys, dict):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise ExportError(
            f"data file {file.path} line {number} is not an incremental-export record "
            '({"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys": {...}, ...}): '
            f"{line[:200]!r}. Is this a full export? Read it with read_full_export."
        ) from None
    new = rec.get("NewImage")
    if new is None:
        return seq, "d", keys
    return seq, "u" if rec.get("OldImage") is not None or not old_images else "c", new


def table_schema(table: TableId, arrow: pa.Schema, keys: Sequence[str]) -> TableSchema:
    """The engine's schema of unnested columns, keys first (as the DynamoDB source gives it)."""
    cols = [Column(f.name, f.type, str(f.type)) for f in arrow]
    cols.sort(key=lambda c: (c.name not in keys, keys.index(c.name) if c.name in keys else 0))
    return TableSchema(table, tuple(cols), tuple(keys))


# -- the engine's SnapshotReader ------------------------------------------------------------------
class ExportSnapshot:
    """A full export on disk as the engine's initial copy (in place of the parallel Scan).

    ``seq`` is the export's ``exportTime`` in microseconds minus one: changes at or after that
    time come again from the incremental exports (``ExportFromTime`` is inclusive) and re-apply
    whole images idempotently; nothing before it is missed. ``position`` says where the first
    incremental export starts. ``schema`` (the table's key columns, or the target's current
    schema) seeds the merged schema, so an empty export still has its key columns.
    """

    def __init__(
        self,
        root: Path | str,
        keys: Sequence[str],
        mode: str | None = DEFAULT_UNNEST,
        schema: pa.Schema | None = None,
        table: TableId | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._export: _FullExport | None = _FullExport(
            root, keys, mode, schema, chunk_bytes, True, True
        )
        manifest = self._export.manifest
        self.keys = list(keys)
        self.table = table or TableId("", None, manifest.table_name)
        self.seq = manifest.time_us("exportTime") - 1
        self.position: Mapping[str, Any] = {
            "export_from_time": manifest.summary["exportTime"],
            "seq": self.seq,
        }
        self.arrow_schema = self._export.schema

    def schema(self, table: TableId) -> TableSchema:
        """The export's columns, merged over its items, keys first."""
        self._check(table)
        return table_schema(self.table, self.arrow_schema, self.keys)

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        """The export's rows in the merged schema (once: the chunks are released as read)."""
        self._check(table)
        export, self._export = self._export, None
        if export is None:
            raise SourceError("SourceUnavailable", "this export snapshot was already read")
        for chunk in export.tables():
            yield from chunk.to_batches(max_chunksize=batch_rows)

    def close(self) -> None:
        """Release the unnested chunks."""
        self._export = None

    def _check(self, table: TableId) -> None:
        if table != self.table:
            raise SourceError(
                "SourceTableNotFound", f"table {table} is not in this export of {self.table}"
            )
