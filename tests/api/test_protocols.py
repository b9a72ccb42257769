"""Wire formats of the local AWS endpoint, checked against botocore itself.

Every request test starts from what botocore's own serializer sends and every response test ends
with what botocore's own parser reads, so passing means boto3 and ``zetl-nb serve`` agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.parsers import JSONParser, QueryParser
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from zetl_nb.api.protocols import (
    parse_json_request,
    parse_query_request,
    serialize_json_error,
    serialize_json_response,
    serialize_query_error,
    serialize_query_response,
)
from zetl_nb.core.errors import AwsError

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:orders-db"
TARGET_ARN = "arn:aws:redshift-serverless:us-east-1:123456789012:namespace/abc-123"
INTEGRATION_ARN = "arn:aws:rds:us-east-1:123456789012:integration:5b9f3d5a-1b2c-4d5e"
GLUE_SOURCE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
GLUE_TARGET = "arn:aws:glue:us-east-1:123456789012:database/lake"
CREATED = datetime(2024, 11, 22, 16, 43, 7, 250000, tzinfo=UTC)


@cache
def _service(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def op(service: str, operation: str) -> OperationModel:
    return _service(service).operation_model(operation)


def botocore_form(operation: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
    """The form botocore's QuerySerializer builds (ints and floats left unconverted)."""
    body: dict[str, Any] = create_serializer("query").serialize_to_request(params, operation)[
        "body"
    ]
    return body


def over_the_wire(form: dict[str, Any]) -> dict[str, str]:
    """The same form after HTTP form-encoding and decoding: every value is text."""
    encoded = urlencode({key: str(value) for key, value in form.items()})
    return dict(parse_qsl(encoded, keep_blank_values=True, strict_parsing=True))


def botocore_json(operation: OperationModel, params: dict[str, Any]) -> bytes:
    body: bytes = create_serializer("json").serialize_to_request(params, operation)["body"]
    return body


def _output(operation: OperationModel) -> Shape:
    # botocore's parsers take None for "no output"; its stubs only admit a Shape.
    return cast(Shape, operation.output_shape)


def read_query(operation: OperationModel, body: bytes, status: int = 200) -> dict[str, Any]:
    response = {"body": body, "status_code": status, "headers": {}}
    parsed: dict[str, Any] = QueryParser().parse(response, _output(operation))
    return parsed


def read_json(
    operation: OperationModel, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = {"body": body, "status_code": status, "headers": headers or {}}
    parsed: dict[str, Any] = JSONParser().parse(response, _output(operation))
    return parsed


def without_metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in parsed.items() if key != "ResponseMetadata"}


# --- query protocol requests ---------------------------------------------------------------

