"""Requesting DynamoDB exports from real AWS and downloading them: the export path's I/O.

REAL AWS ONLY. Locally moto's ``ExportTableToPointInTime`` is not faithful (it exports the current
state, writes no manifests and ignores incremental windows; see FIELD-NOTES), so no real export is
made in the offline test suite. What is tested offline: :func:`export_request`'s parameters
against botocore's model, and the polling, download and cleanup against a scripted stand-in of
the two DynamoDB export calls with moto's S3 (``tests/sources/test_dynamodb_exporter.py``). The
source's export mode is tested through an :class:`Exporter` that writes AWS's export format from
the local table (``tests/sources/dynamodb_export_fixtures.py``).

An :class:`Exporter` is what :class:`~zetl_nb.sources.dynamodb_source.DynamoDBSource` needs to
load and refresh a table the way Glue zero-ETL does: a full export for the initial load, then
incremental exports (``ExportFromTime`` inclusive, ``ExportToTime`` exclusive, 15 minutes to 24
hours each), each as a local folder in AWS's S3 layout for :mod:`.dynamodb_export` to read.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .base import SourceError
from .dynamodb_export import ExportError

__all__ = ["Exporter", "S3Exporter", "export_and_download", "export_request"]


class Exporter(Protocol):
    """Makes DynamoDB exports and puts each in a local folder (its ``AWSDynamoDB/<ExportId>``)."""

    def full(self, table_arn: str) -> Path:
        """A full export of the table as of now (``ExportType=FULL_EXPORT``)."""
        ...

    def incremental(self, table_arn: str, export_from: datetime, export_to: datetime) -> Path:
        """An incremental export of the changes in ``[export_from, export_to)`` (UTC), with
        ``NEW_AND_OLD_IMAGES``; the window is 15 minutes to 24 hours on AWS."""
        ...

    def discard(self, folder: Path) -> None:
        """The source has read ``folder`` (one this exporter returned): remove the local copy."""
        ...


class S3Exporter:
    """REAL AWS ONLY, NOT TESTED OFFLINE against a real export (moto's is not faithful; only its
    polling, download and cleanup are, with a scripted export API): exports through
    ``ExportTableToPointInTime`` into an S3 bucket, then downloads each below ``download_dir``.

    ``dynamodb`` and ``s3`` are boto3 clients of the table's account and region; the table needs
    PITR and a bucket the caller may write (the integration's prerequisites check the first).
    Exports land under ``s3://<bucket>/<prefix><table name>/AWSDynamoDB/`` and stay there (S3
    lifecycle rules are the bucket owner's choice); local copies are removed by :meth:`discard`.
    Each call blocks until the export is ``COMPLETED`` (minutes on AWS), polling every ``poll``
    seconds.

    >>> exporter = S3Exporter(boto3.client("dynamodb"), boto3.client("s3"), "my-bucket",
    ...                       "zetl-nb/", Path("/tmp/exports"))          # doctest: +SKIP
    >>> exporter.full("arn:aws:dynamodb:us-east-1:123456789012:table/products")  # doctest: +SKIP
    PosixPath('/tmp/exports/full-.../zetl-nb/products/AWSDynamoDB/01700000000000-abcd1234')
    """

    def __init__(
        self,
        dynamodb: Any,
        s3: Any,
        bucket: str,
        prefix: str,
        download_dir: Path | str,
        view: str = "NEW_AND_OLD_IMAGES",
        poll: float = 15.0,
    ) -> None:
        self.dynamodb, self.s3 = dynamodb, s3
        self.bucket, self.prefix = bucket, prefix
        self.download_dir = Path(download_dir)
        self.view, self.poll = view, poll

    def full(self, table_arn: str) -> Path:
        """A full export as of now, downloaded."""
        request = export_request(table_arn, self.bucket, self._prefix(table_arn))
        return self._run(request, "full")

    def incremental(self, table_arn: str, export_from: datetime, export_to: datetime) -> Path:
        """An incremental export of ``[export_from, export_to)``, downloaded."""
        request = export_request(
            table_arn,
            self.bucket,
            self._prefix(table_arn),
            incremental=(export_from, export_to),
            view=self.view,
        )
        return self._run(request, "incremental")

    def _run(self, request: Mapping[str, Any], kind: str) -> Path:
        """Export and download; an AWS error becomes a SourceError with AWS's code."""
        try:
            return export_and_download(self.dynamodb, self.s3, request, self._dest(kind), self.poll)
        except ExportError:
            raise
        except Exception as exc:
            error = getattr(exc, "response", None) or {}
            code = error.get("Error", {}).get("Code") if isinstance(error, dict) else None
            if not code:
                raise
            raise SourceError(
                str(code),
                f"The {kind} export of {request['TableArn']} to s3://{self.bucket}/"
                f"{request['S3Prefix']} failed: {exc}. Check point-in-time recovery, the "
                "bucket and the permissions to export and download; the refresh is retried.",
            ) from exc

    def discard(self, folder: Path) -> None:
        """Remove the download that holds ``folder`` (nothing outside ``download_dir``)."""
        try:
            inside = Path(folder).resolve().relative_to(self.download_dir.resolve())
        except ValueError:
            return
        if inside.parts:
            shutil.rmtree(self.download_dir / inside.parts[0], ignore_errors=True)

    def _prefix(self, table_arn: str) -> str:
        table = table_arn.rpartition("table/")[2]
        return f"{self.prefix.rstrip('/')}/{table}" if self.prefix.strip("/") else table

    def _dest(self, kind: str) -> Path:
        return self.download_dir / f"{kind}-{uuid.uuid4().hex[:12]}"


def export_request(
    table_arn: str,
    bucket: str,
    prefix: str,
    export_time: datetime | None = None,
    incremental: tuple[datetime, datetime] | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    """ExportTableToPointInTime's parameters: a full export (at ``export_time``, default now) or
    an incremental one over ``incremental = (from, to)`` (from inclusive, to exclusive)."""
    params: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "ExportFormat": "DYNAMODB_JSON",
    }
    if incremental is None:
        params["ExportType"] = "FULL_EXPORT"
        if export_time is not None:
            params["ExportTime"] = export_time
    else:
        params["ExportType"] = "INCREMENTAL_EXPORT"
        params["IncrementalExportSpecification"] = {
            "ExportFromTime": incremental[0],
            "ExportToTime": incremental[1],
            "ExportViewType": view,
        }
    return params


def export_and_download(
    dynamodb: Any, s3: Any, request: Mapping[str, Any], dest: Path | str, poll: float = 15.0
) -> Path:
    """REAL AWS ONLY, NOT TESTED OFFLINE against a real export (moto's is not faithful): start
    an export with ``request`` (:func:`export_request`), wait for it, and download its manifests
    and data files below ``dest`` keeping their S3 keys. Returns the local
    ``AWSDynamoDB/<ExportId>`` folder for :func:`~.dynamodb_export.read_full_export`,
    :func:`~.dynamodb_export.read_incremental_export` or
    :class:`~.dynamodb_export.ExportSnapshot`."""
    arn = dynamodb.export_table_to_point_in_time(**request)["ExportDescription"]["ExportArn"]
    while True:
        desc = dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS":
            break
        time.sleep(poll)
    if desc["ExportStatus"] != "COMPLETED":
        raise ExportError(
            f"export {arn} ended {desc['ExportStatus']}: {desc.get('FailureCode')} "
            f"{desc.get('FailureMessage')}"
        )
    bucket, dest = desc["S3Bucket"], Path(dest)

    def fetch(key: str) -> Path:
        local = dest / key
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local))
        return local

    summary = fetch(desc["ExportManifest"])
    files = fetch(json.loads(summary.read_text("utf-8"))["manifestFilesS3Key"])
    for line in files.read_text("utf-8").splitlines():
        if line.strip():
            fetch(json.loads(line)["dataFileS3Key"])
    return summary.parent
