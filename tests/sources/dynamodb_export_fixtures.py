"""DynamoDB exports written in AWS's S3 layout, for tests and benchmarks (no AWS, no moto).

The layout and members follow the DynamoDB developer guide, "DynamoDB table export output
format" (``S3DataExport.Output``)::

    <dest>/<prefix>/AWSDynamoDB/<ExportId>/_started
    <dest>/<prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json     (+ .checksum)
    <dest>/<prefix>/AWSDynamoDB/<ExportId>/manifest-files.json       (+ .checksum)
    <dest>/<prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz       full export
    <dest>/<prefix>/AWSDynamoDB/data/<name>.json.gz                  incremental export

``<dest>`` plays the bucket: S3 keys in the manifests (``manifestFilesS3Key``,
``dataFileS3Key``) are paths below it. Data lines are DynamoDB JSON with binary values in
base64, as exports carry them. What the guide does not show is marked *assumed*.

:class:`TableExporter` is an ``Exporter`` (``zetl_nb.sources.dynamodb_exporter``) for a table on
a local DynamoDB endpoint: it writes these exports from the table's items and from the changes
made through it, standing in for ``ExportTableToPointInTime`` (moto's is not faithful).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"
#: The members of manifest-summary.json in the guide's examples' order (full, then incremental).
_SUMMARY_ORDER = (
    "version",
    "exportArn",
    "startTime",
    "endTime",
    "tableArn",
    "tableId",
    "exportTime",
    "exportFromTime",
    "exportToTime",
    "s3Bucket",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "manifestFilesS3Key",
    "billedSizeBytes",
    "itemCount",
    "outputFormat",
    "outputView",
    "exportType",
)


@dataclass(frozen=True)
class Change:
    """One write to an item: ``new_image`` None is a delete; ``old_image`` None means the item
    did not exist before. ``write_us``: DynamoDB's write time in microseconds."""

    keys: Mapping[str, Any]
    write_us: int
    new_image: Mapping[str, Any] | None = None
    old_image: Mapping[str, Any] | None = None


def wire(value: Any) -> Any:
    """An item or attribute as export JSON: ``B``/``BS`` payloads as base64 text."""
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((desc, payload),) = value.items()
            if desc == "B" and isinstance(payload, bytes | bytearray):
                return {"B": base64.b64encode(payload).decode("ascii")}
            if desc == "BS":
                return {"BS": [wire({"B": b})["B"] for b in payload]}
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _export_id(t: datetime, seed: str) -> str:
    # ExportIds look like "01695097218000-d6299cbd": epoch milliseconds (14 digits), 8 hex.
    return f"{int(t.timestamp() * 1000):014d}-{hashlib.sha1(seed.encode()).hexdigest()[:8]}"


def _file_name(seed: str) -> str:
    # Data files are named like "bafybeiczss3yxay3o4abnabbb.json.gz": 26 base32 characters.
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:26] + ".json.gz"


