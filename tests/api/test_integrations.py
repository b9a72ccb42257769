"""The behaviour suite for integrations, run in-process and over HTTP (see ``harness``)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from conftest import ACCOUNT, REGION, Harness, cluster_arn, unique
from conftest import error_code as code


def test_create_unprepared_needs_attention_then_recovers_by_itself(harness: Harness) -> None:
    table = harness.table(ready=False)
    db = harness.database(ready=False)
    created = harness.call(
        "glue", "create_integration", IntegrationName=unique("i-"), SourceArn=table, TargetArn=db
    )
    assert created["Status"] == "CREATING"
    assert created["IntegrationArn"].startswith(f"arn:aws:glue:{REGION}:{ACCOUNT}:integration:")
    assert created["IntegrationConfig"] == {"RefreshInterval": "15", "ContinuousSync": True}
    integ = harness.wait(created["IntegrationArn"], "NEEDS_ATTENTION")
    assert integ is not None
    codes = {e["ErrorCode"] for e in integ["Errors"]}
    assert codes == {
        "SourcePointInTimeRecoveryDisabled",
        "SourceResourcePolicyMissing",
        "TargetLocationUriMissing",
        "TargetResourcePropertyMissing",
        "TargetCatalogPolicyMissing",
    }
    assert all("fix" in e["ErrorMessage"] for e in integ["Errors"])
    # Fix by hand, one prerequisite at a time: the errors shrink, then it recovers alone.
    harness.ready_source(table)
    name = db.rsplit("/", 1)[1]
    harness.glue.update_database(Name=name, DatabaseInput={"Name": name, "LocationUri": "/tmp/x"})
    integ = harness.wait(created["IntegrationArn"], "NEEDS_ATTENTION")
    harness.ready_target(db)
    integ = harness.wait(created["IntegrationArn"], "ACTIVE")
    assert integ is not None and integ["Errors"] == []


def test_create_ready_goes_active_and_describes(harness: Harness) -> None:
    created = harness.integration(
        Description="orders",
        Tags=[{"key": "team", "value": "data"}],
        KmsKeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        AdditionalEncryptionContext={"purpose": "lab"},
    )
    arn = created["IntegrationArn"]
    harness.wait(arn, "ACTIVE")
    described = harness.call("glue", "describe_integrations", IntegrationIdentifier=arn)
    (integ,) = described["Integrations"]
    assert integ["Description"] == "orders"
    assert integ["Tags"] == [{"key": "team", "value": "data"}]
    assert integ["AdditionalEncryptionContext"] == {"purpose": "lab"}
    assert integ["KmsKeyId"].endswith("1234567890ab")
    assert integ["CreateTime"].tzinfo is not None


def test_describe_filters_and_pagination(harness: Harness) -> None:
    table = harness.table()
    db = harness.database()
    arns = [harness.integration(SourceArn=table, TargetArn=db)["IntegrationArn"] for _ in range(3)]
    for arn in arns:
        harness.wait(arn, "ACTIVE")
    by_source = harness.call(
        "glue", "describe_integrations", Filters=[{"Name": "SourceArn", "Values": [table]}]
    )
    assert {i["IntegrationArn"] for i in by_source["Integrations"]} == set(arns)
    name = by_source["Integrations"][0]["IntegrationName"]
    by_name = harness.glue.describe_integrations(
        Filters=[{"Name": "IntegrationName", "Values": [name]}]
    )["Integrations"]
    assert [i["IntegrationName"] for i in by_name] == [name]
    active = harness.glue.describe_integrations(Filters=[{"Name": "Status", "Values": ["ACTIVE"]}])[
        "Integrations"
    ]
    assert set(arns) <= {i["IntegrationArn"] for i in active}
    first = harness.call("glue", "describe_integrations", MaxRecords=2)
    assert len(first["Integrations"]) == 2 and "Marker" in first
    rest = harness.glue.describe_integrations(MaxRecords=2, Marker=first["Marker"])
    seen = [i["IntegrationArn"] for i in first["Integrations"] + rest["Integrations"]]
    assert set(arns) <= set(seen) and len(seen) == len(set(seen))
    with pytest.raises(ClientError) as exc:
        harness.glue.describe_integrations(Filters=[{"Name": "Color", "Values": ["red"]}])
    assert code(exc) == "ValidationException" and "Status" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        harness.glue.describe_integrations(Marker="not-a-marker")
    assert code(exc) == "ValidationException"


def test_modify_then_active(harness: Harness) -> None:
    arn = harness.integration()["IntegrationArn"]
    harness.wait(arn, "ACTIVE")
    new_name = unique("renamed-")
    out = harness.call(
        "glue",
        "modify_integration",
        IntegrationIdentifier=arn,
        Description="changed",
        IntegrationName=new_name,
        IntegrationConfig={"RefreshInterval": "60"},
    )
    assert out["Status"] == "MODIFYING"
    integ = harness.wait(arn, "ACTIVE")
    assert integ is not None
    assert integ["Description"] == "changed" and integ["IntegrationName"] == new_name
    assert integ["IntegrationConfig"]["RefreshInterval"] == "60"


@pytest.mark.parametrize("interval", ["14", "8641", "abc", "0"])
def test_refresh_interval_limits(harness: Harness, interval: str) -> None:
    with pytest.raises(ClientError) as exc:
        harness.integration(IntegrationConfig={"RefreshInterval": interval})
    assert code(exc) == "ValidationException"
    assert "RefreshInterval" in str(exc.value) and "15" in str(exc.value)


def test_refresh_interval_bounds_accepted(harness: Harness) -> None:
    for interval in ("15", "8640"):
        out = harness.integration(IntegrationConfig={"RefreshInterval": interval})
        assert out["IntegrationConfig"]["RefreshInterval"] == interval


def test_continuous_sync_is_immutable(harness: Harness) -> None:
    arn = harness.integration(IntegrationConfig={"ContinuousSync": False})["IntegrationArn"]
    harness.wait(arn, "ACTIVE")
    with pytest.raises(ClientError) as exc:
        harness.glue.modify_integration(
            IntegrationIdentifier=arn, IntegrationConfig={"ContinuousSync": True}
        )
    assert code(exc) == "ValidationException" and "ContinuousSync" in str(exc.value)


def test_delete_keeps_target_and_forgets_integration(harness: Harness) -> None:
    db = harness.database()
    arn = harness.integration(TargetArn=db)["IntegrationArn"]
    harness.wait(arn, "ACTIVE")
    out = harness.call("glue", "delete_integration", IntegrationIdentifier=arn)
    assert out["Status"] == "DELETING"
    harness.wait(arn, "deleted")
    with pytest.raises(ClientError) as exc:
        harness.glue.describe_integrations(IntegrationIdentifier=arn)
    assert code(exc) == "IntegrationNotFoundFault"
    with pytest.raises(ClientError) as exc:
        harness.glue.delete_integration(IntegrationIdentifier=arn)
    assert code(exc) == "IntegrationNotFoundFault"
    assert harness.glue.get_database(Name=db.rsplit("/", 1)[1])["Database"]["Name"]


def test_target_that_disappears_needs_attention(harness: Harness) -> None:
    db = harness.database()
    arn = harness.integration(TargetArn=db)["IntegrationArn"]
    harness.wait(arn, "ACTIVE")
    harness.glue.delete_database(Name=db.rsplit("/", 1)[1])
    integ = harness.wait(arn, "NEEDS_ATTENTION")
    assert integ is not None and integ["Errors"][0]["ErrorCode"] == "TargetNotFound"
    name = db.rsplit("/", 1)[1]
    harness.glue.create_database(DatabaseInput={"Name": name, "LocationUri": "/tmp/back"})
    harness.wait(arn, "ACTIVE")


@pytest.mark.parametrize(
    ("change", "expected", "fragment"),
    [
        (
            {"TargetArn": f"arn:aws:glue:{REGION}:{ACCOUNT}:database/absent"},
            "EntityNotFoundException",
            "create_database",
        ),
        (
            {"SourceArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/absent"},
            "EntityNotFoundException",
            "create_table",
        ),
        ({"SourceArn": "not-an-arn"}, "ValidationException", "SourceArn"),
        ({"SourceArn": "arn:aws:s3:::bucket"}, "ValidationException", "SourceArn"),
        (
            {"TargetArn": f"arn:aws:glue:{REGION}:{ACCOUNT}:table/db/t"},
            "ValidationException",
            "TargetArn",
        ),
        (
            {"TargetArn": f"arn:aws:glue:eu-west-1:{ACCOUNT}:database/x"},
            "ValidationException",
            "region",
        ),
        ({"IntegrationName": "bad name!"}, "ValidationException", "IntegrationName"),
        ({"IntegrationName": "a" * 129}, "ValidationException", "IntegrationName"),
        ({"Description": "d" * 1001}, "ValidationException", "Description"),
        ({"KmsKeyId": "not-a-key"}, "ValidationException", "KmsKeyId"),
        (
            {"KmsKeyId": "arn:aws:kms:eu-west-1:999999999999:key/abc"},
            "KMSKeyNotAccessibleFault",
            "not accessible",
        ),
        ({"AdditionalEncryptionContext": {"a": "b"}}, "ValidationException", "KmsKeyId"),
        ({"DataFilter": "include: *.*"}, "ValidationException", "DynamoDB"),
        ({"Tags": [{"key": "k" * 129, "value": "v"}]}, "ValidationException", "key"),
    ],
)
def test_create_errors(
    harness: Harness, change: dict[str, object], expected: str, fragment: str
) -> None:
    with pytest.raises(ClientError) as exc:
        harness.integration(**change)
    assert code(exc) == expected
    assert fragment in str(exc.value)
    exc_class = getattr(harness.glue.exceptions, expected)
    assert isinstance(exc.value, exc_class)


def test_missing_required_member_fails_client_side(harness: Harness) -> None:
    with pytest.raises(ParamValidationError, match="TargetArn"):
        harness.glue.create_integration(IntegrationName="x", SourceArn="arn:aws:x")


def test_duplicate_name_conflicts(harness: Harness) -> None:
    first = harness.integration()
    with pytest.raises(harness.glue.exceptions.ConflictException) as exc:
        harness.integration(IntegrationName=first["IntegrationName"])
    assert first["IntegrationName"] in str(exc.value)


def test_quota_per_source(harness: Harness) -> None:
    table, db = harness.table(), harness.database()
    for _ in range(15):
        harness.integration(SourceArn=table, TargetArn=db)
    with pytest.raises(ClientError) as exc:
        harness.integration(SourceArn=table, TargetArn=db)
    assert code(exc) == "ResourceNumberLimitExceededException" and "15" in str(exc.value)


def test_quota_per_account(harness: Harness) -> None:
    db = harness.database()
    tables = [harness.table(), harness.table()]
    for i in range(25):
        harness.integration(SourceArn=tables[i % 2], TargetArn=db)
    with pytest.raises(ClientError) as exc:
        harness.integration(TargetArn=db)
    assert code(exc) == "ResourceNumberLimitExceededException" and "25" in str(exc.value)


def test_saas_connection_source_defaults_to_hourly(harness: Harness) -> None:
    name = unique("sf")
    out = harness.call(
        "glue",
        "create_connection",
        ConnectionInput={
            "Name": name,
            "ConnectionType": "SALESFORCE",
            "ConnectionProperties": {"CONNECTION_URL": "https://example.my.salesforce.com"},
        },
    )
    assert out["CreateConnectionStatus"] == "READY"
    source = f"arn:aws:glue:{REGION}:{ACCOUNT}:connection/{name}"
    created = harness.integration(SourceArn=source, DataFilter="include: Account")
    assert created["IntegrationConfig"]["RefreshInterval"] == "60"
    harness.wait(created["IntegrationArn"], "ACTIVE")
    with pytest.raises(ClientError) as exc:
        harness.integration(SourceArn=source, DataFilter="include Account")
    assert code(exc) == "ValidationException" and "include:" in str(exc.value)


def test_s3_tables_catalog_target(harness: Harness) -> None:
    target = f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog/s3tablescatalog/{unique('bkt-')}"
    harness.ready_target(target)
    created = harness.integration(TargetArn=target)
    harness.wait(created["IntegrationArn"], "ACTIVE")


def test_inbound_integrations_cover_both_faces(harness: Harness) -> None:
    db = harness.database()
    glue_arn = harness.integration(TargetArn=db)["IntegrationArn"]
    rds_arn = harness.integration("rds", TargetArn=db)["IntegrationArn"]
    out = harness.call("glue", "describe_inbound_integrations", TargetArn=db)
    assert {i["IntegrationArn"] for i in out["InboundIntegrations"]} == {glue_arn, rds_arn}
    with pytest.raises(ClientError) as exc:
        harness.glue.describe_inbound_integrations(
            TargetArn=f"arn:aws:glue:{REGION}:{ACCOUNT}:database/absent"
        )
    assert code(exc) == "TargetResourceNotFound"


# -- RDS face ---------------------------------------------------------------------------------
def test_rds_lifecycle_lower_case(harness: Harness) -> None:
    created = harness.call(
        "rds",
        "create_integration",
        IntegrationName=unique("pg-"),
        SourceArn=cluster_arn(),
        TargetArn=harness.database(),
        DataFilter="include: postgres.public.*",
        Tags=[{"Key": "env", "Value": "lab"}],
    )
    arn = created["IntegrationArn"]
    assert created["Status"] == "creating"
    assert arn.startswith(f"arn:aws:rds:{REGION}:{ACCOUNT}:integration:")
    assert created["Tags"] == [{"Key": "env", "Value": "lab"}]
    harness.wait(arn, "active")
    out = harness.call(
        "rds",
        "describe_integrations",
        Filters=[{"Name": "integration-identifier", "Values": [arn]}],
    )
    assert [i["IntegrationArn"] for i in out["Integrations"]] == [arn]
    assert (
        harness.call("rds", "modify_integration", IntegrationIdentifier=arn, Description="x")[
            "Status"
        ]
        == "modifying"
    )
    harness.wait(arn, "active")
    assert (
        harness.call("rds", "delete_integration", IntegrationIdentifier=arn)["Status"] == "deleting"
    )
    harness.wait(arn, "deleted")
    with pytest.raises(harness.rds.exceptions.IntegrationNotFoundFault):
        harness.rds.delete_integration(IntegrationIdentifier=arn)


def test_rds_faults(harness: Harness) -> None:
    with pytest.raises(harness.rds.exceptions.DBClusterNotFoundFault) as exc:
        harness.integration("rds", SourceArn=cluster_arn("nope"))
    assert "add_database" in str(exc.value)
    first = harness.integration("rds")
    with pytest.raises(harness.rds.exceptions.IntegrationAlreadyExistsFault):
        harness.integration("rds", IntegrationName=first["IntegrationName"])
    with pytest.raises(ClientError) as exc2:
        harness.integration("rds", SourceArn=harness.table())
    assert "SourceArn" in str(exc2.value) and "cluster" in str(exc2.value)
    with pytest.raises(ClientError) as exc2:
        harness.integration("rds", DataFilter="include: a.b.c.d")
    assert "DataFilter" in str(exc2.value)


def test_rds_and_glue_lists_are_separate(harness: Harness) -> None:
    db = harness.database()
    g = harness.integration(TargetArn=db)["IntegrationArn"]
    r = harness.integration("rds", TargetArn=db)["IntegrationArn"]
    glue_arns = {i["IntegrationArn"] for i in harness.glue.describe_integrations()["Integrations"]}
    rds_arns = {i["IntegrationArn"] for i in harness.rds.describe_integrations()["Integrations"]}
    assert g in glue_arns and r not in glue_arns
    assert r in rds_arns and g not in rds_arns


def test_policy_json_round_trip(harness: Harness) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    out = harness.call("glue", "put_resource_policy", PolicyInJson=policy)
    got = harness.call("glue", "get_resource_policy")
    assert got["PolicyInJson"] == policy and got["PolicyHash"] == out["PolicyHash"]
