"""Append-only JSON-lines journals, read back as Arrow tables incrementally.

Every monitoring record (status rows, log events, metric datapoints, EventBridge events) is one
JSON line in a file under ``<home>/monitor/``. The writing Lab appends whole lines from its
monitor thread; any process (the writer itself, or a ``Lab(home, read_only=True)``) reads a
journal by parsing only the bytes added since its last read, with Arrow's JSON reader and a
fixed schema, so building the monitoring tables on every query stays cheap.

>>> import pyarrow as pa, tempfile, pathlib
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "x.jsonl", pa.schema([("n", pa.int64())]))
>>> j.append([{"n": 1}, {"n": 2}])
>>> j.read().column("n").to_pylist()
[1, 2]
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa


class Journal:
    """One JSON-lines file with a fixed Arrow schema (missing keys read as null)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._offset = 0
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read
        self._parts: list[pa.Table] = []
        self._table: pa.Table | None = None

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records as whole lines (one ``write`` call, so readers never see half)."""
        text = "".join(json.dumps(r, default=str, separators=(",", ":")) + "\n" for r in records)
        if not text:
            return
        with self._write_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)

    def read(self) -> pa.Table:
        """Every record so far; only bytes appended since the last call are parsed."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._reset()
                return self.schema.empty_table()
            identity = (st.st_dev, st.st_ino)
            if identity != self._identity or st.st_size < self._offset:
                self._reset()  # replaced or truncated: read it again from the start
                self._identity = identity
            if st.st_size > self._offset:
                with open(self.path, "rb") as fh:
                    fh.seek(self._offset)
                    chunk = fh.read(st.st_size - self._offset)
                end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
                if end:
                    self._parts.append(_parse(chunk[:end], self.schema))
                    self._offset += end
                    self._table = None
            if self._table is None:
                self._table = (
                    pa.concat_tables(self._parts) if self._parts else self.schema.empty_table()
                )
                self._parts = [self._table]
            return self._table

    def _reset(self) -> None:
        self._offset = 0
        self._identity = None
        self._parts = []
        self._table = None


class JournalDir:
    """A directory of journals with one schema (e.g. one log stream per file)."""

    def __init__(self, root: Path, schema: pa.Schema, suffix: str = ".jsonl") -> None:
        self.root = root
        self.schema = schema
        self.suffix = suffix
        self._journals: dict[str, Journal] = {}
        self._lock = threading.Lock()

    def journal(self, name: str) -> Journal:
        """The journal for stream ``name`` (created on first append)."""
        with self._lock:
            if name not in self._journals:
                self._journals[name] = Journal(self.root / f"{name}{self.suffix}", self.schema)
            return self._journals[name]

    def names(self) -> list[str]:
        """Streams that exist on disk."""
        if not self.root.is_dir():
            return []
        n = len(self.suffix)
        return sorted(p.name[:-n] for p in self.root.iterdir() if p.name.endswith(self.suffix))

    def read(self, stream_column: str) -> pa.Table:
        """Every stream's records, with the stream's name in ``stream_column``."""
        parts = []
        for name in self.names():
            table = self.journal(name).read()
            parts.append(table.append_column(stream_column, pa.array([name] * table.num_rows)))
        if not parts:
            empty = self.schema.empty_table()
            return empty.append_column(stream_column, pa.array([], pa.string()))
        return pa.concat_tables(parts)


def _parse(data: bytes, schema: pa.Schema) -> pa.Table:
    from pyarrow import json as pa_json

    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = max(1 << 20, len(data) + 1)  # one block: a line never straddles two
    table = pa_json.read_json(
        io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=block), parse_options=options
    )
    return table.select(schema.names).cast(schema)
