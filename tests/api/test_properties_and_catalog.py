"""Behaviour suite: table properties, resource properties and the Data Catalog subset."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from conftest import ACCOUNT, REGION, Harness, unique
from conftest import error_code as code


# -- table properties -------------------------------------------------------------------------
def test_table_properties_lifecycle(harness: Harness) -> None:
    db = harness.database()
    config = {
        "UnnestSpec": "TOPLEVEL",
        "TargetTableName": "orders_v2",
        "PartitionSpec": [
            {"FieldName": "created", "FunctionSpec": "day", "ConversionSpec": "epoch_milli"},
            {"FieldName": "region", "FunctionSpec": "identity"},
        ],
    }
    harness.call(
        "glue",
        "create_integration_table_properties",
        ResourceArn=db,
        TableName="orders",
        TargetTableConfig=config,
    )
    got = harness.call(
        "glue", "get_integration_table_properties", ResourceArn=db, TableName="orders"
    )
    assert got["TargetTableConfig"] == config and got["TableName"] == "orders"
    with pytest.raises(ClientError) as exc:
        harness.glue.create_integration_table_properties(
            ResourceArn=db, TableName="orders", TargetTableConfig=config
        )
    assert code(exc) == "ValidationException" and "update_integration" in str(exc.value)
    harness.call(
        "glue",
        "update_integration_table_properties",
        ResourceArn=db,
        TableName="orders",
        TargetTableConfig={"UnnestSpec": "FULL"},
    )
    got = harness.glue.get_integration_table_properties(ResourceArn=db, TableName="orders")
    assert got["TargetTableConfig"] == {"UnnestSpec": "FULL"}
    harness.call("glue", "delete_integration_table_properties", ResourceArn=db, TableName="orders")
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_integration_table_properties(ResourceArn=db, TableName="orders")
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.update_integration_table_properties(
            ResourceArn=db, TableName="orders", TargetTableConfig={"UnnestSpec": "FULL"}
        )


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"UnnestSpec": "DEEP"}, "UnnestSpec"),
        ({"TargetTableName": "Orders-V2"}, "TargetTableName"),
        ({"PartitionSpec": [{"FieldName": f"c{i}"} for i in range(11)]}, "at most 10"),
        ({"PartitionSpec": [{"FieldName": "ts", "FunctionSpec": "week"}]}, "FunctionSpec"),
        ({"PartitionSpec": [{"FieldName": "ts", "FunctionSpec": "hour"}]}, "ConversionSpec"),
        (
            {
                "PartitionSpec": [
                    {"FieldName": "ts", "FunctionSpec": "day", "ConversionSpec": "unix"}
                ]
            },
            "ConversionSpec",
        ),
    ],
)
def test_table_properties_validation(
    harness: Harness, config: dict[str, object], fragment: str
) -> None:
    db = harness.database()
    with pytest.raises(ClientError) as exc:
        harness.glue.create_integration_table_properties(
            ResourceArn=db, TableName="t", TargetTableConfig=config
        )
    assert code(exc) == "ValidationException" and fragment in str(exc.value)


def test_table_properties_need_a_known_resource(harness: Harness) -> None:
    with pytest.raises(ClientError) as exc:
        harness.glue.create_integration_table_properties(
            ResourceArn=f"arn:aws:glue:{REGION}:{ACCOUNT}:database/absent",
            TableName="t",
            TargetTableConfig={"UnnestSpec": "FULL"},
        )
    assert code(exc) == "TargetResourceNotFound"


# -- resource properties ----------------------------------------------------------------------
def test_resource_property_lifecycle(harness: Harness) -> None:
    db = harness.database(ready=False)
    role = f"arn:aws:iam::{ACCOUNT}:role/target"
    out = harness.call(
        "glue",
        "create_integration_resource_property",
        ResourceArn=db,
        TargetProcessingProperties={"RoleArn": role},
    )
    assert out["ResourcePropertyArn"].startswith(f"arn:aws:glue:{REGION}:{ACCOUNT}:")
    with pytest.raises(harness.glue.exceptions.ConflictException):
        harness.glue.create_integration_resource_property(
            ResourceArn=db, TargetProcessingProperties={"RoleArn": role}
        )
    kms = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abcd"
    upd = harness.call(
        "glue",
        "update_integration_resource_property",
        ResourceArn=db,
        TargetProcessingProperties={"RoleArn": role, "KmsArn": kms},
    )
    assert upd["TargetProcessingProperties"] == {"RoleArn": role, "KmsArn": kms}
    listed = harness.call(
        "glue",
        "list_integration_resource_properties",
        Filters=[{"Name": "ResourceArn", "Values": [db]}],
    )
    assert [p["ResourceArn"] for p in listed["IntegrationResourcePropertyList"]] == [db]
    assert (
        harness.call("glue", "get_integration_resource_property", ResourceArn=db)[
            "ResourcePropertyArn"
        ]
        == out["ResourcePropertyArn"]
    )
    harness.call("glue", "delete_integration_resource_property", ResourceArn=db)
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_integration_resource_property(ResourceArn=db)


def test_resource_property_validation(harness: Harness) -> None:
    db = harness.database(ready=False)
    with pytest.raises(ClientError) as exc:
        harness.glue.create_integration_resource_property(
            ResourceArn=db, TargetProcessingProperties={"RoleArn": "my-role"}
        )
    assert code(exc) == "ValidationException" and "RoleArn" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        harness.glue.create_integration_resource_property(
            ResourceArn=db,
            SourceProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/src"},
        )
    assert code(exc) == "ValidationException" and "TargetProcessingProperties" in str(exc.value)
    table = harness.table(ready=False)
    out = harness.glue.create_integration_resource_property(
        ResourceArn=table,
        SourceProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/src"},
    )
    assert out["SourceProcessingProperties"]["RoleArn"].endswith("role/src")


# -- databases, tables, connections, policy ---------------------------------------------------
def test_database_lifecycle(harness: Harness) -> None:
    name = unique("Sales_")  # Glue stores database names in lower case
    harness.call(
        "glue",
        "create_database",
        DatabaseInput={
            "Name": name,
            "Description": "sales",
            "LocationUri": "file:///tmp/sales",
            "Parameters": {"owner": "analytics"},
        },
    )
    db = harness.call("glue", "get_database", Name=name)["Database"]
    assert db["Name"] == name.lower()
    assert db["Description"] == "sales" and db["LocationUri"] == "file:///tmp/sales"
    assert db["Parameters"] == {"owner": "analytics"}
    with pytest.raises(harness.glue.exceptions.AlreadyExistsException):
        harness.glue.create_database(DatabaseInput={"Name": name})
    names = [d["Name"] for d in harness.call("glue", "get_databases")["DatabaseList"]]
    assert name.lower() in names
    harness.call(
        "glue",
        "update_database",
        Name=name,
        DatabaseInput={"Name": name, "Description": "sales v2"},
    )
    assert harness.glue.get_database(Name=name)["Database"]["Description"] == "sales v2"
    harness.call("glue", "delete_database", Name=name)
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_database(Name=name)


def test_tables_of_a_database(harness: Harness) -> None:
    import pyarrow as pa

    from zetl_nb.target.catalog import LocalCatalog

    name = harness.database().rsplit("/", 1)[1]
    catalog = LocalCatalog(harness.home).catalog  # a second handle on the Lab's catalog
    schema = pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))])
    catalog.create_table((name, "orders"), schema=schema)
    table = harness.call("glue", "get_table", DatabaseName=name, Name="orders")["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG"
    cols = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert cols == {"id": "bigint", "tags": "array<string>"}
    listed = harness.call("glue", "get_tables", DatabaseName=name)["TableList"]
    assert [t["Name"] for t in listed] == ["orders"]
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_table(DatabaseName=name, Name="absent")


def test_a_database_with_dead_letters_deletes_and_system_namespaces_stay_hidden(
    harness: Harness,
) -> None:
    import pyarrow as pa

    from zetl_nb.target.catalog import LocalCatalog

    name = harness.database().rsplit("/", 1)[1]
    catalog = LocalCatalog(harness.home).catalog
    schema = pa.schema([("id", pa.int64())])
    # What the engine makes: dead letters nested in the target, status tables Lab-wide.
    catalog.create_namespace_if_not_exists((name, "zetl_system"))
    catalog.create_table((name, "zetl_system", "dead_letters"), schema=schema)
    catalog.create_namespace_if_not_exists(("zetl_system",))
    names = [d["Name"] for d in harness.call("glue", "get_databases")["DatabaseList"]]
    assert name in names and "zetl_system" not in names
    harness.call("glue", "delete_database", Name=name)
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_database(Name=name)
    assert not catalog.namespace_exists((name, "zetl_system"))


def test_connections(harness: Harness) -> None:
    name = unique("pgconn")
    harness.call(
        "glue",
        "create_connection",
        ConnectionInput={
            "Name": name,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {
                "JDBC_CONNECTION_URL": "jdbc:postgresql://127.0.0.1/db",
                "USERNAME": "u",
                "PASSWORD": "secret",
            },
        },
    )
    got = harness.call("glue", "get_connection", Name=name, HidePassword=True)["Connection"]
    assert "PASSWORD" not in got["ConnectionProperties"] and got["ConnectionType"] == "JDBC"
    full = harness.glue.get_connection(Name=name)["Connection"]
    assert full["ConnectionProperties"]["PASSWORD"] == "secret"
    listed = harness.call("glue", "get_connections", Filter={"ConnectionType": "JDBC"})
    assert name in [c["Name"] for c in listed["ConnectionList"]]
    with pytest.raises(harness.glue.exceptions.AlreadyExistsException):
        harness.glue.create_connection(
            ConnectionInput={"Name": name, "ConnectionType": "JDBC", "ConnectionProperties": {}}
        )
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_connection(Name=unique("absent"))


def test_resource_policy_conditions(harness: Harness) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    with pytest.raises(ClientError) as exc:
        harness.glue.put_resource_policy(PolicyInJson="{not json")
    assert code(exc) == "InvalidInputException"
    first = harness.glue.put_resource_policy(PolicyInJson=policy)
    with pytest.raises(ClientError) as exc:
        harness.glue.put_resource_policy(PolicyInJson=policy, PolicyExistsCondition="NOT_EXIST")
    assert code(exc) == "ConditionCheckFailureException"
    with pytest.raises(ClientError) as exc:
        harness.glue.put_resource_policy(PolicyInJson=policy, PolicyHashCondition="stale")
    assert code(exc) == "ConditionCheckFailureException"
    second = harness.glue.put_resource_policy(
        PolicyInJson=policy, PolicyHashCondition=first["PolicyHash"]
    )
    got = harness.call("glue", "get_resource_policy")
    assert got["PolicyHash"] == second["PolicyHash"]


def test_delete_resource_policy(harness: Harness) -> None:
    arn = harness.database()  # its own resource, so the shared catalog policy stays
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    put = harness.glue.put_resource_policy(ResourceArn=arn, PolicyInJson=policy)
    with pytest.raises(ClientError) as exc:
        harness.glue.delete_resource_policy(ResourceArn=arn, PolicyHashCondition="stale")
    assert code(exc) == "ConditionCheckFailureException"
    harness.call(
        "glue", "delete_resource_policy", ResourceArn=arn, PolicyHashCondition=put["PolicyHash"]
    )
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.get_resource_policy(ResourceArn=arn)
    with pytest.raises(harness.glue.exceptions.EntityNotFoundException):
        harness.glue.delete_resource_policy(ResourceArn=arn)
