"""The DynamoDB sample tables: the generator, the files in sample_data/, the loader, replication.

The loader runs against the Lab's embedded DynamoDB (moto over HTTP, real boto3), and the
``products`` table replicates through the public API with the default UnnestSpec (FULL).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from zetl_nb import Lab, ZetlError
from zetl_nb.sample import (
    SAMPLE_TABLES,
    invoice_items,
    load_dynamodb_samples,
    product_items,
    write_sample_files,
)
from zetl_nb.sources.dynamodb import check_prerequisites

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
ACCOUNT, REGION = "123456789012", "us-east-1"
TARGET_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/lakehouse"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("sample") / "home"
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=60) as lab:
        yield lab


@pytest.fixture(scope="module")
def arns(lab: Lab) -> dict[str, str]:
    return load_dynamodb_samples(lab)


def count(lab: Lab, table: str) -> int:
    pages = lab.client("dynamodb").get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(int(page["Count"]) for page in pages)


# -- the generator and the files ------------------------------------------------------------------


def test_files_in_sample_data_are_the_generators_output(tmp_path: Path) -> None:
    for path in write_sample_files(tmp_path):
        committed = SAMPLE_DATA / path.name
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `python -m zetl_nb.sample sample_data`"
        )


def test_products_are_deterministic_with_nested_descriptions() -> None:
    items = product_items()
    assert items == product_items()
    assert len(items) == 200
    assert [i["product_id"]["S"] for i in items] == [f"p{n:04d}" for n in range(1, 201)]
    assert {i["category"]["S"] for i in items} == {
        "Electronics",
        "Home & Kitchen",
        "Books",
        "Sports & Outdoors",
        "Toys",
    }
    for item in items:
        assert set(item) == {"product_id", "name", "category", "price", "description"}
        assert Decimal(item["price"]["N"]) > 0
        description = item["description"]["M"]
        assert description["specs"]["M"]["dimensions_cm"]["M"]["width"]["N"]
        assert description["features"]["L"] and description["tags"]["SS"]
    # Sparse attributes: some items carry a warranty, some do not.
    warranties = sum("warranty" in i["description"]["M"] for i in items)
    assert 0 < warranties < 200


def test_invoices_are_a_single_table_design() -> None:
    items = invoice_items()
    products = {p["product_id"]["S"]: p for p in product_items()}
    headers = [i for i in items if i["sk"]["S"] == "HEADER"]
    lines = [i for i in items if i["sk"]["S"].startswith("LINE#")]
    assert len(headers) == 50 and len(headers) + len(lines) == len(items)
    assert len({(i["pk"]["S"], i["sk"]["S"]) for i in items}) == len(items)
    for header in headers:
        mine = [line for line in lines if line["pk"] == header["pk"]]
        assert 1 <= len(mine) <= 5
        assert int(header["line_count"]["N"]) == len(mine)
        assert [m["sk"]["S"] for m in mine] == [f"LINE#{n:03d}" for n in range(1, len(mine) + 1)]
        assert Decimal(header["total"]["N"]) == sum(Decimal(m["amount"]["N"]) for m in mine)
        for line in mine:
            product = products[line["product_id"]["S"]]
            assert line["unit_price"] == product["price"]
            assert Decimal(line["amount"]["N"]) == Decimal(line["unit_price"]["N"]) * int(
                line["quantity"]["N"]
            )


# -- the loader ---------------------------------------------------------------------------------


def test_loader_creates_tables_ready_for_zero_etl(lab: Lab, arns: dict[str, str]) -> None:
    ddb = lab.client("dynamodb")
    assert set(arns) == {"products", "invoices"}
    expected_keys = {
        "products": [{"AttributeName": "product_id", "KeyType": "HASH"}],
        "invoices": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    }
    for name, arn in arns.items():
        desc = ddb.describe_table(TableName=name)["Table"]
        assert desc["TableArn"] == arn
        assert desc["KeySchema"] == expected_keys[name]
        assert desc["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        assert count(lab, name) == len(SAMPLE_TABLES[name].items())
        # PITR on and the Glue resource policy in place: nothing left to fix on the source.
        assert check_prerequisites(ddb, arn, ACCOUNT, REGION) == []
    assert count(lab, "products") == 200
    assert count(lab, "invoices") == len(invoice_items())


def test_loaded_items_are_the_generators(lab: Lab, arns: dict[str, str]) -> None:
    ddb = lab.client("dynamodb")
    got = ddb.get_item(TableName="products", Key={"product_id": {"S": "p0042"}})["Item"]
    assert got == product_items()[41]
    line = ddb.get_item(
        TableName="invoices", Key={"pk": {"S": "INV#0001"}, "sk": {"S": "LINE#001"}}
    )
    assert line["Item"] == invoice_items()[1]


def test_loader_is_idempotent_and_leaves_existing_tables_alone(
    lab: Lab, arns: dict[str, str]
) -> None:
    ddb = lab.client("dynamodb")
    key = {"pk": {"S": "INV#0002"}, "sk": {"S": "HEADER"}}
    ddb.update_item(
        TableName="invoices",
        Key=key,
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "void"}},
    )
    ddb.delete_item(TableName="invoices", Key={"pk": {"S": "INV#0003"}, "sk": {"S": "HEADER"}})
    before = count(lab, "invoices")
    assert load_dynamodb_samples(lab) == arns
    assert load_dynamodb_samples(lab, tables=["invoices"]) == {"invoices": arns["invoices"]}
    assert count(lab, "invoices") == before == len(invoice_items()) - 1
    assert ddb.get_item(TableName="invoices", Key=key)["Item"]["status"] == {"S": "void"}
    assert sorted(ddb.list_tables()["TableNames"]) == ["invoices", "products"]


def test_loader_names_the_tables_it_knows(lab: Lab) -> None:
    with pytest.raises(ZetlError, match=r"'orders'.*invoices.*products"):
        load_dynamodb_samples(lab, tables=["orders"])


# -- replication --------------------------------------------------------------------------------


def test_products_replicate_with_full_unnest(lab: Lab, arns: dict[str, str]) -> None:
    glue = lab.client("glue")
    glue.create_database(DatabaseInput={"Name": "lakehouse"})
    arn = glue.create_integration(
        IntegrationName="sample-products", SourceArn=arns["products"], TargetArn=TARGET_ARN
    )["IntegrationArn"]
    lab.wait_for_status(arn, ["ACTIVE", "NEEDS_ATTENTION"], timeout=20)
    # The loader met every source prerequisite: what is left to fix is the new target's.
    assert {f["Service"] for f in lab.fix_prerequisites(arn)} <= {"glue"}
    lab.fix_prerequisites(arn, apply=True)
    lab.wait_for_status(arn, "ACTIVE", timeout=20)
    lab.refresh_now(arn)
    lab.wait(arn, timeout=120)

    items = product_items()
    assert lab.sql("SELECT count(*) FROM lakehouse.products").fetchall() == [(200,)]
    got: list[tuple[Any, ...]] = lab.sql(
        'SELECT product_id, price, "description.specs.dimensions_cm.width", '
        '"description.warranty.years", "description.tags" FROM lakehouse.products ORDER BY 1'
    ).fetchall()

    def expected(item: dict[str, Any]) -> tuple[Any, ...]:
        description = item["description"]["M"]
        warranty = description.get("warranty", {}).get("M", {}).get("years")
        return (
            item["product_id"]["S"],
            float(item["price"]["N"]),
            float(description["specs"]["M"]["dimensions_cm"]["M"]["width"]["N"]),
            float(warranty["N"]) if warranty else None,
            description["tags"]["SS"],
        )

    assert got == [expected(i) for i in items]
    by_category = lab.sql(
        'SELECT category, count(*), count("description.specs.pages") FROM lakehouse.products '
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert ("Books", 40, 40) in by_category and ("Toys", 40, 0) in by_category
