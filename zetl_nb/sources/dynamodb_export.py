"""DynamoDB exports to S3 (ExportTableToPointInTime), read from a local copy into Arrow.

Against real AWS, Glue zero-ETL loads a DynamoDB table from a full export and then applies
incremental exports. Locally moto's export is not faithful (no manifests, incremental windows
ignored), so this module reads exports that sit on disk in AWS's own S3 layout: downloaded by
:func:`export_and_download` (real AWS only) or written by the test fixtures.

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

Speed: FULL unnesting of a chunk first tries an Arrow path (``pyarrow.json`` parses the chunk,
compute kernels flatten the descriptor structs); any chunk it does not cover exactly (B, BS and
L values, conflicting types, invalid items) goes through :func:`~zetl_nb.transform.unnest.unnest`
on items parsed line by line, which also raises the errors. Both give the same table.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..core.changes import ChangeBatch, Column, TableId, TableSchema
from ..transform.dynamotypes import DESCRIPTORS, UnnestError, walk
from ..transform.unnest import DEFAULT_UNNEST, check_mode, merge_schemas, unnest
from .base import SourceError

__all__ = [
    "BATCH_ROWS",
    "CHUNK_BYTES",
    "DataFile",
    "ExportError",
    "ExportManifest",
    "ExportSnapshot",
    "arrow_full",
    "export_and_download",
    "export_request",
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
_LOADS: Callable[[bytes], Any]
try:  # orjson parses DynamoDB JSON lines ~1.6x faster than json; it is optional
    import orjson

    _LOADS = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _LOADS = json.loads


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
        return str(self.summary.get("tableArn", "")).rpartition("table/")[2]

    def time_us(self, member: str) -> int:
        """A summary time (``2020-11-04T07:28:34.028Z``) in microseconds since the epoch."""
        text = self.summary.get(member)
        try:
            stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise self.error(f"has no valid '{member}' ({text!r})") from None
        return (stamp.replace(tzinfo=stamp.tzinfo or UTC) - _EPOCH) // timedelta(microseconds=1)

    def error(self, what: str) -> ExportError:
        return ExportError(
            f"{self.directory / SUMMARY} {what}. It must be the manifest-summary.json DynamoDB "
            f"wrote (see {_DOC}); download the export again."
        )


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
        return _LOADS(line)
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


# -- the Arrow path (FULL) ------------------------------------------------------------------------
_TEXT = {"S": pa.string(), "N": pa.string(), "B": pa.string()}
_TEXT_LISTS = ("SS", "NS", "BS")
_DESCRIPTOR_SET = frozenset(DESCRIPTORS)


def arrow_full(data: bytes, keys: Sequence[str], lines: int | None = None) -> pa.Table | None:
    """``unnest(items, keys, "FULL")`` of JSON lines ``{"Item": ...}`` with Arrow kernels, or
    None when the lines hold what only :func:`unnest` converts exactly (B, BS, L, a type
    conflict, blank lines, anything invalid: ``unnest`` then also raises the error)."""
    import pyarrow.json as pj

    try:
        table = pj.read_json(io.BytesIO(data))
        text = _text_schema(table.schema)
        if text != table.schema:  # pyarrow read an S like "2024-05-01" as a timestamp
            options = pj.ParseOptions(explicit_schema=text)
            table = pj.read_json(io.BytesIO(data), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if lines is None:  # the number of lines, blank or not (pyarrow skips blank ones)
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if table.column_names != ["Item"] or table.num_rows != lines:
        return None
    item = table.column("Item")  # left in pyarrow's blocks: combining them would copy
    if item.null_count or not pa.types.is_struct(item.type):
        return None
    leaves: list[tuple[str, pa.ChunkedArray]] = []
    if not _leaves(item, "", leaves):
        return None
    columns = dict(leaves)
    for key in keys:
        if key not in columns or columns[key].null_count or columns[key].type == pa.bool_():
            return None
    names = _first_seen(data, keys, columns)
    table = pa.Table.from_arrays([columns[n] for n in names], names=names)
    try:
        merge_schemas(pa.schema([]), table.schema)  # the guide's limits: unnest says which
    except UnnestError:
        return None
    return table


def _text_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every S, N and B payload (and set element) read as text."""

    def attrs(t: pa.DataType) -> pa.DataType:
        if not pa.types.is_struct(t):
            return t
        return pa.struct([pa.field(f.name, descriptors(f.type)) for f in t])

    def descriptors(t: pa.DataType) -> pa.DataType:
        if not pa.types.is_struct(t):
            return t
        fields = []
        for f in t:
            kind = f.type
            if f.name in _TEXT:
                kind = _TEXT[f.name]
            elif f.name in _TEXT_LISTS and pa.types.is_list(kind):
                kind = pa.list_(pa.string())
            elif f.name == "M":
                kind = attrs(kind)
            elif f.name == "L" and pa.types.is_list(kind):
                kind = pa.list_(descriptors(kind.value_type))
            fields.append(pa.field(f.name, kind))
        return pa.struct(fields)

    return pa.schema([pa.field(f.name, attrs(f.type)) for f in schema])