QUERY_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "rds",
        "CreateIntegration",
        {
            "SourceArn": SOURCE_ARN,
            "TargetArn": TARGET_ARN,
            "IntegrationName": "orders-to-lake",
            "KMSKeyId": "alias/zetl",
            "AdditionalEncryptionContext": {"department": "finance", "purpose": "zero-etl"},
            "Tags": [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": ""}],
            "DataFilter": "include: orders.*, exclude: orders.audit_*",
            "Description": "orders replicated to the lake",
        },
    ),
    (
        "rds",
        "DescribeIntegrations",
        {
            "Filters": [
                {"Name": "integration-name", "Values": ["orders-to-lake", "reviews"]},
                {"Name": "status", "Values": ["active"]},
            ],
            "MaxRecords": 20,
            "Marker": "page-2",
        },
    ),
    ("rds", "DescribeIntegrations", {"IntegrationIdentifier": INTEGRATION_ARN}),
    (
        "rds",
        "ModifyIntegration",
        {
            "IntegrationIdentifier": INTEGRATION_ARN,
            "IntegrationName": "orders-v2",
            "DataFilter": "include: orders.*",
            "Description": "",
        },
    ),
    ("rds", "DeleteIntegration", {"IntegrationIdentifier": "orders-to-lake"}),
    (
        "rds",
        "CreateDBCluster",
        {
            "DBClusterIdentifier": "orders-db",
            "Engine": "aurora-postgresql",
            "AvailabilityZones": ["us-east-1a", "us-east-1b"],
            "VpcSecurityGroupIds": ["sg-0123", "sg-4567", "sg-89ab"],
            "Port": 5432,
            "StorageEncrypted": True,
            "DeletionProtection": False,
            "BacktrackWindow": 86400,
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 16.0},
            "Tags": [{"Key": "team", "Value": "data"}],
        },
    ),
    (
        "rds",
        "CreateDBCluster",
        {"DBClusterIdentifier": "c", "Engine": "x", "AvailabilityZones": []},
    ),
    (
        "rds",
        "DescribeEvents",
        {
            "StartTime": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
            "EndTime": datetime(2024, 1, 3, tzinfo=UTC),
            "Duration": 60,
            "EventCategories": ["backup", "failover"],
        },
    ),
    # SNS names map keys and values ("Name"/"Value") and carries a blob inside a map value.
    (
        "sns",
        "Publish",
        {
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:events",
            "Message": "hello",
            "MessageAttributes": {
                "kind": {"DataType": "String", "StringValue": "insert"},
                "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xffzetl"},
            },
        },
    ),
    # SimpleDB's lists are flattened: "Attribute.1.Name", no wrapper segment.
    (
        "sdb",
        "PutAttributes",
        {
            "DomainName": "orders",
            "ItemName": "o-1",
            "Attributes": [
                {"Name": "status", "Value": "paid", "Replace": True},
                {"Name": "total", "Value": "9.50"},
            ],
            "Expected": {"Name": "status", "Exists": False},
        },
    ),
]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    QUERY_REQUESTS,
    ids=[f"{s}-{o}-{i}" for i, (s, o, _) in enumerate(QUERY_REQUESTS)],
)
def test_query_request_round_trips_botocore_serializer(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    model = op(service, operation)
    form = botocore_form(model, params)
    assert parse_query_request(form, model) == params
    assert parse_query_request(over_the_wire(form), model) == params


def test_query_request_uses_rds_list_member_names() -> None:
    model = op("rds", "CreateIntegration")
    form = {
        "Action": "CreateIntegration",
        "Version": "2014-10-31",
        "IntegrationName": "x",
        "Tags.Tag.2.Key": "second",
        "Tags.Tag.1.Key": "first",
        "Tags.Tag.1.Value": "1",
        "AdditionalEncryptionContext.entry.1.key": "k",
        "AdditionalEncryptionContext.entry.1.value": "v",
    }
    assert parse_query_request(form, model) == {
        "IntegrationName": "x",
        "Tags": [{"Key": "first", "Value": "1"}, {"Key": "second"}],
        "AdditionalEncryptionContext": {"k": "v"},
    }


def test_query_request_ignores_unknown_and_generic_member_names() -> None:
    model = op("rds", "CreateIntegration")
    form = {
        "IntegrationName": "x",
        "NotAMember": "1",
        "Tags.member.1.Key": "wrong list name for RDS",
        "Tags.Tag.1.Colour": "unknown field",
        "IntegrationName.Extra": "nested under a scalar",
    }
    assert parse_query_request(form, model) == {"IntegrationName": "x"}


def test_query_request_timestamps_are_aware_utc() -> None:
    model = op("rds", "DescribeEvents")
    parsed = parse_query_request(
        {"StartTime": "2024-01-02T05:04:05+02:00", "EndTime": "1704164645"}, model
    )
    assert parsed["StartTime"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parsed["StartTime"].tzinfo is UTC
    assert parsed["EndTime"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("operation", "form", "bad"),
    [
        ("DescribeIntegrations", {"MaxRecords": "twenty"}, "MaxRecords"),
        ("CreateDBCluster", {"StorageEncrypted": "yes"}, "StorageEncrypted"),
        ("DescribeEvents", {"StartTime": "last tuesday"}, "StartTime"),
    ],
)
def test_query_request_rejects_values_of_the_wrong_type(
    operation: str, form: dict[str, str], bad: str
) -> None:
    with pytest.raises(AwsError) as caught:
        parse_query_request(form, op("rds", operation))
    assert caught.value.code == "InvalidParameterValue"
    assert bad in caught.value.message


def test_query_request_rejects_bad_base64_blob() -> None:
    form = {
        "MessageAttributes.entry.1.Name": "raw",
        "MessageAttributes.entry.1.Value.BinaryValue": "not base64!",
    }
    with pytest.raises(AwsError, match="base64"):
        parse_query_request(form, op("sns", "Publish"))


# --- query protocol responses --------------------------------------------------------------

RDS_INTEGRATION: dict[str, Any] = {
    "SourceArn": SOURCE_ARN,
    "TargetArn": TARGET_ARN,
    "IntegrationName": "orders-to-lake",
    "IntegrationArn": INTEGRATION_ARN,
    "KMSKeyId": "alias/zetl",
    "AdditionalEncryptionContext": {"department": "finance"},
    "Status": "needs_attention",
    "Tags": [{"Key": "team", "Value": "data & <analytics>"}, {"Key": "env", "Value": ""}],
    "DataFilter": "include: orders.*",
    "Description": 'says "hi" & waves',
    "CreateTime": CREATED,
    "Errors": [
        {"ErrorCode": "InvalidTableSchema", "ErrorMessage": "table orders.audit has no key"},
        {"ErrorCode": "RetryLimit", "ErrorMessage": "gave up after 3 tries"},
    ],
}


def test_query_response_create_integration_is_read_by_botocore() -> None:
    model = op("rds", "CreateIntegration")
    body = serialize_query_response(model, RDS_INTEGRATION, "req-1")
    assert body.startswith(
        b'<CreateIntegrationResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        b"<CreateIntegrationResult>"
    )
    assert b"<Tags><Tag><Key>team</Key>" in body
    assert b"<CreateTime>2024-11-22T16:43:07.250000Z</CreateTime>" in body
    parsed = read_query(model, body)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert without_metadata(parsed) == RDS_INTEGRATION


def test_query_response_describe_integrations_list_and_marker() -> None:
    model = op("rds", "DescribeIntegrations")
    second = {**RDS_INTEGRATION, "IntegrationName": "reviews", "Tags": [], "Errors": []}
    result = {"Marker": "page-3", "Integrations": [RDS_INTEGRATION, second]}
    body = serialize_query_response(model, result, "req-2")
    assert b"<Integrations><Integration>" in body
    assert without_metadata(read_query(model, body)) == result


def test_query_response_numbers_booleans_and_nested_structures() -> None:
    model = op("rds", "DescribeDBClusters")
    cluster = {
        "DBClusterIdentifier": "orders-db",
        "AllocatedStorage": 1,
        "MultiAZ": False,
        "StorageEncrypted": True,
        "BacktrackWindow": 2**40,
        "ClusterCreateTime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 128.0},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1", "Status": "active"}],
        "AvailabilityZones": ["us-east-1a"],
    }
    result = {"DBClusters": [cluster]}
    body = serialize_query_response(model, result, "req-3")
    assert b"<ClusterCreateTime>2024-01-02T03:04:05Z</ClusterCreateTime>" in body
    assert b"<MultiAZ>false</MultiAZ>" in body
    assert without_metadata(read_query(model, body)) == result


