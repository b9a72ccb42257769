"""DynamoDB attribute values → Arrow types and Python values, as the Glue zero-ETL guide maps them.

The guide's table (Glue developer guide, "Schema unnesting", ``zero-etl-ddb-schema-unnesting``):

====== ======================= ====================================================
DDB    target                  here
====== ======================= ====================================================
S      StringType              ``string``
B      BinaryType              ``binary``
N      DoubleType              ``double`` (float64: 17 significant digits of 38)
BOOL   BooleanType             ``bool``
SS     ArrayType(StringType)   ``list<string>``
NS     ArrayType(DoubleType)   ``list<double>``
BS     ArrayType(BinaryType)   ``list<binary>``
L      ArrayType(StringType)   ``list<string>``, one JSON text per element (below)
NULL   Ignore                  the attribute is skipped, so its column is null
M      StructType              ``struct`` (TOPLEVEL, NOUNNEST); FULL flattens it
====== ======================= ====================================================

Input is DynamoDB's wire JSON as boto3's *low-level* client returns it
(``{"price": {"N": "9.5"}}``); ``B`` payloads may be bytes or base64 text (exports carry base64).

Choices where the guide is silent (also in ``docs/aws-parity.md``):

- **L elements** are JSON text. Without type descriptors (TOPLEVEL, FULL) each element is plain
  JSON: ``"a"``, ``9.5`` (DynamoDB's exact number text), ``true``, ``null``, ``{"k": 1}``, ``[..]``,
  binary as a base64 JSON string, sets as arrays; NULL map entries are dropped like attributes,
  NULL list elements stay ``null`` (position matters). With descriptors (NOUNNEST, which "preserves
  DynamoDB type information") each element is DynamoDB JSON: ``{"S": "a"}``, ``{"N": "9.5"}``.
- **Conflicts to string**: a value whose column became ``string`` is rendered as text: S as is,
  N as its exact number text, BOOL as ``true``/``false``, B as base64, sets, lists and maps as the
  plain JSON above.
- **Empty maps** (and maps holding only NULLs) are ignored like NULL: Parquet cannot store a
  struct without fields, and ignoring them everywhere keeps one batch and many batches alike (an
  empty map never conflicts with another type). Inside L's JSON text they stay ``{}``.

Types are inferred as *shapes* (an Arrow type key, or a dict of field shapes for a struct), merged
item by item, and turned into Arrow types once per batch; values are then converted column by
column by a converter compiled once per Arrow type.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import pyarrow as pa

from ..core.errors import ZetlError

SCALARS = ("S", "N", "B", "BOOL")
SETS = ("SS", "NS", "BS")
DESCRIPTORS = (*SCALARS, *SETS, "L", "M", "NULL")
_DESCRIPTOR_SET = frozenset(DESCRIPTORS)

#: A shape: the key of an Arrow type (``"string"``, ``"list<double>"``, ...) or, for a struct,
#: a dict of field name → shape, in first-seen order.
Shape: TypeAlias = str | dict[str, "Shape"]
Converter = Callable[[Any], Any]

STRING = "string"
_KIND = {
    "S": "string",
    "N": "double",
    "B": "binary",
    "BOOL": "bool",
    "SS": "list<string>",
    "NS": "list<double>",
    "BS": "list<binary>",
    "L": "list<string>",
}
_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "list<string>": pa.list_(pa.string()),
    "list<double>": pa.list_(pa.float64()),
    "list<binary>": pa.list_(pa.binary()),
}


_PAYLOADS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "S": (str, "a string"),
    "N": (str, "number text"),
    "BOOL": (bool, "true or false"),
    "SS": ((list, tuple, set, frozenset), "a list"),
    "NS": ((list, tuple, set, frozenset), "a list"),
    "BS": ((list, tuple, set, frozenset), "a list"),
    "L": ((list, tuple), "a list"),
}


class UnnestError(ZetlError):
    """An item cannot be replicated as the Glue guide describes (bad DynamoDB JSON, a limit)."""


# -- parsing -------------------------------------------------------------------------------------
def parse(attr: Any, path: str) -> tuple[str, Any]:
    """``(descriptor, payload)`` of one attribute value, or ``UnnestError`` naming ``path``."""
    if (type(attr) is dict or isinstance(attr, Mapping)) and len(attr) == 1:
        ((desc, payload),) = attr.items()
        if desc in _DESCRIPTOR_SET:
            return desc, payload
    raise UnnestError(
        f"attribute '{path}' is not DynamoDB JSON: expected one key of {', '.join(DESCRIPTORS)}, "
        f"got {attr!r}. Pass items as the low-level client returns them "
        "(boto3.client('dynamodb'), or boto3.dynamodb.types.TypeSerializer)."
    )


def check_name(name: str, path: str) -> None:
    """Athena cannot show ``:`` in a column or nested field name: the guide FAILs such tables."""
    if ":" in name:
        raise UnnestError(
            f"attribute '{path}' has ':' in its name; Glue zero-ETL does not replicate a column or "
            "nested field name with ':' (Athena limit) and moves the integration to FAILED. "
            "Rename the attribute in the source."
        )


def to_float(text: str, path: str = "?") -> float:
    """DynamoDB's number text as a double (the guide's N → DoubleType)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UnnestError(f"attribute '{path}' has an invalid DynamoDB number {text!r}.")
    return value


