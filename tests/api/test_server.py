"""``zetl-nb serve``: one endpoint, AWS wire formats, forwarding to moto, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ServeProcess, unique


def test_banner_binds_loopback(served: tuple[ServeProcess, Path]) -> None:
    server, home = served
    assert server.url.startswith("http://127.0.0.1:")
    assert str(home) in server.banner


def test_other_services_are_answered_by_moto(served: tuple[ServeProcess, Path]) -> None:
    server, _ = served
    ddb = server.client("dynamodb")
    name = unique("fwd")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.put_item(TableName=name, Item={"k": {"S": "1"}})
    assert ddb.get_item(TableName=name, Key={"k": {"S": "1"}})["Item"]["k"]["S"] == "1"
    stream_arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    streams = server.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT"]
    ident = server.client("sts").get_caller_identity()
    assert ident["Account"] == "123456789012"
    # Glue and RDS operations zetl_nb does not implement reach moto too.
    assert server.client("glue").get_jobs()["Jobs"] == []
    assert server.client("rds").describe_db_clusters()["DBClusters"] == []


def _raw(url: str, target: str, body: dict[str, object]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_side_validation_for_raw_callers(served: tuple[ServeProcess, Path]) -> None:
    server, _ = served
    status, body = _raw(server.url, "AWSGlue.CreateIntegration", {"IntegrationName": "x"})
    assert status == 400 and body["__type"] == "ValidationException"
    assert "SourceArn" in body["message"]
    status, body = _raw(server.url, "AWSGlue.GetDatabase", {"Name": unique("absent")})
    assert status == 400 and body["__type"] == "EntityNotFoundException"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_stops_cleanly(tmp_path: Path, signum: int) -> None:
    server = ServeProcess(tmp_path / "home")
    server.client("dynamodb").list_tables()  # the embedded endpoint is up
    child = json.loads((tmp_path / "home" / "services.json").read_text())
    assert "dynamodb" in child
    server.proc.send_signal(signum)
    assert server.proc.wait(timeout=30) == 0
    assert server.proc.stdout is not None
    assert "stopped" in server.proc.stdout.read()
    assert not (tmp_path / "home" / "services.json").exists()
    # The home's lock is released: it can be served again.
    again = ServeProcess(tmp_path / "home")
    assert again.stop() == 0


def test_second_writer_is_refused_with_a_clear_error(served: tuple[ServeProcess, Path]) -> None:
    import subprocess
    import sys

    _, home = served
    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "serve", "--home", str(home), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert "in use by PID" in proc.stderr and "read_only=True" in proc.stderr


def test_status_command_attaches_read_only(served: tuple[ServeProcess, Path]) -> None:
    import subprocess
    import sys

    server, home = served
    glue = server.client("glue")
    name = unique("statusdb")
    glue.create_database(DatabaseInput={"Name": name})
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "status", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "integration(s)" in proc.stdout
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"]])
def test_cli_help(argv: list[str]) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", *argv], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "zetl-nb" in proc.stdout