def test_query_response_drops_none_and_keys_outside_the_shape() -> None:
    model = op("rds", "DeleteIntegration")
    result = {"IntegrationName": "x", "Description": None, "ResponseMetadata": {"RequestId": "old"}}
    parsed = read_query(model, serialize_query_response(model, result, "new"))
    assert without_metadata(parsed) == {"IntegrationName": "x"}
    assert parsed["ResponseMetadata"]["RequestId"] == "new"


def test_query_response_for_operation_without_output() -> None:
    model = op("rds", "AddTagsToResource")
    body = serialize_query_response(model, {}, "req-4")
    assert body.startswith(b"<AddTagsToResourceResponse")
    assert read_query(model, body)["ResponseMetadata"]["RequestId"] == "req-4"


def test_query_response_flattened_lists() -> None:
    model = op("sdb", "Select")
    result = {
        "Items": [
            {"Name": "o-1", "Attributes": [{"Name": "status", "Value": "paid"}]},
            {
                "Name": "o-2",
                "Attributes": [{"Name": "a", "Value": "1"}, {"Name": "b", "Value": "2"}],
            },
        ],
        "NextToken": "t",
    }
    body = serialize_query_response(model, result, "req-5")
    assert b"<Items>" not in body and b"<Item><Name>o-1</Name>" in body
    assert without_metadata(read_query(model, body)) == result


def test_query_response_rejects_characters_xml_cannot_carry() -> None:
    with pytest.raises(AwsError) as caught:
        serialize_query_response(op("rds", "DeleteIntegration"), {"Description": "a\x01b"}, "r")
    assert caught.value.status == 500
    assert "U+0001" in caught.value.message