def number_text(text: str) -> str:
    """DynamoDB's number text, canonical and valid as a JSON number (``.5`` → ``0.5``)."""
    try:
        return str(Decimal(text))
    except InvalidOperation:
        raise UnnestError(f"invalid DynamoDB number {text!r}.") from None


def to_bytes(payload: Any) -> bytes:
    """A ``B`` payload: bytes from the low-level client, base64 text from exports and JSON."""
    payload = getattr(payload, "value", payload)  # boto3.dynamodb.types.Binary
    if isinstance(payload, str):
        return base64.b64decode(payload)
    return bytes(payload)


def b64(payload: Any) -> str:
    return base64.b64encode(to_bytes(payload)).decode("ascii")


# -- shapes --------------------------------------------------------------------------------------
def shape_of(attr: Any, path: str, typed: bool) -> Shape | None:
    """The shape of one value; None for NULL and for a map with nothing in it (see absent).

    ``typed`` keeps descriptors (NOUNNEST).
    """
    desc, payload = parse(attr, path)
    if desc == "NULL":
        return None
    if desc == "M":
        fields = map_shape(payload, path, typed)
        if not fields:
            return None
        return {"M": fields} if typed else fields
    _validate(desc, payload, path)
    kind = _KIND[desc]
    return {desc: kind} if typed else kind


def _validate(desc: str, payload: Any, path: str) -> None:
    """Fail here, where the path is known, rather than in the column conversion."""
    expected = _PAYLOADS.get(desc)
    if expected is not None and not isinstance(payload, expected[0]):
        raise UnnestError(f"attribute '{path}' is {desc} but not {expected[1]}: {payload!r}.")
    if desc == "N":
        to_float(payload, path)
    elif desc == "NS":
        for number in payload:
            to_float(number, path)
    elif desc == "L":
        for i, element in enumerate(payload):
            here = f"{path}[{i}]"
            inner, value = parse(element, here)
            if inner == "M":
                for name, attr in _map(value, here).items():
                    _validate(*parse(attr, f"{here}.{name}"), f"{here}.{name}")
            else:
                _validate(inner, value, here)


def map_shape(attrs: Mapping[str, Any], path: str, typed: bool) -> dict[str, Shape]:
    """Field shapes of a map (or a whole item), NULLs left out."""
    fields: dict[str, Shape] = {}
    for name, attr in _map(attrs, path).items():
        here = f"{path}.{name}" if path else name
        check_name(name, here)
        shape = shape_of(attr, here, typed)
        if shape is not None:
            fields[name] = shape
    return fields


def absent(attr: Any) -> bool:
    """NULL, or a map holding only absent values: ignored like NULL, so that an empty map
    neither makes a column nor conflicts with another type (Parquet has no empty struct)."""
    return "NULL" in attr or ("M" in attr and all(absent(a) for a in attr["M"].values()))


def _map(payload: Any, path: str) -> Mapping[str, Any]:
    if type(payload) is dict or isinstance(payload, Mapping):
        return payload
    raise UnnestError(f"attribute '{path}' has an M payload that is not a map: {payload!r}.")


def merge(old: Shape, new: Shape) -> Shape:
    """Structs merge field by field; equal types stay; anything else conflicts → ``string``.

    Mutates and returns ``old`` when both are structs (callers own their accumulators).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for name, shape in new.items():
            old[name] = merge(old[name], shape) if name in old else shape
        return old
    return old if old == new else STRING


def to_arrow(shape: Shape) -> pa.DataType | None:
    """The Arrow type of a shape; None for a struct with no fields left (empty maps)."""
    if isinstance(shape, str):
        return _ARROW[shape]
    fields = [pa.field(n, t) for n, s in shape.items() if (t := to_arrow(s)) is not None]
    return pa.struct(fields) if fields else None


def from_arrow(t: pa.DataType, path: str) -> Shape:
    """The shape of an Arrow type (a target table's), normalizing large/view variants."""
    if pa.types.is_struct(t):
        return {t.field(i).name: from_arrow(t.field(i).type, path) for i in range(t.num_fields)}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = from_arrow(t.value_type, path)
        if isinstance(inner, str) and f"list<{inner}>" in _ARROW:
            return f"list<{inner}>"
    for key, kind in (("string", _is_string), ("binary", _is_binary), ("double", _is_double)):
        if kind(t):
            return key
    if pa.types.is_boolean(t):
        return "bool"
    raise UnnestError(f"column '{path}' has type {t}, which DynamoDB unnesting never produces.")


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.string_view())


def _is_binary(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or t == pa.binary_view())


def _is_double(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t))


