"""The create-integration wizard's state, driven as a user would, against a real Lab.

Inline messages must be the API's own: each is compared with the error the real
``glue``/``rds`` call raises for the same request. A run of the wizard creates an integration
that reaches ACTIVE, through "Fix it for me" (preview first, then apply).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ui_support import (
    PRODUCTS_ROWS,
    api_message,
    delete_all,
    integrate,
    new_database,
    open_lab,
    products_arn,
    uid,
)

from zetl_nb import Lab
from zetl_nb.ui import CreateIntegrationState


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory.mktemp("wizard") / "home") as lab:
        yield lab


@pytest.fixture
def wizard(lab: Lab) -> Iterator[CreateIntegrationState]:
    state = CreateIntegrationState(lab)
    yield state
    state.close()
    delete_all(lab)


def to_step(w: CreateIntegrationState, key: str) -> None:
    while w.current.key != key:
        assert w.next(), f"stuck on {w.current.key}: {w.issues}"


def dynamodb_wizard(w: CreateIntegrationState, target_arn: str) -> None:
    w.set("source_type", "dynamodb")
    assert w.next()
    w.set("source_arn", products_arn(w.lab))
    w.set("target_arn", target_arn)


def test_a_wizard_run_creates_an_integration_that_reaches_active(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    glue = lab.client("glue")
    wizard.set("source_type", "dynamodb")
    assert wizard.next() and wizard.current.key == "source_target"
    db = uid("lake_")
    wizard.set("new_database", db)  # no LocationUri: fix-it will set one
    target = wizard.create_target_database()
    assert target is not None and wizard.target_arn == target
    wizard.set("source_arn", products_arn(lab))
    assert wizard.table_name == "products"
    to_step(wizard, "output")
    wizard.set("unnest_spec", "TOPLEVEL")
    wizard.add_partition("category")
    to_step(wizard, "details")
    assert wizard.name == f"products-to-{db}".replace("_", "-")  # suggested, valid
    wizard.set("description", "sample products")
    to_step(wizard, "review")
    assert [c.method for c in wizard.calls()] == [
        "create_integration_table_properties",
        "create_integration",
    ]
    arn = wizard.create()
    assert arn is not None, wizard.issues
    assert wizard.wait(["NEEDS_ATTENTION", "ACTIVE"]) == "NEEDS_ATTENTION"
    assert {e["ErrorCode"] for e in wizard.errors} >= {"TargetLocationUriMissing"}

    plan = wizard.preview_fixes()  # shows, changes nothing
    assert {c["Operation"] for c in plan} >= {"UpdateDatabase", "PutResourcePolicy"}
    assert "LocationUri" not in glue.get_database(Name=db)["Database"]
    assert wizard.refresh_status() == "NEEDS_ATTENTION"

    applied = wizard.apply_fixes()
    assert applied == plan
    assert wizard.wait("ACTIVE") == "ACTIVE"
    assert wizard.errors == []
    lab.wait(arn, timeout=60)
    assert lab.sql(f"SELECT count(*) FROM {db}.products").fetchall() == [(PRODUCTS_ROWS,)]
    props = glue.get_integration_table_properties(ResourceArn=target, TableName="products")
    assert props["TargetTableConfig"] == {
        "UnnestSpec": "TOPLEVEL",
        "PartitionSpec": [{"FieldName": "category", "FunctionSpec": "identity"}],
    }
    integ = glue.describe_integrations(IntegrationIdentifier=arn)["Integrations"][0]
    assert integ["Description"] == "sample products"


def test_the_status_follows_the_bus(wizard: CreateIntegrationState, lab: Lab) -> None:
    dynamodb_wizard(wizard, new_database(lab))
    seen: list[str | None] = []
    wizard.observe(lambda: seen.append(wizard.status))
    to_step(wizard, "review")
    arn = wizard.create()
    assert arn is not None
    lab.wait_for_status(arn, "ACTIVE")
    assert "ACTIVE" in seen  # from the bus, without refresh_status()


CREATE_CASES = [
    ("name", "bad--name", {"IntegrationName": "bad--name"}),
    ("name", "", {"IntegrationName": ""}),
    ("refresh_interval", "5", {"IntegrationConfig": {"RefreshInterval": "5"}}),
    ("kms_key_id", "not-a-key", {"KmsKeyId": "not-a-key"}),
    ("description", "x" * 1001, {"Description": "x" * 1001}),
]


@pytest.mark.parametrize(("field", "value", "members"), CREATE_CASES)
def test_inline_messages_are_the_apis_own(
    wizard: CreateIntegrationState, lab: Lab, field: str, value: str, members: dict[str, Any]
) -> None:
    target = new_database(lab)
    dynamodb_wizard(wizard, target)
    wizard.set("name", "good-name")
    wizard.set(field, value)
    request = {"IntegrationName": "good-name", "SourceArn": products_arn(lab), "TargetArn": target}
    expected = api_message(lab.client("glue").create_integration, **{**request, **members})
    assert wizard.issues[field].message == expected
    assert wizard.issues.keys() == {field}
    assert lab.client("glue").describe_integrations()["Integrations"] == []  # nothing created


TABLE_CASES = [
    ("unnest_spec", "SIDEWAYS", {"UnnestSpec": "SIDEWAYS"}),
    ("target_table_name", "Bad Name", {"TargetTableName": "Bad Name"}),
]


@pytest.mark.parametrize(("field", "value", "config"), TABLE_CASES)
def test_output_settings_messages_are_the_apis_own(
    wizard: CreateIntegrationState, lab: Lab, field: str, value: str, config: dict[str, Any]
) -> None:
    target = new_database(lab)
    dynamodb_wizard(wizard, target)
    to_step(wizard, "output")
    wizard.set(field, value)
    expected = api_message(
        lab.client("glue").create_integration_table_properties,
        ResourceArn=target,
        TableName="products",
        TargetTableConfig=config,
    )
    assert wizard.issues[field].message == expected
    assert not wizard.next()  # the step holds until it is fixed


def test_partition_keys_are_checked_as_the_api_checks_them(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    target = new_database(lab)
    dynamodb_wizard(wizard, target)
    to_step(wizard, "output")
    wizard.add_partition("created_at", "day")
    expected = api_message(
        lab.client("glue").create_integration_table_properties,
        ResourceArn=target,
        TableName="products",
        TargetTableConfig={"PartitionSpec": [{"FieldName": "created_at", "FunctionSpec": "day"}]},
    )
    assert wizard.issues["partitions"].message == expected
    assert "ConversionSpec" in expected
    wizard.set_partition(0, conversion="iso")
    assert "partitions" not in wizard.issues
    wizard.remove_partition(0)
    assert wizard.partitions == [] and wizard.issues == {}
    with pytest.raises(Exception, match="EntityNotFound"):  # validation wrote nothing
        lab.client("glue").get_integration_table_properties(
            ResourceArn=target, TableName="products"
        )


def test_each_field_is_judged_on_its_own(wizard: CreateIntegrationState, lab: Lab) -> None:
    dynamodb_wizard(wizard, new_database(lab))
    wizard.set("name", "two--hyphens")
    wizard.set("refresh_interval", "9999")
    wizard.set("kms_key_id", "nope")
    assert wizard.issues.keys() == {"name", "refresh_interval", "kms_key_id"}
    wizard.set("name", "fine-name")
    assert wizard.issues.keys() == {"refresh_interval", "kms_key_id"}


def test_a_duplicate_name_gets_the_apis_conflict(wizard: CreateIntegrationState, lab: Lab) -> None:
    target = new_database(lab)
    name = uid("taken-")
    integrate(lab, target, name=name)
    dynamodb_wizard(wizard, target)
    wizard.set("name", name)
    issue = wizard.issues["name"]
    assert issue.code == "ConflictException"
    assert issue.message == api_message(
        lab.client("glue").create_integration,
        IntegrationName=name,
        SourceArn=products_arn(lab),
        TargetArn=target,
    )


def test_steps_hold_until_their_fields_are_valid(wizard: CreateIntegrationState) -> None:
    assert not wizard.next()
    assert wizard.issues["source_type"].message.startswith("Choose")
    wizard.set("source_type", "dynamodb")
    assert wizard.next()
    assert not wizard.next()  # no source, no target: botocore's own message
    assert 'Missing required parameter in input: "TargetArn"' in wizard.issues["target_arn"].message
    wizard.back()
    assert wizard.current.key == "source_type"
    assert not wizard.go("review")


def test_a_missing_target_database_is_the_apis_not_found(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    ghost = new_database(lab).replace("database/", "database/gone_")
    dynamodb_wizard(wizard, ghost)
    expected = api_message(
        lab.client("glue").create_integration,
        IntegrationName="x",
        SourceArn=products_arn(lab),
        TargetArn=ghost,
    )
    assert wizard.issues["target_arn"].message == expected


def test_creating_a_target_database_reports_the_apis_error(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    wizard.set("source_type", "dynamodb")
    wizard.next()
    wizard.set("new_database", "no spaces!")
    assert wizard.create_target_database() is None
    expected = api_message(lab.client("glue").create_database, DatabaseInput={"Name": "no spaces!"})
    assert wizard.issues["new_database"].message == expected
    name = uid("Made_")
    wizard.set("new_database", name)
    arn = wizard.create_target_database()
    assert arn is not None and arn.endswith(name.lower())
    assert any(o.value == arn for o in wizard.target_options())
    assert "new_database" not in wizard.issues


def test_existing_table_properties_fill_the_output_step(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    target = new_database(lab)
    config = {
        "UnnestSpec": "NOUNNEST",
        "PartitionSpec": [
            {"FieldName": "ts", "FunctionSpec": "hour", "ConversionSpec": "epoch_sec"}
        ],
    }
    lab.client("glue").create_integration_table_properties(
        ResourceArn=target, TableName="products", TargetTableConfig=config
    )
    dynamodb_wizard(wizard, target)
    assert wizard.unnest_spec == "NOUNNEST"
    assert [(p.field_name, p.function, p.conversion) for p in wizard.partitions] == [
        ("ts", "hour", "epoch_sec")
    ]
    call = wizard.table_properties_call()
    assert call is not None and call.method == "update_integration_table_properties"


def test_source_types_and_pickers(wizard: CreateIntegrationState, lab: Lab) -> None:
    keys = [t.key for t in wizard.source_types()]
    assert keys == ["dynamodb", "mysql", "postgres"]  # no SaaS source exists: none offered
    wizard.set("source_type", "postgres")
    assert [o.label for o in wizard.source_options()] == [lab.config.embedded_cluster]
    wizard.set("source_type", "mysql")
    assert wizard.source_options() == []
    wizard.set("source_type", "dynamodb")
    assert "products" in [o.label for o in wizard.source_options()]


def test_a_relational_source_uses_the_rds_api_and_its_messages(
    wizard: CreateIntegrationState, lab: Lab
) -> None:
    target = new_database(lab)
    cluster = lab.databases()[lab.config.embedded_cluster]
    wizard.set("source_type", "postgres")
    wizard.next()
    wizard.set("source_arn", cluster)
    wizard.set("target_arn", target)
    to_step(wizard, "output")
    wizard.set("data_filter", "include: shop.orders")  # PostgreSQL needs db.schema.table
    expected = api_message(
        lab.client("rds").create_integration,
        IntegrationName="orders",
        SourceArn=cluster,
        TargetArn=target,
        DataFilter="include: shop.orders",
    )
    assert wizard.issues["data_filter"].message == expected
    wizard.set("data_filter", "include: postgres.public.orders")
    wizard.set("target_table_name", "orders_copy")  # for which source table? the API asks
    expected = api_message(
        lab.client("glue").create_integration_table_properties,
        ResourceArn=target,
        TableName="",
        TargetTableConfig={},
    )
    assert wizard.issues["table_name"].message == expected
    wizard.set("table_name", "postgres.public.orders")
    assert wizard.issues == {}
    to_step(wizard, "details")
    wizard.set("name", "orders")
    table, create = wizard.calls()
    assert table.params == {
        "ResourceArn": target,
        "TableName": "postgres.public.orders",
        "TargetTableConfig": {"TargetTableName": "orders_copy"},
    }
    assert (create.service, create.method) == ("rds", "create_integration")
    assert create.params == {
        "IntegrationName": "orders",
        "SourceArn": cluster,
        "TargetArn": target,
        "DataFilter": "include: postgres.public.orders",
    }
    assert "RefreshInterval" not in dict(wizard.review())