def _write_data(path: Path, lines: Iterable[bytes], level: int) -> dict[str, Any]:
    """A gzipped JSON-lines file and its manifest-files.json entry (without the key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level) as z:
        for line in lines:
            z.write(line)
            count += 1
    md5 = hashlib.md5(path.read_bytes()).digest()
    return {
        "itemCount": count,
        "md5Checksum": base64.b64encode(md5).decode("ascii"),
        # A one-part multipart upload's ETag: MD5 of the part's MD5, "-1".
        "etag": hashlib.md5(md5).hexdigest() + "-1",
    }


def _finish(
    folder: Path, bucket_root: Path, summary: dict[str, Any], entries: list[dict[str, Any]]
) -> Path:
    files_text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    (folder / "manifest-files.json").write_text(files_text)
    summary["manifestFilesS3Key"] = (folder / "manifest-files.json").relative_to(bucket_root)
    summary["manifestFilesS3Key"] = summary["manifestFilesS3Key"].as_posix()
    summary["billedSizeBytes"] = sum(len(json.dumps(e)) for e in entries)  # assumed: any number
    summary["itemCount"] = sum(e["itemCount"] for e in entries)
    order = {name: i for i, name in enumerate(_SUMMARY_ORDER)}
    summary = dict(sorted(summary.items(), key=lambda kv: order[kv[0]]))
    summary_text = json.dumps(summary, indent=3)
    (folder / "manifest-summary.json").write_text(summary_text)
    # Assumed: a .checksum file holds the MD5 (hex) of its manifest; readers ignore them.
    for name, text in (("manifest-files", files_text), ("manifest-summary", summary_text)):
        digest = hashlib.md5(text.encode()).hexdigest()
        (folder / f"{name}.checksum").write_text(digest)
    return folder


def _base_summary(table: str, prefix: str, bucket: str, export_id: str) -> dict[str, Any]:
    table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    return {
        "exportArn": f"{table_arn}/export/{export_id}",
        "tableArn": table_arn,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "s3Bucket": bucket,
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
    }


def write_full_export(
    dest: Path | str,
    items: Sequence[Mapping[str, Any]],
    table: str = "products",
    files: int = 2,
    empty_files: int = 0,
    export_time: datetime | None = None,
    prefix: str = "exports",
    bucket: str = "zetl-exports",
    level: int = 6,
) -> Path:
    """A full export of ``items`` (low-level DynamoDB JSON) in ``files`` data files (contiguous
    slices, so reading them back keeps the items' order) plus ``empty_files`` empty ones, as
    DynamoDB writes for empty partitions. Returns the ``AWSDynamoDB/<ExportId>`` folder."""
    export_time = export_time or datetime(2026, 11, 22, 12, 0, 0, 28000, tzinfo=UTC)
    export_id = _export_id(export_time, f"{table}-full-{len(items)}")
    root = Path(dest)
    folder = root / prefix / "AWSDynamoDB" / export_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_started").write_bytes(b"")
    step = -(-len(items) // max(files, 1)) if items else 0
    entries = []
    for i in range(max(files, 1) + empty_files):
        part = items[i * step : (i + 1) * step] if i < files else []
        path = folder / "data" / _file_name(f"{export_id}-{i}")
        lines = (
            json.dumps({"Item": wire(item)}, separators=(",", ":")).encode() + b"\n"
            for item in part
        )
        entry = _write_data(path, lines, level)
        entries.append({**entry, "dataFileS3Key": path.relative_to(root).as_posix()})
    summary = {
        "version": "2020-06-30",
        **_base_summary(table, prefix, bucket, export_id),
        "startTime": _stamp(export_time + timedelta(seconds=5)),
        "endTime": _stamp(export_time + timedelta(minutes=5)),
        "exportTime": _stamp(export_time),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    return _finish(folder, root, summary, entries)


def compact(changes: Iterable[Change], keys: Sequence[str]) -> list[Change]:
    """One record per item, as incremental exports hold: the last write's new image and time,
    the first write's old image (the item at the window's start). An item created and deleted
    in the window leaves nothing."""
    first: dict[str, Change] = {}
    last: dict[str, Change] = {}
    for change in sorted(changes, key=lambda c: c.write_us):
        ident = json.dumps([change.keys[k] for k in keys], sort_keys=True)
        first.setdefault(ident, change)
        last[ident] = change
    out = []
    for ident, end in last.items():
        old = first[ident].old_image
        if old is None and end.new_image is None:
            continue
        out.append(Change(end.keys, end.write_us, end.new_image, old))
    return out


def write_incremental_export(
    dest: Path | str,
    changes: Sequence[Change],
    keys: Sequence[str],
    export_from: datetime,
    export_to: datetime,
    table: str = "products",
    view: str = "NEW_AND_OLD_IMAGES",
    files: int = 2,
    prefix: str = "exports",
    bucket: str = "zetl-exports",
    shuffle: bool = True,
) -> Path:
    """An incremental export of ``changes`` (compacted per item, see :func:`compact`) in
    ``files`` data files in the shared ``AWSDynamoDB/data/`` folder. ``shuffle`` spreads the
    records over the files out of time order, as partitions do. ``view`` ``NEW_IMAGE`` drops
    old images. Returns the ``AWSDynamoDB/<ExportId>`` folder."""
    export_id = _export_id(export_to, f"{table}-incr-{export_from.isoformat()}-{len(changes)}")
    root = Path(dest)
    folder = root / prefix / "AWSDynamoDB" / export_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_started").write_bytes(b"")
    records = compact(changes, keys)
    if shuffle:
        records = sorted(records, key=lambda c: hashlib.md5(repr(c.keys).encode()).digest())
    entries = []
    for i in range(max(files, 1)):
        part = records[i :: max(files, 1)]
        lines = []
        for c in part:
            rec: dict[str, Any] = {
                "Metadata": {"WriteTimestampMicros": {"N": str(c.write_us)}},
                "Keys": wire(dict(c.keys)),
            }
            if view == "NEW_AND_OLD_IMAGES" and c.old_image is not None:
                rec["OldImage"] = wire(dict(c.old_image))
            if c.new_image is not None:
                rec["NewImage"] = wire(dict(c.new_image))
            lines.append(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
        path = root / prefix / "AWSDynamoDB" / "data" / _file_name(f"{export_id}-{i}")
        entry = _write_data(path, lines, 6)
        entries.append({**entry, "dataFileS3Key": path.relative_to(root).as_posix()})
    summary = {
        "version": "2023-08-01",
        **_base_summary(table, prefix, bucket, export_id),
        "startTime": _stamp(export_to + timedelta(seconds=5)),
        "endTime": _stamp(export_to + timedelta(minutes=5)),
        "exportFromTime": _stamp(export_from),
        "exportToTime": _stamp(export_to),
        "outputFormat": "DYNAMODB_JSON",
        "outputView": view,
        "exportType": "INCREMENTAL_EXPORT",
    }
    return _finish(folder, root, summary, entries)


def micros(t: datetime) -> int:
    """Microseconds since the epoch (WriteTimestampMicros)."""
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class TableExporter:
    """Exports of a table on a local DynamoDB endpoint, in AWS's format (an ``Exporter``).

    Changes go through :meth:`put` and :meth:`delete`, which record each write's time (µs,
    strictly increasing) with the item's images before and after, as DynamoDB's change log
    does. :meth:`full` scans the table at an export time (whole milliseconds, like AWS's);
    :meth:`incremental` exports the recorded changes in ``[export_from, export_to)``. One lock
    orders writes and exports, so an export is a point in time. ``requests`` lists the calls
    (``("full", None, None)`` or ``("incremental", from, to)``); ``discarded`` the folders the
    source let go of (they are deleted). ``client`` may be replaced (a Lab reopened).
    """

    def __init__(self, dest: Path | str, keys: Sequence[str], client: Any) -> None:
        self.dest, self.keys, self.client = Path(dest), list(keys), client
        self.changes: list[Change] = []
        self.requests: list[tuple[str, datetime | None, datetime | None]] = []
        self.discarded: list[Path] = []
        self.lock = threading.Lock()
        self._last_us = 0
        self._count = 0

    # -- writes ---------------------------------------------------------------------------------
    def put(self, table: str, item: Mapping[str, Any]) -> None:
        """``PutItem``, recorded."""
        keys = {k: item[k] for k in self.keys}
        with self.lock:
            old = self._get(table, keys)
            self.client.put_item(TableName=table, Item=dict(item))
            self.changes.append(Change(keys, self._now_us(), dict(item), old))

    def delete(self, table: str, keys: Mapping[str, Any]) -> None:
        """``DeleteItem``, recorded (deleting a missing item changes nothing)."""
        with self.lock:
            old = self._get(table, keys)
            self.client.delete_item(TableName=table, Key=dict(keys))
            if old is not None:
                self.changes.append(Change(dict(keys), self._now_us(), None, old))

    def _get(self, table: str, keys: Mapping[str, Any]) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=table, Key=dict(keys), ConsistentRead=True)
        return got.get("Item")  # type: ignore[no-any-return]

    def _now_us(self) -> int:
        self._last_us = max(self._last_us + 1, time.time_ns() // 1000)
        return self._last_us

    # -- the Exporter protocol ------------------------------------------------------------------
    def full(self, table_arn: str) -> Path:
        """A full export of the table as of now (rounded down to the millisecond)."""
        table = table_arn.rpartition("table/")[2]
        with self.lock:
            now = datetime.now(UTC)
            export_time = now.replace(microsecond=now.microsecond // 1000 * 1000)
            items = self._scan(table)
            self.requests.append(("full", None, None))
            folder = self._folder()
        return write_full_export(folder, items, table=table, export_time=export_time)

    def incremental(self, table_arn: str, export_from: datetime, export_to: datetime) -> Path:
        """The recorded changes written in ``[export_from, export_to)``."""
        table = table_arn.rpartition("table/")[2]
        start, end = micros(export_from), micros(export_to)
        with self.lock:
            window = [c for c in self.changes if start <= c.write_us < end]
            self.requests.append(("incremental", export_from, export_to))
            folder = self._folder()
        return write_incremental_export(
            folder, window, self.keys, export_from, export_to, table=table
        )

    def discard(self, folder: Path) -> None:
        """Delete the export's folder tree (the one :meth:`full`/:meth:`incremental` made)."""
        self.discarded.append(folder)
        inside = Path(folder).relative_to(self.dest)
        shutil.rmtree(self.dest / inside.parts[0])

    def _scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _folder(self) -> Path:
        self._count += 1
        return self.dest / f"export-{self._count:04d}"


__all__ = [
    "Change",
    "TableExporter",
    "compact",
    "micros",
    "wire",
    "write_full_export",
    "write_incremental_export",
]

if __name__ == "__main__":  # pragma: no cover - a quick look at the layout
    import sys
    import tempfile

    out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
    folder = write_full_export(out, [{"id": {"S": "p1"}, "price": {"N": "9.5"}}])
    for p in sorted(out.rglob("*")):
        print(p.relative_to(out), os.path.getsize(p) if p.is_file() else "")
