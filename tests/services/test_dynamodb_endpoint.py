"""The DynamoDB endpoint: a real moto server in a child process, over HTTP, with real boto3."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zetl_nb.core.errors import ServiceError
from zetl_nb.services.dynamodb import (
    SNAPSHOT_FILE,
    DynamoDBEndpoint,
    _may_mutate,
    _SnapshotGate,
)

ACCOUNT = "111122223333"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "dynamodb:GetItem",
                "Resource": "*",
            }
        ],
    }
)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[DynamoDBEndpoint]:
    ep = DynamoDBEndpoint(tmp_path / "dynamodb", account_id=ACCOUNT)
    ep.start()
    yield ep
    ep.stop()


def _create_table(ddb: Any, name: str = "orders") -> str:
    resp = ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(resp["TableDescription"]["TableArn"])


def _snapshot_taken(state: Path) -> float:
    """When the saved snapshot was taken (0 if there is none yet)."""
    try:
        with open(state / SNAPSHOT_FILE, "rb") as fh:
            return float(pickle.load(fh)["taken"])
    except (OSError, EOFError, pickle.UnpicklingError):
        return 0.0


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an orphan that exited may linger as a zombie of a non-reaping PID 1
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _pid_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_start_is_idempotent_and_serves_on_loopback(endpoint: DynamoDBEndpoint) -> None:
    pid = endpoint.pid
    endpoint.start()
    assert endpoint.pid == pid
    assert endpoint.running
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert endpoint.client("dynamodb").list_tables()["TableNames"] == []


def test_stop_is_idempotent_and_ends_the_child(tmp_path: Path) -> None:
    ep = DynamoDBEndpoint(tmp_path / "d")
    ep.start()
    pid = ep.pid
    assert pid is not None
    ep.stop()
    ep.stop()
    assert not ep.running and ep.pid is None
    assert _wait_gone(pid, 1.0)
    with pytest.raises(ServiceError, match="not running"):
        _ = ep.url


def test_arns_carry_the_lab_account(endpoint: DynamoDBEndpoint) -> None:
    arn = _create_table(endpoint.client("dynamodb"))
    assert arn == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "dynamodb"
    with DynamoDBEndpoint(state, account_id=ACCOUNT) as ep:
        ddb = ep.client("dynamodb")
        arn = _create_table(ddb)
        ddb.update_continuous_backups(
            TableName="orders",
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        ddb.put_resource_policy(ResourceArn=arn, Policy=POLICY)
        ddb.update_time_to_live(
            TableName="orders",
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
        )
        for n in range(3):
            ddb.put_item(TableName="orders", Item={"pk": {"S": "c1"}, "sk": {"N": str(n)}})
        stream_arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]

    with DynamoDBEndpoint(state, account_id=ACCOUNT) as ep:
        ddb = ep.client("dynamodb")
        table = ddb.describe_table(TableName="orders")["Table"]
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        assert table["LatestStreamArn"] == stream_arn
        items = ddb.scan(TableName="orders")["Items"]
        assert sorted(int(i["sk"]["N"]) for i in items) == [0, 1, 2]
        backups = ddb.describe_continuous_backups(TableName="orders")
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
        assert json.loads(ddb.get_resource_policy(ResourceArn=arn)["Policy"]) == json.loads(POLICY)
        ttl = ddb.describe_time_to_live(TableName="orders")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_a_killed_child_keeps_what_was_saved_a_second_earlier(tmp_path: Path) -> None:
    state = tmp_path / "dynamodb"
    ep = DynamoDBEndpoint(state)
    ep.start()
    ddb = ep.client("dynamodb")
    _create_table(ddb)
    ddb.put_item(TableName="orders", Item={"pk": {"S": "c1"}, "sk": {"N": "1"}})
    put_done = time.time()
    deadline = time.monotonic() + 5
    while _snapshot_taken(state) <= put_done:  # a save that started after the put returned
        assert time.monotonic() < deadline, "no save within 5 s of a write"
        time.sleep(0.05)
    assert ep.pid is not None
    os.kill(ep.pid, signal.SIGKILL)  # no chance for a final save
    ep.stop()

    with DynamoDBEndpoint(state) as again:
        items = again.client("dynamodb").scan(TableName="orders")["Items"]
        assert items == [{"pk": {"S": "c1"}, "sk": {"N": "1"}}]


def test_concurrent_writes_during_saves_all_survive(tmp_path: Path) -> None:
    state = tmp_path / "dynamodb"
    with DynamoDBEndpoint(state) as ep:
        _create_table(ep.client("dynamodb"))

        def writer(worker: int) -> None:
            ddb = ep.client("dynamodb")
            for n in range(40):
                item = {"pk": {"S": f"w{worker}"}, "sk": {"N": str(n)}}
                ddb.put_item(TableName="orders", Item=item)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    with DynamoDBEndpoint(state) as ep:
        ddb = ep.client("dynamodb")
        assert ddb.scan(TableName="orders", Select="COUNT")["Count"] == 160


def test_two_endpoints_are_isolated(tmp_path: Path) -> None:
    with (
        DynamoDBEndpoint(tmp_path / "a", account_id="111111111111") as a,
        DynamoDBEndpoint(tmp_path / "b", account_id="222222222222") as b,
    ):
        assert a.url != b.url
        arn = _create_table(a.client("dynamodb"), "only_in_a")
        assert ":111111111111:" in arn
        assert b.client("dynamodb").list_tables()["TableNames"] == []
        assert ":222222222222:" in _create_table(b.client("dynamodb"), "only_in_b")
        assert a.client("dynamodb").list_tables()["TableNames"] == ["only_in_a"]


def test_stream_records_through_dynamodbstreams(endpoint: DynamoDBEndpoint) -> None:
    ddb = endpoint.client("dynamodb")
    _create_table(ddb)
    key = {"pk": {"S": "c1"}, "sk": {"N": "1"}}
    ddb.put_item(TableName="orders", Item={**key, "v": {"S": "a"}})
    ddb.put_item(TableName="orders", Item={**key, "v": {"S": "b"}})
    ddb.delete_item(TableName="orders", Key=key)

    streams = endpoint.client("dynamodbstreams")
    stream_arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    modify = records[1]["dynamodb"]
    assert modify["OldImage"]["v"] == {"S": "a"} and modify["NewImage"]["v"] == {"S": "b"}


def test_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    state = tmp_path / "dynamodb"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from zetl_nb.services.dynamodb import DynamoDBEndpoint
        ep = DynamoDBEndpoint(Path({str(state)!r}))
        ep.start()
        ddb = ep.client("dynamodb")
        ddb.create_table(
            TableName="left_behind",
            KeySchema=[{{"AttributeName": "pk", "KeyType": "HASH"}}],
            AttributeDefinitions=[{{"AttributeName": "pk", "AttributeType": "S"}}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="left_behind", Item={{"pk": {{"S": "last words"}}}})
        print(ep.pid, flush=True)
        os._exit(0)  # no stop(), no atexit: as if the kernel died
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    child = int(out.stdout.strip())
    try:
        # Started at once, like a restarted kernel: the new child waits for the orphan's final
        # save (the state-dir lock), so even the write just before the parent died is there.
        with DynamoDBEndpoint(state) as ep:
            items = ep.client("dynamodb").scan(TableName="left_behind")["Items"]
            assert items == [{"pk": {"S": "last words"}}]
        assert _wait_gone(child, 5.0), "the orphaned endpoint is still running"
    finally:
        if not _pid_gone(child):
            os.kill(child, signal.SIGKILL)


def test_unreadable_snapshot_fails_the_start_and_is_kept(tmp_path: Path) -> None:
    state = tmp_path / "dynamodb"
    state.mkdir()
    (state / SNAPSHOT_FILE).write_bytes(b"not a pickle")
    ep = DynamoDBEndpoint(state)
    with pytest.raises(ServiceError, match="move it aside"):
        ep.start()
    assert not ep.running
    assert (state / SNAPSHOT_FILE).read_bytes() == b"not a pickle"


@pytest.mark.parametrize(
    ("method", "path", "target", "mutates"),
    [
        ("POST", "/", "DynamoDB_20120810.PutItem", True),
        ("POST", "/", "DynamoDB_20120810.UpdateContinuousBackups", True),
        ("POST", "/", "DynamoDB_20120810.PutResourcePolicy", True),
        ("POST", "/", "DynamoDB_20120810.ExecuteStatement", True),
        ("POST", "/", "DynamoDB_20120810.GetItem", False),
        ("POST", "/", "DynamoDB_20120810.Query", False),
        ("POST", "/", "DynamoDB_20120810.DescribeTable", False),
        ("POST", "/", "DynamoDB_20120810.ListTables", False),
        ("POST", "/", "DynamoDBStreams_20120810.GetRecords", False),
        ("POST", "/moto-api/reset", "", True),
        ("GET", "/moto-api/data.json", "", False),
    ],
)
def test_which_requests_mark_state_dirty(
    method: str, path: str, target: str, mutates: bool
) -> None:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_X_AMZ_TARGET": target}
    assert _may_mutate(environ) is mutates


def test_the_gate_serves_one_request_at_a_time() -> None:
    # moto is not thread-safe: concurrent writers tore its stream shards (duplicate
    # SequenceNumbers, seen at 643 of 110,020 records with four writer threads).
    gate = _SnapshotGate()
    inside, second_in = threading.Event(), threading.Event()
    release = threading.Event()

    def first() -> None:
        with gate.request():
            inside.set()
            release.wait(5)

    def second() -> None:
        with gate.request():
            second_in.set()

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(5)
    b = threading.Thread(target=second)
    b.start()
    assert not second_in.wait(0.3)  # blocked while the first request runs
    release.set()
    assert second_in.wait(5)
    a.join()
    b.join()
