"""Shared fixtures: a Lab, and the behaviour-suite harness run in-process and over HTTP.

The ``harness`` fixture is parametrized ``local`` (``lab.client(...)``) and ``http`` (real boto3
clients against a real ``zetl-nb serve`` subprocess). Both share one Lab per session and face;
each test gets fresh, uniquely named resources and every integration is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from zetl_nb.api.model import validate_output

ACCOUNT, REGION = "123456789012", "us-east-1"
RECHECK = "0.2"


def error_code(exc: pytest.ExceptionInfo[Any]) -> str:
    """The AWS error code of a raised botocore ClientError."""
    return str(exc.value.response["Error"]["Code"])


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class Harness:
    """The same calls, two transports. ``lab`` is None over HTTP."""

    def __init__(self, kind: str, home: Path, clients: dict[str, Any], lab: Any = None) -> None:
        self.kind = kind
        self.home = home
        self.glue = clients["glue"]
        self.rds = clients["rds"]
        self.ddb = clients["dynamodb"]
        self.lab = lab

    # -- checking responses -------------------------------------------------------------------
    def call(self, service: str, method: str, **params: Any) -> dict[str, Any]:
        """Call and check the response against botocore's output shape."""
        client = {"glue": self.glue, "rds": self.rds}[service]
        response: dict[str, Any] = getattr(client, method)(**params)
        from zetl_nb.api.model import operation_names

        validate_output(service, operation_names(service)[method], response)
        return response

    # -- resources ------------------------------------------------------------------------------
    def table(self, ready: bool = True) -> str:
        name = unique("tbl")
        self.ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        arn: str = self.ddb.describe_table(TableName=name)["Table"]["TableArn"]
        if ready:
            self.ready_source(arn)
        return arn

    def ready_source(self, table_arn: str) -> None:
        from zetl_nb.sources.dynamodb import required_policy

        name = table_arn.rsplit("/", 1)[1]
        self.ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        self.ddb.put_resource_policy(
            ResourceArn=table_arn, Policy=json.dumps(required_policy(table_arn, ACCOUNT, REGION))
        )

    def database(self, ready: bool = True) -> str:
        name = unique("db")
        db: dict[str, Any] = {"Name": name}
        if ready:
            db["LocationUri"] = f"file:///tmp/zetl-tests/{name}"
        self.glue.create_database(DatabaseInput=db)
        arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{name}"
        if ready:
            self.ready_target(arn)
        return arn

    def ready_target(self, db_arn: str) -> None:
        with contextlib.suppress(self.glue.exceptions.ConflictException):
            self.glue.create_integration_resource_property(
                ResourceArn=db_arn,
                TargetProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/zetl"},
            )
        self.glue.put_resource_policy(PolicyInJson=json.dumps(catalog_policy_all()))

    def integration(self, face: str = "glue", **kw: Any) -> dict[str, Any]:
        """Create a ready DynamoDB (glue) or embedded-PostgreSQL (rds) integration."""
        params: dict[str, Any] = {
            "IntegrationName": unique("integ-"),
            "TargetArn": kw.pop("TargetArn", None) or self.database(),
        }
        if face == "glue":
            params["SourceArn"] = kw.pop("SourceArn", None) or self.table()
        else:
            params["SourceArn"] = kw.pop("SourceArn", None) or cluster_arn()
        params.update(kw)
        client = self.glue if face == "glue" else self.rds
        out: dict[str, Any] = client.create_integration(**params)
        return out

    def status(self, arn: str) -> dict[str, Any] | None:
        client = self.rds if ":rds:" in arn else self.glue
        try:
            found: dict[str, Any] = client.describe_integrations(IntegrationIdentifier=arn)[
                "Integrations"
            ][0]
        except client.exceptions.IntegrationNotFoundFault:
            return None
        return found

    def wait(self, arn: str, *statuses: str, timeout: float = 20) -> dict[str, Any] | None:
        """Poll until the status is one of ``statuses`` (``deleted``: gone)."""
        deadline = time.monotonic() + timeout
        while True:
            integ = self.status(arn)
            current = integ["Status"] if integ else "deleted"
            if current in statuses:
                return integ
            if time.monotonic() > deadline:
                raise AssertionError(f"{arn} is {current}, expected {statuses}")
            time.sleep(0.05)

    def reset(self) -> None:
        for client in (self.glue, self.rds):
            for integ in client.describe_integrations(MaxRecords=100)["Integrations"]:
                if integ["Status"].upper() != "DELETING":
                    with contextlib.suppress(client.exceptions.InvalidIntegrationStateFault):
                        client.delete_integration(IntegrationIdentifier=integ["IntegrationArn"])
                self.wait(integ["IntegrationArn"], "deleted")


def cluster_arn(name: str = "zetl-aurora-postgres") -> str:
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{name}"


def catalog_policy_all() -> dict[str, Any]:
    resources = [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog/*",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/*",
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]},
                "Action": "glue:CreateInboundIntegration",
                "Resource": resources,
            },
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "glue:AuthorizeInboundIntegration",
                "Resource": resources,
            },
        ],
    }


class ServeProcess:
    """A real ``zetl-nb serve`` subprocess on a free port."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "ZETL_PREREQUISITE_RECHECK_SECONDS": RECHECK, **(extra_env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zetl_nb", "serve", "--home", str(home), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        if "http://" not in self.banner:
            self.proc.kill()
            raise RuntimeError(f"serve failed: {self.banner!r} {self.proc.stderr.read()}")  # type: ignore[union-attr]
        self.url = self.banner.split()[2]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,  # type: ignore[call-overload]
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="session")
def local_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from zetl_nb import Lab

    home = tmp_path_factory.mktemp("local-home")
    lab = Lab(home, prerequisite_recheck_seconds=float(RECHECK))
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    home = tmp_path_factory.mktemp("serve-home")
    server = ServeProcess(home)
    yield server, home
    server.stop()


@pytest.fixture(params=["local", "http"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "local":
        lab = request.getfixturevalue("local_lab")
        h = Harness("local", lab.home, {s: lab.client(s) for s in ("glue", "rds", "dynamodb")}, lab)
    else:
        server, home = request.getfixturevalue("served")
        h = Harness("http", home, {s: server.client(s) for s in ("glue", "rds", "dynamodb")})
    yield h
    h.reset()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI nothing may skip: a skipped test fails the run, loudly."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped:
        print(f"\nCI: {skipped} test(s) skipped; on CI every test must run.", file=sys.stderr)
        session.exitstatus = 1