# -- text ----------------------------------------------------------------------------------------
def text(attr: Any) -> str:
    """A value in a column that conflicts to ``string``."""
    ((desc, payload),) = attr.items()
    if desc == "S":
        return str(payload)
    if desc == "N":
        return number_text(payload)
    if desc == "B":
        return b64(payload)
    if desc == "BOOL":
        return "true" if payload else "false"
    return plain_json(attr)


def plain_json(attr: Any) -> str:
    """JSON text of a value without type descriptors (L elements in TOPLEVEL and FULL)."""
    ((desc, payload),) = attr.items()
    if desc == "N":
        return number_text(payload)
    if desc == "NS":
        return "[" + ",".join(number_text(n) for n in payload) + "]"
    if desc == "L":
        return "[" + ",".join(plain_json(a) for a in payload) + "]"
    if desc == "M":
        items = (f"{_dumps(k)}:{plain_json(a)}" for k, a in payload.items() if "NULL" not in a)
        return "{" + ",".join(items) + "}"
    return _dumps(_jsonable(desc, payload))


def wire_json(attr: Any) -> str:
    """DynamoDB JSON text of a value (L elements in NOUNNEST): ``{"N": "9.5"}``."""
    return _dumps(_wire(attr))


def _wire(attr: Any) -> dict[str, Any]:
    ((desc, payload),) = attr.items()
    if desc == "L":
        return {"L": [_wire(a) for a in payload]}
    if desc == "M":
        return {"M": {k: _wire(a) for k, a in payload.items()}}
    if desc in ("B", "BS"):
        return {desc: _jsonable(desc, payload)}
    if desc in ("SS", "NS"):
        return {desc: list(payload)}
    return {desc: payload}


def _jsonable(desc: str, payload: Any) -> Any:
    if desc == "B":
        return b64(payload)
    if desc == "BS":
        return [b64(b) for b in payload]
    if desc == "SS":
        return list(payload)
    if desc == "NULL":
        return None
    return payload


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- converters: wire attribute → Python value for one Arrow type ---------------------------------
def converter(t: pa.DataType, typed: bool) -> Converter:
    """Compile the conversion of wire attributes to values of Arrow type ``t``.

    ``typed`` (NOUNNEST's ``value``): ``t`` is a struct of descriptors, ``{"S": ..., "N": ...}``.
    """
    if typed:
        inner = {t.field(i).name: _payload(t.field(i)) for i in range(t.num_fields)}
        return lambda a: _typed(a, inner)
    if pa.types.is_struct(t):
        fields = fields_converter(t, typed=False)
        return lambda a: fields(a["M"])
    if t == pa.string():
        return text
    if t == pa.list_(pa.string()):
        return _string_list
    payload = _payload(pa.field(_key_of(t), t))
    return lambda a: payload(next(iter(a.values())))


def fields_converter(t: pa.DataType, typed: bool) -> Callable[[Mapping[str, Any]], Any]:
    """Convert a map payload (or a whole item) to a struct value of type ``t``; NULLs skipped."""
    fields = {t.field(i).name: converter(t.field(i).type, typed) for i in range(t.num_fields)}

    def convert(attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {k: c(attrs[k]) for k, c in fields.items() if k in attrs and not absent(attrs[k])}

    return convert


def _typed(attr: Any, inner: Mapping[str, Converter]) -> dict[str, Any]:
    ((desc, payload),) = attr.items()
    return {desc: inner[desc](payload)}


def _payload(field: pa.Field) -> Converter:
    """Convert the payload of descriptor ``field.name`` (a typed struct's field)."""
    desc = field.name
    if desc == "N":
        return to_float
    if desc == "B":
        return to_bytes
    if desc == "NS":
        return lambda p: [to_float(n) for n in p]
    if desc == "BS":
        return lambda p: [to_bytes(b) for b in p]
    if desc == "SS":
        return list
    if desc == "L":
        return lambda p: [wire_json(a) for a in p]
    if desc == "M":
        return fields_converter(field.type, typed=True)
    return _identity  # S, BOOL


def _identity(payload: Any) -> Any:
    return payload


def _string_list(attr: Any) -> list[str]:
    ((desc, payload),) = attr.items()
    return list(payload) if desc == "SS" else [plain_json(a) for a in payload]


def _key_of(t: pa.DataType) -> str:
    """The descriptor whose payload converts straight to ``t`` (double, binary, bool, lists)."""
    for desc, kind in _KIND.items():
        if _ARROW[kind] == t and desc not in ("S", "L"):
            return desc
    raise UnnestError(f"no DynamoDB type maps to {t}.")


def walk(attrs: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """FULL's leaves: ``(dotted path, attribute)`` for every non-map value; NULLs skipped."""
    for name, attr in attrs.items():
        path = f"{prefix}.{name}" if prefix else name
        check_name(name, path)
        desc, payload = parse(attr, path)
        if desc == "M":
            yield from walk(_map(payload, path), path)
        elif desc != "NULL":
            yield path, attr
