"""ARN parsing and formatting: round trips, resource splitting, and errors that name the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.arn import (
    Arn,
    dynamodb_table_arn,
    format_arn,
    glue_catalog_arn,
    glue_connection_arn,
    glue_database_arn,
    glue_integration_arn,
    rds_cluster_arn,
    rds_integration_arn,
)
from zetl_nb.core.errors import AwsError

ACCOUNT = "123456789012"
REGION = "us-east-1"

partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov"])
services = st.sampled_from(["dynamodb", "rds", "glue", "s3", "s3tables", "iam", "kms"]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20
)
regions = st.just("") | st.builds(
    lambda geo, direction, n: f"{geo}-{direction}-{n}",
    st.sampled_from(["us", "eu", "ap", "sa", "ca", "me", "af", "il"]),
    st.sampled_from(["east", "west", "north", "south", "central", "northeast", "southeast"]),
    st.integers(min_value=1, max_value=9),
)
accounts = st.just("") | st.text(alphabet="0123456789", min_size=12, max_size=12)
# A resource segment: any printable text without the separators (they are added between segments).
segments = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/:"),
    min_size=1,
    max_size=12,
)
resources = st.builds(
    lambda first, rest: first + "".join(sep + seg for sep, seg in rest),
    segments,
    st.lists(st.tuples(st.sampled_from(["/", ":"]), segments | st.just("*")), max_size=4),
)


@given(partitions, services, regions, accounts, resources)
def test_parse_then_str_is_identity(
    partition: str, service: str, region: str, account: str, resource: str
) -> None:
    text = f"arn:{partition}:{service}:{region}:{account}:{resource}"
    arn = Arn.parse(text)
    assert str(arn) == text
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource) == (
        partition,
        service,
        region,
        account,
        resource,
    )


@given(partitions, services, regions, accounts, resources)
def test_resource_type_and_id_rebuild_the_resource(
    partition: str, service: str, region: str, account: str, resource: str
) -> None:
    arn = Arn(partition, service, region, account, resource)
    assert arn.resource_type
    assert "/" not in arn.resource_type and ":" not in arn.resource_type
    if arn.resource_id:
        separator = resource[len(arn.resource_type)]
        assert separator in "/:"
        assert f"{arn.resource_type}{separator}{arn.resource_id}" == resource
    else:
        assert arn.resource_type == resource


@pytest.mark.parametrize(
    ("service", "resource", "rtype", "rid"),
    [
        ("dynamodb", "table/orders", "table", "orders"),
        ("dynamodb", "table/orders/export/01234-abc", "table", "orders/export/01234-abc"),
        ("rds", "cluster:db1", "cluster", "db1"),
        (
            "glue",
            "integration:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "integration",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        ),
        ("glue", "catalog/s3tablescatalog/bucket", "catalog", "s3tablescatalog/bucket"),
        ("glue", "catalog", "catalog", ""),
        ("glue", "database/lakehouse", "database", "lakehouse"),
    ],
)
def test_resource_type_and_id(service: str, resource: str, rtype: str, rid: str) -> None:
    arn = Arn.parse(f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
    assert arn.resource == resource
    assert arn.resource_type == rtype
    assert arn.resource_id == rid


def test_empty_region_and_account_are_allowed() -> None:
    arn = Arn.parse("arn:aws:s3:::my-bucket/key")
    assert (arn.service, arn.region, arn.account) == ("s3", "", "")
    assert (arn.resource_type, arn.resource_id) == ("my-bucket", "key")


MALFORMED = [
    "",
    "orders",
    "arn",
    "arn:aws",
    "arn:aws:dynamodb:us-east-1:123456789012",  # no resource
    "arn:aws:dynamodb:us-east-1:123456789012:",  # empty resource
    "arn:aws:dynamodb:us-east-1:12345:table/orders",  # short account
    "arn:aws:dynamodb:us-east-1:1234567890123:table/orders",  # long account
    "arn:aws:dynamodb:us-east-1:12345678901a:table/orders",  # non-digit account
    "arn:gcp:dynamodb:us-east-1:123456789012:table/orders",  # not an aws partition
    "arn:aws:DynamoDB:us-east-1:123456789012:table/orders",  # upper-case service
    "arn:aws::us-east-1:123456789012:table/orders",  # empty service
    "arn:aws:dynamodb:US-EAST-1:123456789012:table/orders",  # upper-case region
    "ARN:aws:dynamodb:us-east-1:123456789012:table/orders",
    " arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders\n",  # trailing newline
    "arn:aws:dynamodb:us-east-1:123456789012:table/or\nders",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_arn_is_a_validation_error_naming_the_field(text: str) -> None:
    with pytest.raises(AwsError) as info:
        Arn.parse(text, field="SourceArn")
    err = info.value
    assert err.code == "ValidationException"
    assert err.status == 400
    assert err.message.startswith("SourceArn ")
    assert "arn:aws:<service>:<region>:<account-id>:<resource>" in err.message


def test_default_field_name_is_arn() -> None:
    with pytest.raises(AwsError) as info:
        Arn.parse("nope")
    assert info.value.message.startswith("Arn 'nope'")


def test_none_is_malformed_not_a_crash() -> None:
    with pytest.raises(AwsError) as info:
        Arn.parse(None, field="TargetArn")  # type: ignore[arg-type]
    assert info.value.code == "ValidationException"
    assert "TargetArn" in info.value.message


def test_arn_is_a_frozen_value() -> None:
    a = Arn.parse(f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:db1")
    b = Arn("aws", "rds", REGION, ACCOUNT, "cluster:db1")
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.service = "glue"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (
            format_arn("s3tables", REGION, ACCOUNT, "bucket/b"),
            f"arn:aws:s3tables:{REGION}:{ACCOUNT}:bucket/b",
        ),
        (
            dynamodb_table_arn(REGION, ACCOUNT, "orders"),
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders",
        ),
        (rds_cluster_arn(REGION, ACCOUNT, "db1"), f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:db1"),
        (
            glue_database_arn(REGION, ACCOUNT, "lakehouse"),
            f"arn:aws:glue:{REGION}:{ACCOUNT}:database/lakehouse",
        ),
        (glue_catalog_arn(REGION, ACCOUNT), f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog"),
        (
            glue_connection_arn(REGION, ACCOUNT, "sfdc"),
            f"arn:aws:glue:{REGION}:{ACCOUNT}:connection/sfdc",
        ),
        (
            glue_integration_arn(REGION, ACCOUNT, "abc-123"),
            f"arn:aws:glue:{REGION}:{ACCOUNT}:integration:abc-123",
        ),
        (
            rds_integration_arn(REGION, ACCOUNT, "abc-123"),
            f"arn:aws:rds:{REGION}:{ACCOUNT}:integration:abc-123",
        ),
    ],
)
def test_format_helpers(made: str, expected: str) -> None:
    assert made == expected
    assert str(Arn.parse(made)) == made


@pytest.mark.parametrize(
    ("made", "service", "rtype", "rid"),
    [
        (dynamodb_table_arn("eu-west-2", "210987654321", "t"), "dynamodb", "table", "t"),
        (rds_cluster_arn("eu-west-2", "210987654321", "c"), "rds", "cluster", "c"),
        (glue_database_arn("eu-west-2", "210987654321", "d"), "glue", "database", "d"),
        (glue_connection_arn("eu-west-2", "210987654321", "n"), "glue", "connection", "n"),
        (glue_integration_arn("eu-west-2", "210987654321", "i"), "glue", "integration", "i"),
        (rds_integration_arn("eu-west-2", "210987654321", "i"), "rds", "integration", "i"),
        (glue_catalog_arn("eu-west-2", "210987654321"), "glue", "catalog", ""),
    ],
)
def test_format_helpers_parse_back_to_their_parts(
    made: str, service: str, rtype: str, rid: str
) -> None:
    arn = Arn.parse(made)
    assert (arn.partition, arn.service, arn.region, arn.account) == (
        "aws",
        service,
        "eu-west-2",
        "210987654321",
    )
    assert (arn.resource_type, arn.resource_id) == (rtype, rid)