def _leaves(attrs: pa.ChunkedArray, prefix: str, out: list[tuple[str, pa.ChunkedArray]]) -> bool:
    """FULL's columns of a struct of attributes (depth first); False if any is not simple."""
    for field, attr in zip(attrs.type, attrs.flatten(), strict=True):
        path = f"{prefix}.{field.name}" if prefix else field.name
        if ":" in field.name or not pa.types.is_struct(attr.type):
            return False
        names = [f.name for f in attr.type]
        if not set(names) <= _DESCRIPTOR_SET:
            return False
        descs = dict(zip(names, attr.flatten(), strict=True))
        if not _one_descriptor(attr, list(descs.values())):
            return False
        present = {d: a for d, a in descs.items() if a.null_count < len(a)}
        scalar = [d for d in present if d not in ("M", "NULL")]
        if len(scalar) > 1:
            return False  # a type conflict: unnest renders the values as text
        if "M" in present:
            if not pa.types.is_struct(present["M"].type):
                return False
            if not _leaves(present["M"], path, out):
                return False
        if scalar:
            column = _convert(scalar[0], present[scalar[0]])
            if column is None:
                return False
            out.append((path, column))
    return True


def _one_descriptor(attr: pa.ChunkedArray, descs: list[pa.ChunkedArray]) -> bool:
    """Every value present holds exactly one descriptor (``{}`` and two are invalid)."""
    if len(descs) == 1:
        return bool(descs[0].null_count == attr.null_count)
    count = pc.cast(attr.is_valid(), pa.int8())
    for desc in descs:
        count = pc.subtract(count, pc.cast(desc.is_valid(), pa.int8()))
    return not pc.any(pc.not_equal(count, 0)).as_py()


def _convert(desc: str, values: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The guide's mapping of one descriptor's payloads, or None where Arrow is not exact."""
    if desc == "S":
        return values if values.type == pa.string() else None
    if desc == "BOOL":
        return values if values.type == pa.bool_() else None
    if desc == "SS" and values.type == pa.list_(pa.string()):
        return values
    if desc in ("N", "NS") and values.type in (pa.string(), pa.list_(pa.string())):
        target = pa.float64() if desc == "N" else pa.list_(pa.float64())
        try:
            numbers = pc.cast(values, target)
        except pa.ArrowInvalid:
            return None  # Python's float() reads forms Arrow refuses; unnest decides
        flat = numbers if desc == "N" else pc.list_flatten(numbers)
        if pc.any(pc.invert(pc.is_finite(flat))).as_py():
            return None  # NaN and Infinity are not DynamoDB numbers: unnest raises
        return numbers
    return None  # B, BS and L need Python (base64, JSON text)


def _first_seen(
    data: bytes, keys: Sequence[str], columns: Mapping[str, pa.ChunkedArray]
) -> list[str]:
    """Columns in unnest's order: keys, then paths by the item that first has them, in that
    item's own attribute order (only the items that introduce a column are parsed again)."""
    first: dict[int, set[str]] = {}
    for name, values in columns.items():
        if name not in keys:
            first.setdefault(int(pc.index(values.is_valid(), True).as_py()), set()).add(name)
    names = list(keys)
    if first:
        lines = data.split(b"\n", max(first) + 1)
        for row in sorted(first):
            item = _LOADS(lines[row])["Item"]
            names += [path for path, _ in walk(item, "") if path in first[row]]
    return list(dict.fromkeys(names))


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
        self._export = None

    def _check(self, table: TableId) -> None:
        if table != self.table:
            raise SourceError(
                "SourceTableNotFound", f"table {table} is not in this export of {self.table}"
            )


# -- real AWS only --------------------------------------------------------------------------------
def export_request(
    table_arn: str,
    bucket: str,
    prefix: str,
    export_time: datetime | None = None,
    incremental: tuple[datetime, datetime] | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    """ExportTableToPointInTime's parameters: a full export (at ``export_time``, default now) or
    an incremental one over ``incremental = (from, to)`` (from inclusive, to exclusive)."""
    params: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "ExportFormat": "DYNAMODB_JSON",
    }
    if incremental is None:
        params["ExportType"] = "FULL_EXPORT"
        if export_time is not None:
            params["ExportTime"] = export_time
    else:
        params["ExportType"] = "INCREMENTAL_EXPORT"
        params["IncrementalExportSpecification"] = {
            "ExportFromTime": incremental[0],
            "ExportToTime": incremental[1],
            "ExportViewType": view,
        }
    return params


def export_and_download(
    dynamodb: Any, s3: Any, request: Mapping[str, Any], dest: Path | str, poll: float = 15.0
) -> Path:
    """REAL AWS ONLY, NOT TESTED OFFLINE (moto's export is not faithful): start an export with
    ``request`` (:func:`export_request`), wait for it, and download its manifests and data
    files below ``dest`` keeping their S3 keys. Returns the local ``AWSDynamoDB/<ExportId>``
    folder for :func:`read_full_export`, :func:`read_incremental_export` or
    :class:`ExportSnapshot`."""
    arn = dynamodb.export_table_to_point_in_time(**request)["ExportDescription"]["ExportArn"]
    while True:
        desc = dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS":
            break
        time.sleep(poll)
    if desc["ExportStatus"] != "COMPLETED":
        raise ExportError(
            f"export {arn} ended {desc['ExportStatus']}: {desc.get('FailureCode')} "
            f"{desc.get('FailureMessage')}"
        )
    bucket, dest = desc["S3Bucket"], Path(dest)

    def fetch(key: str) -> Path:
        local = dest / key
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local))
        return local

    summary = fetch(desc["ExportManifest"])
    files = fetch(json.loads(summary.read_text("utf-8"))["manifestFilesS3Key"])
    for line in files.read_text("utf-8").splitlines():
        if line.strip():
            fetch(json.loads(line)["dataFileS3Key"])
    return summary.parent