# --- flattened maps and renamed members: no AWS query model has them, botocore supports them ---

SYNTHETIC = ServiceModel(
    {
        "metadata": {
            "protocol": "query",
            "apiVersion": "2020-01-01",
            "xmlNamespace": "https://example.com/doc/2020-01-01/",
        },
        "operations": {
            "Put": {
                "name": "Put",
                "input": {"shape": "Thing"},
                "output": {"shape": "Thing", "resultWrapper": "PutResult"},
            }
        },
        "shapes": {
            "Thing": {
                "type": "structure",
                "members": {
                    "Labels": {"shape": "FlatMap", "locationName": "Label"},
                    "Names": {"shape": "FlatList", "locationName": "Ignored"},
                    "Size": {"shape": "Long", "locationName": "size"},
                    "Ratio": {"shape": "Double"},
                    "Payload": {"shape": "Blob"},
                    "At": {"shape": "Time"},
                },
            },
            "FlatMap": {
                "type": "map",
                "flattened": True,
                "key": {"shape": "Str", "locationName": "K"},
                "value": {"shape": "Str", "locationName": "V"},
            },
            "FlatList": {
                "type": "list",
                "flattened": True,
                "member": {"shape": "Str", "locationName": "Name"},
            },
            "Str": {"type": "string"},
            "Long": {"type": "long"},
            "Double": {"type": "double"},
            "Blob": {"type": "blob"},
            "Time": {"type": "timestamp", "timestampFormat": "unixTimestamp"},
        },
    },
    service_name="example",
)
SYNTHETIC_THING: dict[str, Any] = {
    "Labels": {"a": "1", "b": "2"},
    "Names": ["x", "y"],
    "Size": 7,
    "Ratio": -2.5,
    "Payload": b"\x00\x01binary",
    "At": datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC),
}


def test_flattened_map_and_list_requests_round_trip() -> None:
    model = SYNTHETIC.operation_model("Put")
    form = botocore_form(model, SYNTHETIC_THING)
    assert "Label.1.K" in form and "Name.2" in form and "size" in form
    assert parse_query_request(over_the_wire(form), model) == SYNTHETIC_THING


def test_flattened_map_and_list_responses_round_trip() -> None:
    model = SYNTHETIC.operation_model("Put")
    body = serialize_query_response(model, SYNTHETIC_THING, "req-6")
    assert b"<At>1620284889.0</At>" in body
    assert without_metadata(read_query(model, body)) == SYNTHETIC_THING


# --- query protocol errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "sender", "kind"),
    [
        ("IntegrationNotFoundFault", 404, True, "Sender"),
        ("IntegrationAlreadyExistsFault", 400, True, "Sender"),
        ("InternalFailure", 500, False, "Receiver"),
    ],
)
def test_query_error_is_read_by_botocore(code: str, status: int, sender: bool, kind: str) -> None:
    message = 'Integration "orders" <x> & friends not found'
    body = serialize_query_error(code, message, "req-7", sender_fault=sender)
    parsed = read_query(op("rds", "DeleteIntegration"), body, status)
    assert parsed["Error"] == {"Type": kind, "Code": code, "Message": message}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-7"


def test_query_error_survives_characters_xml_cannot_carry() -> None:
    body = serialize_query_error("ValidationError", "bad value a\x00b", "r")
    parsed = read_query(op("rds", "DeleteIntegration"), body, 400)
    assert parsed["Error"]["Message"] == "bad value a\ufffdb"


# --- JSON 1.1 protocol ---------------------------------------------------------------------

GLUE_INTEGRATION: dict[str, Any] = {
    "SourceArn": GLUE_SOURCE,
    "TargetArn": GLUE_TARGET,
    "IntegrationName": "orders",
    "Description": "DynamoDB orders to the lake",
    "IntegrationArn": "arn:aws:glue:us-east-1:123456789012:integration:abc",
    "KmsKeyId": "alias/zetl",
    "AdditionalEncryptionContext": {"purpose": "zero-etl"},
    "Tags": [{"key": "team", "value": "data"}, {"key": "empty", "value": ""}],
    "Status": "ACTIVE",
    "CreateTime": CREATED,
    "Errors": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
    "DataFilter": "include: *",
    "IntegrationConfig": {
        "RefreshInterval": "15",
        "SourceProperties": {"RecordUpdateField": "updated_at"},
        "ContinuousSync": False,
    },
}


