"""AWS wire formats for the local endpoint, driven by botocore's own service models.

Two protocols matter to ``zetl-nb serve``: the *query* protocol (RDS: form-encoded requests, XML
responses) and *JSON 1.1* (Glue). Each function here is the server-side mirror of a botocore
serializer or parser, so anything boto3 sends for *any* operation of a model can be read back,
and anything written here is read by boto3 exactly as it would read AWS. Nothing here does I/O.

>>> import botocore.session
>>> rds = botocore.session.get_session().get_service_model("rds")
>>> op = rds.operation_model("DeleteIntegration")
>>> parse_query_request({"Action": "DeleteIntegration", "IntegrationIdentifier": "x"}, op)
{'IntegrationIdentifier': 'x'}
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from zetl_nb.core.errors import AwsError

__all__ = [
    "parse_json_request",
    "parse_query_request",
    "serialize_json_error",
    "serialize_json_response",
    "serialize_query_error",
    "serialize_query_response",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES = str.maketrans(
    # "\r" must be a reference: XML parsers normalise a literal one to "\n".
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
)
# Smithy's spelling of the floats JSON and XML have no literal for.
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ABSENT: Any = object()  # "nothing on the wire for this member", distinct from None


# --- timestamps and scalars shared by both protocols ---------------------------------------


def _to_datetime(value: object, path: str, code: str) -> datetime:
    """Read an epoch number, ISO 8601 or RFC 822 timestamp as an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_timestamp_text(value.strip(), path, code)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _from_epoch(value, path, code)
    else:
        raise AwsError(code, f"{path}: expected a timestamp, got {type(value).__name__}")
    if parsed.tzinfo is None:
        # AWS reads a timestamp without an offset as UTC, as botocore does when sending one.
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(seconds: float, path: str, code: str) -> datetime:
    try:
        # timedelta keeps microseconds exact and has none of fromtimestamp's platform limits.
        return _EPOCH + timedelta(seconds=seconds)
    except (ValueError, OverflowError) as exc:
        raise AwsError(code, f"{path}: {seconds!r} is not a usable epoch timestamp") from exc


def _parse_timestamp_text(text: str, path: str, code: str) -> datetime:
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _from_epoch(seconds, path, code)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    raise AwsError(code, f"{path}: {text!r} is not an ISO 8601, RFC 822 or epoch timestamp")


def _format_timestamp(shape: Shape, value: object, default_format: str) -> str | float:
    """Write a timestamp in the shape's ``timestampFormat``, else the protocol's default."""
    moment = _to_datetime(value, shape.name, "InternalFailure")
    fmt = str(shape.serialization.get("timestampFormat", default_format)).lower()
    if fmt == "unixtimestamp":
        return (moment - _EPOCH) / timedelta(seconds=1)
    if fmt == "rfc822":
        return email.utils.format_datetime(moment, usegmt=True)
    # Microseconds only when present, so whole seconds read like AWS's own timestamps.
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(pattern)


def _to_base64(value: str | bytes | bytearray | memoryview) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(data).decode("ascii")


