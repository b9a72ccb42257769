"""FULL unnesting of DynamoDB JSON lines with Arrow kernels: the fast path of export reading.

A DynamoDB export's data file holds one ``{"Item": {...}}`` per line. :func:`arrow_full` parses a
block of such lines with ``pyarrow.json`` and flattens the type-descriptor structs with compute
kernels into exactly what :func:`~zetl_nb.transform.unnest.unnest` gives for mode ``FULL``: same
columns, same order, same types, same values. Where Arrow cannot be exact (B, BS and L values,
conflicting types, numbers Arrow parses differently from Python, invalid items, blank lines) it
returns None and the caller unnests the items in Python, which also raises the errors.

>>> arrow_full(b'{"Item": {"id": {"S": "a"}, "m": {"M": {"x": {"N": "1"}}}}}', ["id"]).column_names
['id', 'm.x']
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .dynamotypes import DESCRIPTORS, UnnestError, walk
from .unnest import merge_schemas

__all__ = ["arrow_full", "loads"]

#: Parses one JSON line; orjson reads DynamoDB JSON lines ~1.6x faster than json (optional).
loads: Callable[[bytes], Any]
try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads

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
            item = loads(lines[row])["Item"]
            names += [path for path, _ in walk(item, "") if path in first[row]]
    return list(dict.fromkeys(names))