def test_json_response_create_integration_is_read_by_botocore() -> None:
    model = op("glue", "CreateIntegration")
    body = serialize_json_response(model, GLUE_INTEGRATION)
    assert json.loads(body)["CreateTime"] == pytest.approx(CREATED.timestamp())
    assert without_metadata(read_json(model, body)) == GLUE_INTEGRATION


def test_json_response_describe_integrations_list_and_marker() -> None:
    model = op("glue", "DescribeIntegrations")
    listed = {**GLUE_INTEGRATION, "Errors": [], "Tags": []}
    result = {"Integrations": [listed, {**listed, "IntegrationName": "b"}], "Marker": "m-2"}
    assert without_metadata(read_json(model, serialize_json_response(model, result))) == result


def test_json_response_blobs_and_iso8601_timestamps() -> None:
    kms = op("kms", "Encrypt")
    result: dict[str, Any] = {"CiphertextBlob": b"\x00\x01\xfe\xff", "KeyId": "k"}
    body = serialize_json_response(kms, result)
    assert json.loads(body)["CiphertextBlob"] == "AAH+/w=="
    assert without_metadata(read_json(kms, body)) == result
    job = op("glue", "GetJob")
    start = datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    node = {"DirectKinesisSource": {"Name": "s", "StreamingOptions": {"StartingTimestamp": start}}}
    result = {"Job": {"Name": "j", "CodeGenConfigurationNodes": {"n1": node}}}
    body = serialize_json_response(job, result)
    assert b'"StartingTimestamp":"2024-01-02T03:04:05.500000Z"' in body
    assert without_metadata(read_json(job, body)) == result


def test_json_response_for_operation_without_output_fields() -> None:
    model = op("glue", "DeleteIntegration")
    assert without_metadata(read_json(model, serialize_json_response(model, {}))) == {}


@pytest.mark.parametrize("status", [400, 404, 500])
def test_json_error_is_read_by_botocore(status: int) -> None:
    body, headers = serialize_json_error("EntityNotFoundException", 'no "orders" <here>')
    assert headers["x-amzn-ErrorType"] == "EntityNotFoundException"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    parsed = read_json(op("glue", "GetIntegrationResourceProperty"), body, status, headers)
    assert parsed["Error"]["Code"] == "EntityNotFoundException"
    assert parsed["Error"]["Message"] == 'no "orders" <here>'


JSON_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "glue",
        "CreateIntegration",
        {
            "IntegrationName": "orders",
            "SourceArn": GLUE_SOURCE,
            "TargetArn": GLUE_TARGET,
            "Description": "orders",
            "DataFilter": "include: *",
            "KmsKeyId": "alias/zetl",
            "AdditionalEncryptionContext": {"purpose": "zero-etl"},
            "Tags": [{"key": "team", "value": "data"}],
            "IntegrationConfig": {"RefreshInterval": "15", "ContinuousSync": True},
        },
    ),
    (
        "glue",
        "DescribeIntegrations",
        {"Filters": [{"Name": "Status", "Values": ["ACTIVE", "FAILED"]}], "MaxRecords": 5},
    ),
    ("glue", "ModifyIntegration", {"IntegrationIdentifier": "orders", "DataFilter": "x"}),
    ("glue", "DeleteIntegration", {"IntegrationIdentifier": "orders"}),
    (
        "glue",
        "CreateTable",
        {
            "DatabaseName": "lake",
            "TableInput": {
                "Name": "t",
                "LastAccessTime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            },
        },
    ),
    (
        "glue",
        "CreateJob",
        {
            "Name": "j",
            "Role": "r",
            "Command": {"Name": "glueetl"},
            "CodeGenConfigurationNodes": {
                "n1": {
                    "DirectKinesisSource": {
                        "Name": "s",
                        "StreamingOptions": {
                            "StartingTimestamp": datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
                        },
                    }
                }
            },
        },
    ),
    ("kms", "Decrypt", {"CiphertextBlob": b"\x00\x01\xfe\xff", "KeyId": "k"}),
]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    JSON_REQUESTS,
    ids=[f"{s}-{o}" for s, o, _ in JSON_REQUESTS],
)
def test_json_request_round_trips_botocore_serializer(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    model = op(service, operation)
    assert parse_json_request(botocore_json(model, params), model) == params


def test_json_request_epoch_with_fraction_and_ignored_members() -> None:
    model = op("glue", "CreateTable")
    body = (
        b'{"DatabaseName": "d", "Unknown": 1, "TableInput": {"Name": "t", "LastAccessTime": 1.5}}'
    )
    parsed = parse_json_request(body, model)
    assert parsed == {
        "DatabaseName": "d",
        "TableInput": {"Name": "t", "LastAccessTime": datetime(1970, 1, 1, 0, 0, 1, 500000, UTC)},
    }
    assert parsed["TableInput"]["LastAccessTime"].tzinfo is UTC


@pytest.mark.parametrize("body", [b"", b"  \n", b"null"])
def test_json_request_empty_body_is_no_params(body: bytes) -> None:
    assert parse_json_request(body, op("glue", "DescribeIntegrations")) == {}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"MaxRecords": "five"}',
        b'{"MaxRecords": true}',
        b'{"Filters": {"Name": "x"}}',
        b'{"IntegrationIdentifier": 7}',
    ],
)
def test_json_request_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(AwsError) as caught:
        parse_json_request(body, op("glue", "DescribeIntegrations"))
    assert caught.value.code == "SerializationException"


