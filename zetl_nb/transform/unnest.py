"""UnnestSpec: DynamoDB items → one Arrow table, shaped as the Glue zero-ETL guide's three modes.

Following "Schema unnesting" (Glue developer guide, ``zero-etl-ddb-schema-unnesting``) and its
worked example, the item ``{"col_1": {"S": "value_1"}, "col_2": {"M": {"col_3": {"M": {"id":
{"S": "value_3"}}}, "col_4": {"BOOL": true}}}}`` with key ``col_1`` becomes:

- ``NOUNNEST``: the key columns plus one ``value`` struct holding the whole item with its DynamoDB
  type descriptors: ``value.col_2.M.col_3.M.id.S``. Attributes whose type differs between items
  never conflict here: the descriptors become sibling fields (``{"S": ..., "N": ...}``).
- ``TOPLEVEL``: one column per top-level attribute; maps stay structs without descriptors
  (``col_2.col_3.id``); a column (or struct field) whose items disagree on its type is ``string``.
- ``FULL`` (the default): every leaf is a column named by its dotted path (``"col_2.col_3.id"``);
  lists and sets stay arrays; conflicting types → ``string``.

>>> item = {"col_1": {"S": "value_1"}, "col_2": {"M": {"col_4": {"BOOL": True}}}}
>>> unnest([item], keys=["col_1"], mode="FULL").column_names
['col_1', 'col_2.col_4']

Type mapping, and every choice the guide leaves open, are in :mod:`.dynamotypes`. Where the guide
contradicts itself (the default mode, the enum spelling, whether ``value`` holds the key) see
``docs/aws-parity.md``, section "DynamoDB source".

Schema drift: pass the target table's current Arrow schema as ``schema=`` and the batch comes back
in the merged schema (new attributes append columns, conflicts widen to ``string``);
:func:`merge_schemas` computes the same schema alone and :func:`conform` brings an existing Arrow
table to it. Limits from the guide's "Limitations" page raise :class:`UnnestError`: more than
1000 columns, or ``:`` in a column or nested field name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .dynamotypes import (
    Shape,
    UnnestError,
    check_name,
    converter,
    fields_converter,
    from_arrow,
    map_shape,
    merge,
    parse,
    shape_of,
    to_arrow,
    walk,
)
from .specs import UNNEST_SPECS

__all__ = [
    "DEFAULT_UNNEST",
    "MAX_COLUMNS",
    "UNNEST_SPECS",
    "VALUE_COLUMN",
    "UnnestError",
    "check_mode",
    "conform",
    "merge_schemas",
    "reconstruct",
    "unnest",
]

#: The Glue guide's table of options and its partitioning page both say FULL is the default.
DEFAULT_UNNEST = "FULL"
#: "AWS Glue Zero ETL target can only support replication of 1000 columns per table."
MAX_COLUMNS = 1000
#: NOUNNEST's one non-key column, as in the guide's example.
VALUE_COLUMN = "value"
_GUIDE_SPELLINGS = {"TOP_LEVEL": "TOPLEVEL", "NO_UNNEST": "NOUNNEST"}
_KEY_TYPES = ("S", "N", "B")


def check_mode(mode: str | None) -> str:
    """The UnnestSpec to apply: ``None`` means the default (FULL); unknown values raise."""
    if mode is None:
        return DEFAULT_UNNEST
    if mode in UNNEST_SPECS:
        return mode
    hint = (
        f" ('{mode}' is the guide's spelling; the API value is '{_GUIDE_SPELLINGS[mode]}')"
        if mode in _GUIDE_SPELLINGS
        else ""
    )
    raise UnnestError(
        f"UnnestSpec '{mode}' is not valid; use one of {', '.join(UNNEST_SPECS)}{hint}."
    )


def unnest(
    items: Iterable[Mapping[str, Any]],
    keys: Sequence[str],
    mode: str | None = DEFAULT_UNNEST,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """DynamoDB items (wire JSON, as the low-level client returns them) → one Arrow table.

    ``keys`` are the table's key attribute names (partition key, then sort key); every item must
    carry them as S, N or B. Columns come in the order: ``schema``'s, the keys (NOUNNEST: then
    ``value``), then attributes as first seen. With ``schema`` (the target's current columns) the
    result has the merged schema, :func:`merge_schemas` of ``schema`` and the batch's own.
    Raises :class:`UnnestError` for invalid items and for the guide's limits.
    """
    mode = check_mode(mode)
    shapes: dict[str, Shape] = {}
    if schema is not None:
        shapes = {f.name: from_arrow(f.type, f.name) for f in schema}
    cells: dict[str, dict[int, Any]] = {}
    rows = 0
    for row, item in enumerate(items):
        rows = row + 1
        for name, attr, shape in _cells(item, keys, mode, row):
            cells.setdefault(name, {})[row] = attr
            shapes[name] = merge(shapes[name], shape) if name in shapes else shape
    front = [*keys, VALUE_COLUMN] if mode == "NOUNNEST" else list(keys)
    seed = schema.names if schema is not None else []
    names = [n for n in dict.fromkeys([*seed, *front, *shapes]) if n in shapes]
    fields = [pa.field(n, t) for n in names if (t := to_arrow(shapes[n])) is not None]
    target = _checked(pa.schema(fields))
    arrays = []
    for field in target:
        typed = mode == "NOUNNEST" and field.name == VALUE_COLUMN
        convert = fields_converter(field.type, True) if typed else converter(field.type, False)
        values: list[Any] = [None] * rows
        for row, attr in cells.get(field.name, {}).items():
            values[row] = convert(attr)
        arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=target)


def _cells(
    item: Mapping[str, Any], keys: Sequence[str], mode: str, row: int
) -> Iterator[tuple[str, Any, Shape]]:
    """``(column, attribute, shape)`` for one item; NOUNNEST's ``value`` cell is the item."""
    if not isinstance(item, Mapping):
        raise UnnestError(f"item {row} is not a map of attributes: {item!r}.")
    for key in keys:
        if key not in item or parse(item[key], key)[0] not in _KEY_TYPES:
            raise UnnestError(
                f"item {row} has no key attribute '{key}' of type S, N or B "
                f"(keys: {', '.join(keys)}); got {item.get(key)!r}."
            )
    if mode == "NOUNNEST":
        if VALUE_COLUMN in keys:
            raise UnnestError(
                f"key attribute '{VALUE_COLUMN}' collides with NOUNNEST's '{VALUE_COLUMN}' "
                "column; use TOPLEVEL or FULL for this table."
            )
        for key in keys:
            yield key, item[key], _plain_shape(item[key], key)
        yield VALUE_COLUMN, item, map_shape(item, "", typed=True)
    elif mode == "TOPLEVEL":
        for name, attr in item.items():
            check_name(name, name)
            shape = shape_of(attr, name, typed=False)
            if shape is not None:
                yield name, attr, shape
    else:
        for path, attr in walk(item, ""):
            yield path, attr, _plain_shape(attr, path)


def _plain_shape(attr: Any, path: str) -> Shape:
    shape = shape_of(attr, path, typed=False)
    assert shape is not None  # callers skip NULL
    return shape


def merge_schemas(old: pa.Schema, new: pa.Schema) -> pa.Schema:
    """The schema holding both: ``old``'s columns in order, then ``new``'s new ones.

    Structs merge field by field; a column or field whose types differ becomes ``string``. The
    result is what a writer evolves the Iceberg table to (added columns are compatible; a type
    that widened to string is not, and the guide resyncs the table).

    >>> merge_schemas(pa.schema([("a", pa.float64())]), pa.schema([("a", pa.bool_())]))
    a: string
    """
    shapes = {f.name: from_arrow(f.type, f.name) for f in old}
    for f in new:
        shape = from_arrow(f.type, f.name)
        shapes[f.name] = merge(shapes[f.name], shape) if f.name in shapes else shape
    fields = [pa.field(n, t) for n, s in shapes.items() if (t := to_arrow(s)) is not None]
    return _checked(pa.schema(fields))


def _checked(schema: pa.Schema) -> pa.Schema:
    """Enforce the guide's column limit and Iceberg's unique (dotted) field names."""
    if len(schema) > MAX_COLUMNS:
        raise UnnestError(
            f"the table would have {len(schema)} columns (the {MAX_COLUMNS + 1}st is "
            f"'{schema.field(MAX_COLUMNS).name}'); Glue zero-ETL replicates at most {MAX_COLUMNS} "
            "columns per table (Iceberg limit) and moves the integration to FAILED. FULL makes "
            "every nested leaf a column: use TOPLEVEL or NOUNNEST for wide items."
        )
    seen: set[str] = set()
    for field in schema:
        _index(field.name, field.type, seen)
    return schema


def _index(name: str, t: pa.DataType, seen: set[str]) -> None:
    # Iceberg indexes fields by dotted full name (list elements as "element"); a top-level
    # attribute "a.b" next to a map "a" holding "b" gives two fields one name.
    if name in seen:
        raise UnnestError(
            f"two fields are both named '{name}' in Iceberg's dotted naming (an attribute with "
            "'.' in its name next to a map path with the same dots); rename one in the source."
        )
    seen.add(name)
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            _index(f"{name}.{t.field(i).name}", t.field(i).type, seen)
    elif pa.types.is_list(t):
        _index(f"{name}.element", t.value_type, seen)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Bring an unnested table to a merged ``schema`` (from :func:`merge_schemas`).

    Missing columns and struct fields are null; values of a column that widened to ``string``
    become text (booleans ``true``/``false``, doubles their shortest text, binary base64, lists
    and structs JSON). Unnesting with ``schema=`` gives DynamoDB's exact number text instead; this
    is for tables already built. Not a hot path: changed columns go through Python.
    """
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise UnnestError(
            f"columns {extra} are not in the target schema; pass merge_schemas(target, "
            "table.schema) rather than the target's own schema."
        )
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            arrays.append(pa.chunked_array([pa.nulls(len(table), field.type)]))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            values = [_recast(v, column.type, field.type) for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(values, field.type)])
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def _recast(value: Any, src: pa.DataType, dst: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(dst) and not pa.types.is_string(src):
        return _value_text(value)
    if pa.types.is_struct(dst) and pa.types.is_struct(src):
        have = {src.field(i).name: src.field(i).type for i in range(src.num_fields)}
        return {
            f.name: _recast(value.get(f.name), have[f.name], f.type) for f in dst if f.name in have
        }
    if pa.types.is_list(dst) and (pa.types.is_list(src) or pa.types.is_large_list(src)):
        return [_recast(v, src.value_type, dst.value_type) for v in value]
    return value


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    # Null struct fields are absent attributes: left out, as NULL is.
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def reconstruct(row: Mapping[str, Any], mode: str | None = DEFAULT_UNNEST) -> dict[str, Any]:
    """The item a row holds, as plain Python values (the inverse of :func:`unnest`, per mode).

    ``row`` is one of ``table.to_pylist()``. Values come back as the guide maps them: S ``str``,
    N ``float``, B ``bytes``, BOOL ``bool``, sets and lists ``list`` (L elements as their JSON
    text), maps ``dict``; NULL attributes are absent. FULL splits column names on dots.

    >>> reconstruct({"col_1": "value_1", "col_2.col_4": True}, "FULL")
    {'col_1': 'value_1', 'col_2': {'col_4': True}}
    """
    mode = check_mode(mode)
    if mode == "TOPLEVEL":
        return {k: _plain(v) for k, v in row.items() if v is not None}
    if mode == "FULL":
        item: dict[str, Any] = {}
        for name, value in row.items():
            if value is None:
                continue
            *parents, leaf = name.split(".")
            node = item
            for part in parents:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise UnnestError(f"column '{name}' and column '{part}' overlap.")
            node[leaf] = value
        return item
    item = {k: _untyped(v) for k, v in (row.get(VALUE_COLUMN) or {}).items() if v is not None}
    for name, value in row.items():
        if name != VALUE_COLUMN and value is not None:
            item.setdefault(name, value)
    return {k: v for k, v in item.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def _untyped(value: Mapping[str, Any]) -> Any:
    """``{"S": None, "N": 9.5}`` → ``9.5``; maps recursively. None if every field is null."""
    for desc, payload in value.items():
        if payload is None:
            continue
        if desc == "M":
            fields = ((k, _untyped(v)) for k, v in payload.items() if v is not None)
            return {k: v for k, v in fields if v is not None}
        return payload
    return None