def _from_base64(value: object, path: str, code: str) -> bytes:
    if not isinstance(value, str):
        raise AwsError(code, f"{path}: expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AwsError(code, f"{path}: {value!r} is not valid base64 ({exc})") from exc


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


# --- query protocol: form parameters in --------------------------------------------------


@dataclass
class _FormNode:
    """One dotted segment of the flat form: ``Tags.Tag.1.Key`` is four nested nodes."""

    value: str | None = None
    children: dict[str, _FormNode] = field(default_factory=dict)


def _form_tree(form: Mapping[str, object]) -> _FormNode:
    root = _FormNode()
    for key, raw in form.items():
        if key in ("Action", "Version"):
            continue
        node = root
        for segment in key.split("."):
            node = node.children.setdefault(segment, _FormNode())
        # botocore's serializer leaves ints and floats unconverted; over HTTP all are text.
        node.value = raw if isinstance(raw, str) else str(raw)
    return root


def parse_query_request(form: Mapping[str, str], operation_model: OperationModel) -> dict[str, Any]:
    """Turn AWS query-protocol form parameters into the params dict a boto3 caller passed.

    The inverse of ``botocore.serialize.QuerySerializer``: list members named by their
    ``locationName`` (RDS writes ``Tags.Tag.1.Key``), ``member`` otherwise, flattened lists,
    maps as ``entry.N.key``/``entry.N.value`` (or their location names), and scalars converted
    by shape type. ``Action``, ``Version`` and parameters the model does not know are ignored.
    A value that cannot be read as its type raises :class:`AwsError` ``InvalidParameterValue``
    (RDS's code for "an invalid or out-of-range value was supplied").

    >>> import botocore.session
    >>> rds = botocore.session.get_session().get_service_model("rds")
    >>> op = rds.operation_model("CreateIntegration")
    >>> parse_query_request({"Tags.Tag.1.Key": "team", "Tags.Tag.1.Value": "data"}, op)
    {'Tags': [{'Key': 'team', 'Value': 'data'}]}
    """
    shape = operation_model.input_shape
    if shape is None:
        return {}
    params = _decode_structure(shape, _form_tree(form), "")
    return params if params is not _ABSENT else {}


def _xml_member_name(shape: Shape, member_name: str) -> str:
    """The name a structure member has on the wire (form segment or XML element)."""
    if isinstance(shape, ListShape) and shape.serialization.get("flattened"):
        # A flattened list takes its member's locationName in place of its own name.
        flat_name = shape.member.serialization.get("name")
        if flat_name:
            return str(flat_name)
    return str(shape.serialization.get("name", member_name))


def _decode_query(shape: Shape, node: _FormNode, path: str) -> Any:
    if isinstance(shape, StructureShape):
        return _decode_structure(shape, node, path)
    if isinstance(shape, ListShape):
        return _decode_list(shape, node, path)
    if isinstance(shape, MapShape):
        return _decode_map(shape, node, path)
    if node.value is None:
        return _ABSENT
    return _decode_query_scalar(shape, node.value, path)


def _decode_structure(shape: StructureShape, node: _FormNode, path: str) -> Any:
    result: dict[str, Any] = {}
    for member_name, member_shape in shape.members.items():
        child = node.children.get(_xml_member_name(member_shape, member_name))
        if child is None:
            continue
        value = _decode_query(member_shape, child, f"{path}.{member_name}" if path else member_name)
        if value is not _ABSENT:
            result[member_name] = value
    # An empty nested structure never reaches the wire, so one made only of unknowns is absent.
    return result if result or not path else _ABSENT


def _indexed(node: _FormNode | None) -> list[_FormNode]:
    """Children named 1, 2, ... in numeric order; other names are not list positions."""
    if node is None:
        return []
    numbered = [(int(k), child) for k, child in node.children.items() if k.isdigit()]
    return [child for _, child in sorted(numbered, key=lambda pair: pair[0])]


def _decode_list(shape: ListShape, node: _FormNode, path: str) -> Any:
    if not node.children:
        # QuerySerializer sends ``Name=`` for an empty list.
        return [] if node.value is not None else _ABSENT
    if shape.serialization.get("flattened"):
        items = _indexed(node)
    else:
        items = _indexed(node.children.get(str(shape.member.serialization.get("name", "member"))))
    decoded = (_decode_query(shape.member, item, f"{path}[{i}]") for i, item in enumerate(items))
    result = [value for value in decoded if value is not _ABSENT]
    # Only unknown names under the list: ignored like any unknown parameter.
    return result if result or node.value is not None else _ABSENT


def _decode_map(shape: MapShape, node: _FormNode, path: str) -> Any:
    entries = _indexed(node if shape.serialization.get("flattened") else node.children.get("entry"))
    key_name = str(shape.key.serialization.get("name", "key"))
    value_name = str(shape.value.serialization.get("name", "value"))
    result: dict[Any, Any] = {}
    for entry in entries:
        key_node = entry.children.get(key_name)
        value_node = entry.children.get(value_name)
        if key_node is None or value_node is None:
            continue
        key = _decode_query(shape.key, key_node, f"{path}.{key_name}")
        value = _decode_query(shape.value, value_node, f"{path}[{key}]")
        if key is not _ABSENT and value is not _ABSENT:
            result[key] = value
    return result if result or node.value is not None else _ABSENT


def _decode_query_scalar(shape: Shape, text: str, path: str) -> Any:
    kind = shape.type_name
    code = "InvalidParameterValue"
    try:
        if kind in ("integer", "long", "short", "byte", "biginteger"):
            return int(text)
        if kind in ("float", "double", "bigdecimal"):
            return float(text)
    except ValueError as exc:
        raise AwsError(code, f"{path}: {text!r} is not a valid {kind}") from exc
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise AwsError(code, f"{path}: {text!r} is not 'true' or 'false'")
        return lowered == "true"
    if kind == "timestamp":
        return _to_datetime(text, path, code)
    if kind == "blob":
        return _from_base64(text, path, code)
    return text


# --- query protocol: XML out ---------------------------------------------------------------


def _xml_text(value: str, where: str) -> str:
    bad = _NOT_XML.search(value)
    if bad is not None:
        raise AwsError(
            "InternalFailure",
            f"{where}: character U+{ord(bad.group()):04X} cannot be carried in an XML response",
            500,
        )
    return value.translate(_XML_ESCAPES)


def serialize_query_response(
    operation_model: OperationModel, result: Mapping[str, Any], request_id: str
) -> bytes:
    """The XML body AWS's query protocol returns for ``result``, as botocore's QueryParser reads it.

    The root is ``<{Operation}Response xmlns="{xmlNamespace}">``; members sit inside the output
    shape's ``resultWrapper`` (``CreateIntegrationResult``), followed by ``ResponseMetadata``.
    Keys of ``result`` the output shape does not define (``ResponseMetadata`` included) and
    ``None`` values are left out.
    """
    name = _xml_text(operation_model.name, "operation")
    namespace = operation_model.metadata.get("xmlNamespace")
    if isinstance(namespace, Mapping):
        namespace = namespace.get("uri")
    xmlns = f' xmlns="{_xml_text(str(namespace), "xmlNamespace")}"' if namespace else ""
    out: list[str] = [f"<{name}Response{xmlns}>"]
    shape = operation_model.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper")
        if wrapper:
            out.append(f"<{wrapper}>")
        _write_members(shape, result, out)
        if wrapper:
            out.append(f"</{wrapper}>")
    rid = _xml_text(request_id, "RequestId")
    out.append(f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>")
    out.append(f"</{name}Response>")
    return "".join(out).encode("utf-8")


def _write_members(shape: StructureShape, value: Mapping[str, Any], out: list[str]) -> None:
    for member_name, member_shape in shape.members.items():
        member_value = value.get(member_name)
        if member_value is not None:
            tag = _xml_member_name(member_shape, member_name)
            _write_xml(tag, member_shape, member_value, out)


def _write_xml(tag: str, shape: Shape, value: Any, out: list[str]) -> None:
    if isinstance(shape, StructureShape):
        out.append(f"<{tag}>")
        _write_members(shape, value, out)
        out.append(f"</{tag}>")
    elif isinstance(shape, ListShape):
        _write_xml_list(tag, shape, value, out)
    elif isinstance(shape, MapShape):
        _write_xml_map(tag, shape, value, out)
    else:
        out.append(f"<{tag}>{_xml_text(_xml_scalar(shape, value), shape.name)}</{tag}>")


def _write_xml_list(tag: str, shape: ListShape, value: Any, out: list[str]) -> None:
    items = [item for item in value if item is not None]
    if shape.serialization.get("flattened"):
        # Each item is an element named like the list itself; no wrapper element.
        for item in items:
            _write_xml(tag, shape.member, item, out)
        return
    item_tag = str(shape.member.serialization.get("name", "member"))
    out.append(f"<{tag}>")
    for item in items:
        _write_xml(item_tag, shape.member, item, out)
    out.append(f"</{tag}>")


def _write_xml_map(tag: str, shape: MapShape, value: Mapping[Any, Any], out: list[str]) -> None:
    key_tag = str(shape.key.serialization.get("name", "key"))
    value_tag = str(shape.value.serialization.get("name", "value"))
    flattened = bool(shape.serialization.get("flattened"))
    entry_tag = tag if flattened else "entry"
    if not flattened:
        out.append(f"<{tag}>")
    for key, item in value.items():
        if item is None:
            continue
        out.append(f"<{entry_tag}>")
        _write_xml(key_tag, shape.key, key, out)
        _write_xml(value_tag, shape.value, item, out)
        out.append(f"</{entry_tag}>")
    if not flattened:
        out.append(f"</{tag}>")


def _xml_scalar(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(_format_timestamp(shape, value, "iso8601"))
    if kind == "blob":
        return _to_base64(value)
    if kind in ("float", "double"):
        return _float_text(float(value))
    return str(value)


def serialize_query_error(
    code: str, message: str, request_id: str, sender_fault: bool = True
) -> bytes:
    """AWS's query-protocol error body, read by botocore as ``Error.Code``/``Error.Message``.

    >>> serialize_query_error("IntegrationNotFoundFault", "no such integration", "r-1")[:15]
    b'<ErrorResponse>'
    """

    def text(value: str, where: str) -> str:
        # An error about bad input must not itself fail on that input's characters.
        return _xml_text(_NOT_XML.sub("\ufffd", value), where)

    fault = "Sender" if sender_fault else "Receiver"
    body = (
        f"<ErrorResponse><Error><Type>{fault}</Type>"
        f"<Code>{text(code, 'Code')}</Code><Message>{text(message, 'Message')}</Message>"
        f"</Error><RequestId>{text(request_id, 'RequestId')}</RequestId></ErrorResponse>"
    )
    return body.encode("utf-8")


# --- JSON 1.1 protocol ---------------------------------------------------------------------


def serialize_json_response(operation_model: OperationModel, result: Mapping[str, Any]) -> bytes:
    """The AWS JSON 1.1 body for ``result``: timestamps as epoch seconds, blobs as base64.

    Keys the output shape does not define (``ResponseMetadata`` included) and ``None`` values
    are left out; an operation without output returns ``{}``.
    """
    shape = operation_model.output_shape
    body = _to_json(shape, result) if shape is not None else {}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _to_json(shape: Shape, value: Any) -> Any:
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        return {
            str(member.serialization.get("name", name)): _to_json(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if isinstance(shape, ListShape):
        return [_to_json(shape.member, item) for item in value if item is not None]
    if isinstance(shape, MapShape):
        return {str(k): _to_json(shape.value, v) for k, v in value.items() if v is not None}
    kind = shape.type_name
    if kind == "timestamp":
        return _format_timestamp(shape, value, "unixtimestamp")
    if kind == "blob":
        return _to_base64(value)
    if kind in ("float", "double") and not math.isfinite(value):
        return _float_text(float(value))
    return value


def serialize_json_error(code: str, message: str) -> tuple[bytes, dict[str, str]]:
    """An AWS JSON 1.1 error: body ``{"__type": code, "message": message}`` and its headers.

    >>> body, headers = serialize_json_error("EntityNotFoundException", "no integration x")
    >>> headers["x-amzn-ErrorType"]
    'EntityNotFoundException'
    """
    body = json.dumps({"__type": code, "message": message}).encode("utf-8")
    return body, {"x-amzn-ErrorType": code, "Content-Type": _JSON_CONTENT_TYPE}


def parse_json_request(body: bytes, operation_model: OperationModel) -> dict[str, Any]:
    """Turn an AWS JSON 1.1 request body into the params dict a boto3 caller passed.

    Timestamps (epoch numbers or ISO 8601 text) become aware UTC datetimes and blobs are
    base64-decoded; members the model does not know are ignored; an empty body is ``{}``.
    A body that is not JSON, or a value of the wrong JSON type, raises :class:`AwsError`
    ``SerializationException`` as Glue does.
    """
    shape = operation_model.input_shape
    if not body.strip() or shape is None:
        return {}
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise AwsError("SerializationException", f"request body is not JSON: {exc}") from exc
    if document is None:
        return {}
    params = _from_json(shape, document, "")
    return params if isinstance(params, dict) else {}


def _from_json(shape: Shape, value: Any, path: str) -> Any:
    if value is None:
        return _ABSENT
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        _expect(value, dict, path or "request body")
        decoded = {
            name: _from_json(
                member,
                value.get(member.serialization.get("name", name)),
                f"{path}.{name}" if path else name,
            )
            for name, member in shape.members.items()
        }
        return {name: item for name, item in decoded.items() if item is not _ABSENT}
    if isinstance(shape, ListShape):
        _expect(value, list, path)
        items = (_from_json(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value))
        return [item for item in items if item is not _ABSENT]
    if isinstance(shape, MapShape):
        _expect(value, dict, path)
        pairs = ((k, _from_json(shape.value, v, f"{path}[{k}]")) for k, v in value.items())
        return {k: v for k, v in pairs if v is not _ABSENT}
    return _from_json_scalar(shape, value, path)


def _from_json_scalar(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "timestamp":
        return _to_datetime(value, path, "SerializationException")
    if kind == "blob":
        return _from_base64(value, path, "SerializationException")
    if kind in ("float", "double", "bigdecimal"):
        if isinstance(value, str) and value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        _expect(value, (int, float), path)
        return float(value)
    if kind in ("integer", "long", "short", "byte", "biginteger"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        _expect(value, int, path)
        return value
    if kind == "boolean":
        _expect(value, bool, path)
        return value
    if kind in ("string", "character"):
        _expect(value, str, path)
    return value


def _expect(value: object, kinds: type | tuple[type, ...], path: str) -> None:
    """Reject a JSON value of the wrong type (``true`` is not a number, whatever Python says)."""
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        expected = " or ".join(kind.__name__ for kind in allowed)
        message = f"{path}: expected {expected}, got {type(value).__name__}"
        raise AwsError("SerializationException", message)