def test_json_request_error_names_the_nested_member() -> None:
    body = b'{"Filters": [{"Name": "Status", "Values": [1]}]}'
    with pytest.raises(AwsError, match=r"Filters\[0\]\.Values\[0\]: expected str, got int"):
        parse_json_request(body, op("glue", "DescribeIntegrations"))


# --- property: any printable text survives every direction ---------------------------------

# XML 1.0 cannot carry control characters other than tab, newline and carriage return, nor
# surrogates or the noncharacters U+FFFE/U+FFFF; AWS never returns them either.
TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Cn"), whitelist_characters="\t\n\r<>&\"'"),
    max_size=40,
)
TAGS = st.lists(st.fixed_dictionaries({"Key": TEXT, "Value": TEXT}), max_size=4)
NAME = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=63)
MOMENT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(tags=TAGS, description=TEXT, name=NAME, context=st.dictionaries(TEXT, TEXT))
def test_random_text_round_trips_query_request(
    tags: list[dict[str, str]], description: str, name: str, context: dict[str, str]
) -> None:
    model = op("rds", "CreateIntegration")
    params: dict[str, Any] = {
        "SourceArn": SOURCE_ARN,
        "TargetArn": TARGET_ARN,
        "IntegrationName": name,
        "Tags": tags,
        "Description": description,
    }
    if context:
        # botocore sends nothing for an empty map (unlike an empty list), so {} cannot round-trip.
        params["AdditionalEncryptionContext"] = context
    assert parse_query_request(over_the_wire(botocore_form(model, params)), model) == params


@settings(max_examples=150, deadline=None)
@given(tags=TAGS, description=TEXT, created=MOMENT, context=st.dictionaries(TEXT, TEXT))
def test_random_text_round_trips_query_response(
    tags: list[dict[str, str]], description: str, created: datetime, context: dict[str, str]
) -> None:
    model = op("rds", "CreateIntegration")
    result = {
        **RDS_INTEGRATION,
        "Tags": tags,
        "Description": description,
        "CreateTime": created,
        "AdditionalEncryptionContext": context,
    }
    body = serialize_query_response(model, result, "req")
    assert without_metadata(read_query(model, body)) == result


@settings(max_examples=150, deadline=None)
@given(tags=TAGS, description=TEXT, created=MOMENT)
def test_random_text_round_trips_json(
    tags: list[dict[str, str]], description: str, created: datetime
) -> None:
    glue_tags = [{"key": tag["Key"] or "k", "value": tag["Value"]} for tag in tags]
    response_model = op("glue", "CreateIntegration")
    result = {**GLUE_INTEGRATION, "Tags": glue_tags, "Description": description}
    result["CreateTime"] = created
    body = serialize_json_response(response_model, result)
    assert without_metadata(read_json(response_model, body)) == result
    request = {
        "IntegrationName": "orders",
        "SourceArn": GLUE_SOURCE,
        "TargetArn": GLUE_TARGET,
        "Description": description,
        "Tags": glue_tags,
    }
    sent = botocore_json(response_model, request)
    assert parse_json_request(sent, response_model) == request


