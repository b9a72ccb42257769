"""``S3Exporter``'s download side: the export's S3 layout brought to disk and read back.

The exports themselves need real AWS (moto's ``ExportTableToPointInTime`` is not faithful), so a
scripted stand-in answers DynamoDB's two export calls: it writes the export in AWS's format
(``dynamodb_export_fixtures``) and uploads it to a bucket on moto's S3 (real boto3 over HTTP),
as DynamoDB does. What runs against AWS unchanged: the request, polling, download and cleanup.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from dynamodb_export_fixtures import Change, micros, write_full_export, write_incremental_export

from zetl_nb.services.dynamodb import DynamoDBEndpoint
from zetl_nb.sources.base import SourceError
from zetl_nb.sources.dynamodb_export import ExportError, read_full_export, read_incremental_export
from zetl_nb.sources.dynamodb_exporter import S3Exporter

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/products"
BUCKET = "zetl-exports"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class ExportingDynamoDB:
    """DynamoDB's ExportTableToPointInTime and DescribeExport, scripted: an export is written on
    request, uploaded below its S3Prefix, and reported IN_PROGRESS once, then ``status``."""

    def __init__(self, s3: Any, staging: Path, status: str = "COMPLETED") -> None:
        self.s3, self.staging, self.status = s3, staging, status
        self.items = [{"id": {"S": f"p{i}"}, "price": {"N": str(i)}} for i in range(5)]
        self.changes = [Change({"id": {"S": "p1"}}, micros(T0) + 5, None, self.items[1])]
        self.requests: list[dict[str, Any]] = []
        self.exports: dict[str, str] = {}  # ExportArn -> manifest-summary.json key
        self.described: dict[str, int] = {}

    def export_table_to_point_in_time(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if request["S3Bucket"] != BUCKET:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "no such bucket"}},
                "ExportTableToPointInTime",
            )
        where = dict(prefix=request["S3Prefix"], bucket=BUCKET)
        if request["ExportType"] == "FULL_EXPORT":
            folder = write_full_export(self.staging, self.items, export_time=T0, **where)
        else:
            spec = request["IncrementalExportSpecification"]
            folder = write_incremental_export(
                self.staging,
                self.changes,
                ["id"],
                spec["ExportFromTime"],
                spec["ExportToTime"],
                **where,
            )
        for path in self.staging.rglob("*"):
            if path.is_file():
                key = path.relative_to(self.staging).as_posix()
                self.s3.upload_file(str(path), BUCKET, key)
        arn = f"{ARN}/export/{folder.name}"
        self.exports[arn] = (folder / "manifest-summary.json").relative_to(self.staging).as_posix()
        return {"ExportDescription": {"ExportArn": arn, "ExportStatus": "IN_PROGRESS"}}

    def describe_export(self, ExportArn: str) -> dict[str, Any]:
        self.described[ExportArn] = self.described.get(ExportArn, 0) + 1
        status = "IN_PROGRESS" if self.described[ExportArn] == 1 else self.status
        desc = {
            "ExportArn": ExportArn,
            "ExportStatus": status,
            "S3Bucket": BUCKET,
            "ExportManifest": self.exports[ExportArn],
        }
        if status == "FAILED":
            desc.update(FailureCode="S3NoSuchBucket", FailureMessage="the bucket went away")
        return {"ExportDescription": desc}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with DynamoDBEndpoint(tmp_path_factory.mktemp("moto") / "dynamodb") as endpoint:
        client = endpoint.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def exporter(s3: Any, tmp_path: Path, status: str = "COMPLETED") -> S3Exporter:
    ddb = ExportingDynamoDB(s3, tmp_path / "staging", status)
    return S3Exporter(ddb, s3, BUCKET, "zetl-nb/", tmp_path / "downloads", poll=0)


def test_full_export_is_downloaded_in_its_s3_layout_and_discarded(s3: Any, tmp_path: Path) -> None:
    ex = exporter(s3, tmp_path)
    folder = ex.full(ARN)
    [request] = ex.dynamodb.requests
    assert request["S3Prefix"] == "zetl-nb/products" and request["ExportType"] == "FULL_EXPORT"
    assert folder.parent.name == "AWSDynamoDB" and folder.parent.parent.name == "products"
    assert folder.is_relative_to(tmp_path / "downloads")
    rows = [r for t in read_full_export(folder, ["id"]) for r in t.to_pylist()]
    assert rows == [{"id": f"p{i}", "price": float(i)} for i in range(5)]
    ex.discard(folder)
    assert list((tmp_path / "downloads").iterdir()) == []
    ex.discard(tmp_path / "staging")  # not a download: left alone
    assert (tmp_path / "staging").is_dir()


def test_incremental_export_is_requested_for_its_window(s3: Any, tmp_path: Path) -> None:
    ex = exporter(s3, tmp_path)
    folder = ex.incremental(ARN, T0, T0 + timedelta(hours=1))
    spec = ex.dynamodb.requests[0]["IncrementalExportSpecification"]
    assert (spec["ExportFromTime"], spec["ExportToTime"]) == (T0, T0 + timedelta(hours=1))
    assert spec["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    [batch] = read_incremental_export(folder, ["id"])
    assert batch.ops.to_pylist() == ["d"] and batch.rows.column("id").to_pylist() == ["p1"]


def test_a_failed_export_says_why(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="FAILED: S3NoSuchBucket the bucket went away"):
        exporter(s3, tmp_path, status="FAILED").full(ARN)


def test_an_aws_error_becomes_a_source_error_with_its_code(s3: Any, tmp_path: Path) -> None:
    ddb = ExportingDynamoDB(s3, tmp_path / "staging")
    wrong = S3Exporter(ddb, s3, "other-bucket", "", tmp_path / "downloads", poll=0)
    with pytest.raises(SourceError) as failed:
        wrong.full(ARN)
    assert failed.value.code == "ValidationException"
    assert "s3://other-bucket/products" in failed.value.message
