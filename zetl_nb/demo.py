"""``zetl-nb demo``: the control plane walked end to end through ``zetl-nb serve`` with boto3.

It starts ``zetl-nb serve`` on a free loopback port, then — exactly as a data engineer would
against AWS — creates a DynamoDB table and a Glue target database, creates an integration,
reads why it NEEDS_ATTENTION, fixes each prerequisite with plain boto3 calls, watches it become
ACTIVE, sets table properties, modifies it, adds an Aurora PostgreSQL integration through the RDS
API, writes 10,000 transactions into the embedded PostgreSQL and watches them (and then updates,
deletes and an insert) land in Iceberg and answer a DuckDB query, and deletes both. Later
issues grow this into the full sentiment-analysis lab.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"


def _say(step: str, detail: str = "") -> None:
    print(f"• {step}" + (f"\n    {detail}" if detail else ""), flush=True)


def _start_server(home: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "zetl_nb", "serve", "--home", str(home), "--port", "0"]
    env_overrides = {"ZETL_PREREQUISITE_RECHECK_SECONDS": "1"}
    import os

    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **env_overrides}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"zetl-nb serve did not start: {line!r}")
    url = line.split()[2]
    return proc, url


def _wait(glue: Any, arn: str, wanted: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        integ: dict[str, Any] = glue.describe_integrations(IntegrationIdentifier=arn)[
            "Integrations"
        ][0]
        if integ["Status"] in wanted:
            return integ
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} stayed {integ['Status']}")
        time.sleep(0.2)


def run_demo(home: str | None = None) -> int:
    """Run the demo; returns the process exit code."""
    import boto3

    root = Path(home) if home else Path(tempfile.mkdtemp(prefix="zetl-demo-"))
    print(f"zetl_nb demo — Lab home {root}\n", flush=True)
    proc, url = _start_server(root)
    t0 = time.perf_counter()
    try:

        def client(name: str) -> Any:
            return boto3.client(
                name,
                endpoint_url=url,
                region_name=REGION,  # type: ignore[call-overload]
                aws_access_key_id="demo",
                aws_secret_access_key="demo",
            )

        _walk(client("glue"), client("dynamodb"), client("rds"), url, root)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"\nDone in {time.perf_counter() - t0:.1f} s. Target data stays in {root}.")
    return 0


def _walk(glue: Any, ddb: Any, rds: Any, url: str, home: Path) -> None:
    _say(f"zetl-nb serve is up at {url}: one endpoint for Glue, RDS and DynamoDB")
    ddb.create_table(
        TableName="products",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "product_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "product_id", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    table_arn = ddb.describe_table(TableName="products")["Table"]["TableArn"]
    _say("dynamodb.create_table(products) with a NEW_AND_OLD_IMAGES stream", table_arn)
    glue.create_database(DatabaseInput={"Name": "lakehouse", "Description": "zero-ETL target"})
    db_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/lakehouse"
    _say("glue.create_database(lakehouse) — deliberately without a LocationUri", db_arn)
    integ = glue.create_integration(
        IntegrationName="products-to-lakehouse",
        SourceArn=table_arn,
        TargetArn=db_arn,
        Description="DynamoDB products into Iceberg",
        Tags=[{"key": "lab", "value": "demo"}],
    )
    arn = integ["IntegrationArn"]
    _say(f"glue.create_integration → {integ['Status']}", arn)
    integ = _wait(glue, arn, {"ACTIVE", "NEEDS_ATTENTION"})
    _say(f"describe_integrations → {integ['Status']}; AWS tells us what to fix:")
    for err in integ["Errors"]:
        print(f"    - {err['ErrorCode']}: {err['ErrorMessage'][:110]}…")
    _fix_by_hand(glue, ddb, table_arn, db_arn)
    integ = _wait(glue, arn, {"ACTIVE"})
    _say(
        f"prerequisites met → {integ['Status']} (RefreshInterval "
        f"{integ['IntegrationConfig']['RefreshInterval']} min)"
    )
    glue.create_integration_table_properties(
        ResourceArn=db_arn,
        TableName="products",
        TargetTableConfig={"UnnestSpec": "FULL", "TargetTableName": "products"},
    )
    props = glue.get_integration_table_properties(ResourceArn=db_arn, TableName="products")
    _say(
        "glue.create_integration_table_properties(UnnestSpec=FULL)",
        json.dumps(props["TargetTableConfig"]),
    )
    mod = glue.modify_integration(
        IntegrationIdentifier=arn,
        Description="refresh every 30 min",
        IntegrationConfig={"RefreshInterval": "30"},
    )
    _say(f"glue.modify_integration(RefreshInterval=30) → {mod['Status']}")
    _say(f"… → {_wait(glue, arn, {'ACTIVE'})['Status']}")
    _relational(glue, rds, db_arn, home)
    gone = glue.delete_integration(IntegrationIdentifier=arn)
    _say(f"glue.delete_integration → {gone['Status']}; the target database and its data stay")
    _gone(glue, arn)
    _say("describe_integrations → IntegrationNotFoundFault: deleted")
    _say(
        f"inbound integrations into lakehouse now: "
        f"{len(glue.describe_inbound_integrations(TargetArn=db_arn)['InboundIntegrations'])}"
    )


def _fix_by_hand(glue: Any, ddb: Any, table_arn: str, db_arn: str) -> None:
    from .engine.prerequisites import catalog_policy_document
    from .sources.dynamodb import required_policy

    ddb.update_continuous_backups(
        TableName="products", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    _say("dynamodb.update_continuous_backups → PITR enabled")
    ddb.put_resource_policy(
        ResourceArn=table_arn, Policy=json.dumps(required_policy(table_arn, ACCOUNT, REGION))
    )
    _say("dynamodb.put_resource_policy → glue.amazonaws.com may export and describe the table")
    glue.update_database(
        Name="lakehouse",
        DatabaseInput={
            "Name": "lakehouse",
            "LocationUri": "file:///tmp/zetl-demo-warehouse/lakehouse",
        },
    )
    _say("glue.update_database → LocationUri set")
    glue.create_integration_resource_property(
        ResourceArn=db_arn,
        TargetProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/zero-etl-target"},
    )
    _say("glue.create_integration_resource_property → target role set")
    glue.put_resource_policy(
        PolicyInJson=json.dumps(catalog_policy_document(ACCOUNT, REGION, db_arn))
    )
    _say("glue.put_resource_policy → the catalog authorizes inbound integrations")


def _relational(glue: Any, rds: Any, db_arn: str, home: Path) -> None:
    cluster = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:zetl-aurora-postgres"
    integ = rds.create_integration(
        IntegrationName="orders-cdc",
        SourceArn=cluster,
        TargetArn=db_arn,
        DataFilter="include: postgres.public.transactions",
    )
    arn = integ["IntegrationArn"]
    _say(f"rds.create_integration(embedded Aurora PostgreSQL) → {integ['Status']}", arn)
    deadline = time.monotonic() + 60
    while True:
        status = rds.describe_integrations(IntegrationIdentifier=arn)["Integrations"][0]["Status"]
        if status in {"active", "needs_attention"} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    _say(f"rds.describe_integrations → {status} (RDS spells states in lower case)")
    _replicate(home)
    rds.delete_integration(IntegrationIdentifier=arn)
    _say("rds.delete_integration → deleting (the replicated table stays in the lakehouse)")
    _gone(rds, arn)


def _replicate(home: Path) -> None:
    """Write to the embedded PostgreSQL, watch the rows land in Iceberg, query them."""
    import psycopg2

    from .lab import Lab

    url = _service_url(home, "postgres")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE transactions (id bigint PRIMARY KEY, customer_id int, "
        "amount numeric(10,2), created_at timestamptz DEFAULT now())"
    )
    cur.execute(
        "INSERT INTO transactions SELECT g, g % 100, (g % 997) / 10.0 "
        "FROM generate_series(1, 10000) g"
    )
    _say("postgres: CREATE TABLE transactions + INSERT 10,000 rows", url)
    reader = Lab(home, read_only=True)  # attach to the served home to query it
    table = "lakehouse.postgres_public_transactions"
    try:
        t0 = time.perf_counter()
        _until(reader, f"SELECT count(*) FROM {table}", [(10000,)])
        _say(
            f"initial load: 10,000 rows queryable in Iceberg after {time.perf_counter() - t0:.1f} s"
        )
        cur.execute("UPDATE transactions SET amount = amount + 1 WHERE id <= 100")
        cur.execute("DELETE FROM transactions WHERE id > 9990")
        cur.execute("INSERT INTO transactions VALUES (20000, 7, 42.00, now())")
        cur.execute("SELECT count(*), sum(amount) FROM transactions")
        expected = [tuple(cur.fetchone() or ())]
        t1 = time.perf_counter()
        _until(reader, f"SELECT count(*), sum(amount) FROM {table}", expected)
        _say(f"CDC: 100 updates, 10 deletes, 1 insert visible in {time.perf_counter() - t1:.1f} s")
        top = reader.sql(
            f"SELECT customer_id, count(*) AS n, sum(amount) AS total FROM {table} "
            "GROUP BY customer_id ORDER BY total DESC LIMIT 3"
        ).fetchall()
        _say(
            "lab.sql: top customers by amount", "; ".join(f"{c}: {n} rows, {t}" for c, n, t in top)
        )
    finally:
        reader.close()
        conn.close()


def _service_url(home: Path, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    path = home / "services.json"
    while time.monotonic() < deadline:
        if path.exists():
            url = json.loads(path.read_text()).get(name)
            if url:
                return str(url)
        time.sleep(0.2)
    raise TimeoutError(f"the embedded {name} did not start within {timeout:g} s")


def _until(lab: Any, query: str, expected: list[tuple[Any, ...]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if lab.sql(query).fetchall() == expected:
                return
        except Exception:  # the table may not exist yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{query} did not return {expected} within {timeout:g} s")
        time.sleep(0.1)


def _gone(client: Any, arn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.describe_integrations(IntegrationIdentifier=arn)
        except client.exceptions.IntegrationNotFoundFault:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{arn} was not deleted within {timeout:g} s")