@settings(max_examples=50, deadline=None)
@given(offset_minutes=st.integers(-14 * 60, 14 * 60), moment=MOMENT)
def test_timestamps_in_any_zone_come_back_as_the_same_instant(
    offset_minutes: int, moment: datetime
) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    model = op("rds", "DeleteIntegration")
    body = serialize_query_response(model, {"CreateTime": local}, "r")
    assert read_query(model, body)["CreateTime"] == moment
    glue = op("glue", "DeleteIntegration")
    assert (
        read_json(glue, serialize_json_response(glue, {"CreateTime": local}))["CreateTime"]
        == moment
    )


# --- property: every operation of both models, with values drawn from the model ------------

PLAIN = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), max_size=12)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": PLAIN,
    "boolean": st.booleans(),
    "integer": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "blob": st.binary(max_size=12),
    "timestamp": MOMENT,
}
MAX_DEPTH = 5


def values_for(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any] | None:
    """Values of ``shape`` that every protocol can carry; None where the depth runs out.

    Structures and maps are never empty: botocore's query serializer sends nothing for them.
    """
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return st.just({"document": [1, "two", None]})
        if depth >= MAX_DEPTH:
            return None
        members = {
            name: strategy
            for name, member in shape.members.items()
            if (strategy := values_for(member, depth + 1)) is not None
        }
        if not members:
            return None
        if shape.is_tagged_union:
            return st.one_of([st.fixed_dictionaries({n: s}) for n, s in members.items()])
        return st.fixed_dictionaries({}, optional=members).filter(bool)
    if isinstance(shape, ListShape | MapShape):
        inner = values_for(shape.member if isinstance(shape, ListShape) else shape.value, depth + 1)
        if inner is None or depth >= MAX_DEPTH:
            return None
        if isinstance(shape, ListShape):
            return st.lists(inner, max_size=2)
        return st.dictionaries(PLAIN.filter(bool), inner, min_size=1, max_size=2)
    return SCALARS[shape.type_name]


@cache
def operation_values(service: str, operation: str, direction: str) -> st.SearchStrategy[Any]:
    model = op(service, operation)
    shape = model.input_shape if direction == "input" else model.output_shape
    strategy = values_for(shape) if shape is not None else None
    return strategy if strategy is not None else st.just({})


def whole_seconds(value: Any) -> Any:
    """botocore's JSON serializer sends epoch timestamps in whole seconds."""
    if isinstance(value, datetime):
        return value.replace(microsecond=0)
    if isinstance(value, dict):
        return {key: whole_seconds(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_seconds(item) for item in value]
    return value


RDS_OPERATIONS = st.sampled_from(sorted(_service("rds").operation_names))
GLUE_OPERATIONS = st.sampled_from(sorted(_service("glue").operation_names))


# Drawn values ignore the model's lengths and patterns, so botocore's validation is off below.
@settings(max_examples=300, deadline=None)
@given(operation=RDS_OPERATIONS, data=st.data())
def test_every_rds_operation_round_trips(operation: str, data: st.DataObject) -> None:
    model = op("rds", operation)
    params = data.draw(operation_values("rds", operation, "input"), label="params")
    form = create_serializer("query", include_validation=False).serialize_to_request(params, model)
    assert parse_query_request(over_the_wire(form["body"]), model) == params
    result = data.draw(operation_values("rds", operation, "output"), label="result")
    body = serialize_query_response(model, result, "req")
    assert without_metadata(read_query(model, body)) == result


# Hypothesis warns when it renders Glue's huge strategies; the values themselves are small.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=300, deadline=None)
@given(operation=GLUE_OPERATIONS, data=st.data())
def test_every_glue_operation_round_trips(operation: str, data: st.DataObject) -> None:
    model = op("glue", operation)
    params = whole_seconds(data.draw(operation_values("glue", operation, "input"), label="params"))
    sent = create_serializer("json", include_validation=False).serialize_to_request(params, model)
    assert parse_json_request(sent["body"], model) == params
    result = data.draw(operation_values("glue", operation, "output"), label="result")
    body = serialize_json_response(model, result)
    assert without_metadata(read_json(model, body)) == result
